"""Comparing regimes across seeds: paired differences, probability of improvement, IQM.

Definitions from ``METRICS.md`` §5 (rliable, Agarwal et al. 2021). The same seed means the same
labelled subset, test set and head seed, so differences against ``scratch`` are paired by unit.
Hand-written in numpy/scipy (each is a few lines) rather than pulling in rliable and ``arch``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from reports.family import Comparison, paired, wide, with_keys
from reports.inference import paired_test

BASELINE = "scratch"
PAIRED_METHOD = (
    "paired by unit (subset_seed, train_seed; same labelled subset and training seed): mean of "
    "the per-unit differences against scratch, Student-t 95% interval clipped to [-1, 1]"
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
    runs: pd.DataFrame, metric: str = "test/acc", reference: str = BASELINE
) -> pd.DataFrame:
    """Per arm x budget: the mean per-unit difference to the group's ``reference`` arm, t interval.

    Paired by unit (subset_seed, train_seed) within one group; a group with no single arm of the
    ``reference`` regime gets no row. Columns are named after the reference
    (``diff_vs_scratch_mean``, ...), so differences against two references can sit side by side.
    """
    ok = with_keys(runs[runs["status"] == "ok"])
    rows = []
    table = wide(ok, metric)
    vs = f"vs_{reference}"
    for group, in_group in ok.groupby("group"):
        base = in_group.loc[in_group["regime"] == reference, "arm"].unique()
        if len(base) != 1:
            continue
        for (arm, per_class), cell in in_group.groupby(["arm", "per_class"]):
            theirs = in_group.loc[
                (in_group["arm"] == base[0]) & (in_group["per_class"] == per_class), metric
            ]
            if arm == base[0] or theirs.empty:
                continue
            a, b, units = paired(table, Comparison(arm, base[0], group), per_class)
            test = paired_test(a, b, units=units)
            rows.append(
                {
                    "arm": arm,
                    "per_class": per_class,
                    "n_pairs": test.n,
                    f"diff_{vs}_mean": test.estimate,
                    f"diff_{vs}_ci_low": test.low,
                    f"diff_{vs}_ci_high": test.high,
                    f"p_improvement_{vs}": probability_of_improvement(
                        cell[metric].to_numpy(), theirs.to_numpy()
                    ),
                }
            )
    return pd.DataFrame(rows)
