"""Comparing regimes across seeds: paired differences, probability of improvement, IQM.

Definitions from ``METRICS.md`` §5 (rliable, Agarwal et al. 2021). The same seed means the same
labelled subset, test set and head seed, so differences against ``scratch`` are paired by seed.
Hand-written in numpy/scipy (each is a few lines) rather than pulling in rliable and ``arch``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from reports.aggregate import RESAMPLES, mean_ci
from reports.arms import ensure_arms, reference_arm

BASELINE = "scratch"
PAIRED_METHOD = (
    "paired by seed (same labelled subset): mean of per-seed differences against scratch, "
    "95% percentile bootstrap over seeds"
)
POI_METHOD = "P(regime > scratch) per budget: Mann-Whitney U / (n_x n_y), ties count 1/2"
IQM_METHOD = (
    "interquartile mean over all runs x budget cells (25% trimmed each end), "
    "95% stratified percentile bootstrap, 20,000 resamples (runs resampled within each budget)"
)


def iqm(scores: np.ndarray) -> float:
    """25%-trimmed mean of every entry (rliable's IQM: ``trim_mean(S, 0.25, axis=None)``)."""
    return float(stats.trim_mean(np.asarray(scores, float), 0.25, axis=None))


def iqm_ci(
    scores: np.ndarray, reps: int = 20_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Stratified bootstrap: runs resampled with replacement within each task (column)."""
    scores = np.asarray(scores, float)
    runs, tasks = scores.shape
    if runs < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(scores[None, :, :].repeat(reps, 0), idx, axis=1)
    values = stats.trim_mean(resampled.reshape(reps, -1), 0.25, axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for one task: U / (n_x n_y), ties count one half."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    greater = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
    return float(greater / (len(x) * len(y)))


def paired_differences(
    runs: pd.DataFrame, metric: str = "test/acc", reps: int = RESAMPLES
) -> pd.DataFrame:
    """Per arm x budget: the mean per-seed difference to scratch, its interval, P(improve).

    Each arm is compared with the scratch arm of its own group (``reports.arms.reference_arm``).
    """
    ok = ensure_arms(runs[runs["status"] == "ok"])
    if BASELINE not in set(ok["regime"]):
        return pd.DataFrame()
    rows = []
    for (arm, per_class), cell in ok.groupby(["arm", "per_class"]):
        base_arm = reference_arm(ok, arm, BASELINE)
        base = ok[(ok["arm"] == base_arm) & (ok["per_class"] == per_class)]
        theirs = base[metric]
        if base_arm is None or arm == base_arm or theirs.empty:
            continue
        diffs = paired(ok, arm, base_arm, per_class, metric)
        mean, lo, hi = mean_ci(diffs, reps)
        rows.append(
            {
                "arm": arm,
                "per_class": per_class,
                "n_pairs": len(diffs),
                "diff_vs_scratch_mean": mean,
                "diff_vs_scratch_ci_low": lo,
                "diff_vs_scratch_ci_high": hi,
                "p_improvement_vs_scratch": probability_of_improvement(
                    cell[metric].to_numpy(), theirs.to_numpy()
                ),
            }
        )
    return pd.DataFrame(rows)


def paired(runs: pd.DataFrame, a: str, b: str, per_class: str, metric: str) -> np.ndarray:
    """Per-seed differences of arms a - b at one budget, over the seeds both have."""
    runs = ensure_arms(runs)
    cell = runs[(runs["per_class"] == per_class) & runs["arm"].isin([a, b])]
    wide = cell.pivot_table(index="seed", columns="arm", values=metric)
    if a not in wide or b not in wide:
        return np.array([])
    return (wide[a] - wide[b]).dropna().to_numpy(float)
