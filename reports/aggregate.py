"""Aggregation over seeds as pure functions: means and percentile-bootstrap intervals.

Statistics are hand-written in numpy (rliable's stratified bootstrap reduces to this for one
cell) to avoid the ``arch`` dependency rliable pulls in; the resampling is seeded so a report is
reproducible.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd

from reports.arms import ensure_arms
from reports.collect import budget_order

METRICS = (
    "test/acc",
    "test/f1_macro",
    "test/ece",
    "source/acc_before",
    "source/acc_after",
    "source/forgetting",
    "source/head_acc_before",
    "source/head_acc_after",
    "source/head_forgetting",
)
EXACT_UP_TO = 10  # seeds; beyond this the resamples are drawn at random
RESAMPLES = 100_000
CI_METHOD = (
    "95% percentile bootstrap over seeds (every possible resample enumerated exactly up to "
    f"{EXACT_UP_TO} seeds; {RESAMPLES:,} random resamples beyond)"
)


@functools.lru_cache(maxsize=EXACT_UP_TO)
def _resample_counts(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct resample of n values (as counts per value) and its probability."""
    combos = np.array(list(itertools.combinations_with_replacement(range(n), n)))
    counts = np.apply_along_axis(np.bincount, 1, combos, minlength=n)
    log_prob = (
        math.lgamma(n + 1) - np.vectorize(math.lgamma)(counts + 1).sum(axis=1) - n * math.log(n)
    )
    return counts, np.exp(log_prob)


def bootstrap_ci(
    values: np.ndarray, reps: int = RESAMPLES, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; NaN when there are fewer than two values.

    Up to :data:`EXACT_UP_TO` values the bootstrap distribution is enumerated exactly (at most
    92,378 distinct resamples), so the interval has no Monte-Carlo error at all: with 3 to 10
    seeds, 10,000 random resamples moved the bounds by up to 0.003 between resampling seeds.
    Beyond that, ``reps`` seeded random resamples. The percentile is the inverted CDF: the
    smallest resample mean whose cumulative probability reaches it.

    >>> bootstrap_ci(np.array([0.5, 0.5, 0.5]))
    (0.5, 0.5)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    if n <= EXACT_UP_TO:
        counts, prob = _resample_counts(n)
        means = counts @ values / n
        order = np.argsort(means, kind="stable")
        cdf = np.cumsum(prob[order])
        lo = means[order][np.searchsorted(cdf, alpha - 1e-12)]
        hi = means[order][min(np.searchsorted(cdf, 1 - alpha - 1e-12), len(cdf) - 1)]
        return float(lo), float(hi)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(reps, n))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)


def mean_ci(values: np.ndarray, reps: int = RESAMPLES) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of the non-NaN values; NaNs where there are too few."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else float("nan")
    return (mean, *bootstrap_ci(values, reps))


def with_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """Add wall-clock cost columns per run (seconds).

    ``cost/target_s``: the run's own work (features, training, evaluation).
    ``cost/pretrain_full_s``: the full cost of the pretraining stages it used.
    ``cost/pretrain_amortised_s``: that cost divided among the runs of these records that
    share each cached stage (its hash), i.e. what the sweep paid per run.
    """
    out = runs.copy()
    own = [c for c in ("seconds/features", "seconds/train", "seconds/eval") if c in out]
    out["cost/target_s"] = out[own].fillna(0).sum(axis=1)
    out["cost/pretrain_full_s"] = 0.0
    out["cost/pretrain_amortised_s"] = 0.0
    for stage in ("pretrain", "continued_pretrain"):
        full, key = f"compute/{stage}_seconds_full", f"{stage}_hash"
        if full not in out or key not in out:
            continue
        sharing = out.groupby(key)[key].transform("size")
        out["cost/pretrain_full_s"] += out[full].fillna(0)
        out["cost/pretrain_amortised_s"] += (out[full] / sharing).fillna(0)
    return out


COSTS = ("cost/target_s", "cost/pretrain_full_s", "cost/pretrain_amortised_s")


def summarize(runs: pd.DataFrame, reps: int = RESAMPLES) -> pd.DataFrame:
    """One row per arm x budget over ``ok`` runs: runs, failures, mean and CI per metric."""
    keys = ["arm", "per_class"]
    rows = []
    for (arm, per_class), cell in ensure_arms(runs).groupby(keys, sort=False):
        ok = cell[cell["status"] == "ok"]
        row = {
            "arm": arm,
            "regime": cell["regime"].iloc[0],
            "group": cell["group"].iloc[0],
            "variant": cell["variant"].iloc[0],
            "per_class": per_class,
            "labelled_per_class": cell["labelled_per_class"].mean(),
            "n": len(ok),  # runs; collect refuses two ok runs of one arm, budget and seed
            "n_seeds": int(ok["seed"].nunique()),
            "n_failed": int((cell["status"] != "ok").sum()),
        }
        for metric in METRICS:
            vals = ok[metric].to_numpy(dtype=float) if metric in ok else np.array([])
            stats = mean_ci(vals, reps)
            row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = stats
        for cost in COSTS:
            if cost in ok:
                row[f"{cost}_mean"] = float(ok[cost].mean())
        rows.append(row)
    out = pd.DataFrame(rows)
    out = out.assign(_b=budget_order(out["per_class"])).sort_values(["arm", "_b"])
    return out.drop(columns="_b").reset_index(drop=True)
