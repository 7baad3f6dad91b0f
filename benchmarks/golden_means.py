"""The golden check that runs on any CPU: each regime x budget's mean over seeds, not each run.

Runs made on other CPU kernels (AVX2 against AVX512, or ``ATEN_CPU_CAPABILITY=default``) differ
run by run about as much as seeds do, so the per-run comparison of ``benchmarks/golden.py`` only
holds in the numeric environment that made a set. What does hold on any CPU is the distribution
of a cell's results over seeds: a rerun elsewhere is, for this check, three more seeds. So per
regime, budget and metric the rerun's seed mean must lie in

    golden mean ± t(1 - alpha / 2K, d0 + d) · s · sqrt(1/n_new + 1/n_golden)

the usual two-sample interval for a difference of means, with these choices:

- ``s`` is a moderated standard deviation (Smyth 2004, limma's "moderated t"): the cell's
  variance over its ``n_golden`` = 3 seeds (``d`` = 2 degrees of freedom) shrunk towards the
  variance of that metric pooled over all cells, weighted as :data:`PRIOR_DF` observations.
  Three seeds alone give a t with 2 degrees of freedom, whose quantile (41 at the level below)
  makes every interval useless, and a cell that happened to agree across three seeds would get
  an interval too narrow for another CPU. Pooling alone would be wrong the other way: the
  cells' spreads differ twentyfold (accuracy sd 0.007 to 0.11), so the noisy cells would fail.
- ``K`` is the number of comparisons (Bonferroni): the check asks about some 80 cells at once,
  and a false alarm on a contributor's CPU costs as much as a missed regression; the family
  error is :data:`ALPHA`.
- A cell with zero spread over the golden seeds (a frozen probe's forgetting is 0 by
  construction) has nothing to estimate: it must match within :data:`FLOOR`, float noise.

The price of three seeds: the interval is about 4 moderated standard deviations wide each way
(``halfwidths`` gives them; e.g. about ±0.2 in test accuracy), so this check catches a regime
that broke, not a shift of a point. The per-run check on a matching CPU stays the fine one.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

ALPHA = 0.05  # family-wise false-alarm rate of the whole check on another CPU
PRIOR_DF = 8  # the pooled variance counts as this many degrees of freedom (four cells' worth)
FLOOR = 1e-6  # a zero-spread cell: the rerun's mean must match within this (float noise)


def _cells(runs: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Long form: one row per regime, budget and metric with its seed mean, variance and n."""
    long = runs.melt(["regime", "per_class"], [m for m in metrics if m in runs], "metric")
    long = long.dropna(subset=["value"]).astype({"per_class": str})
    return long.groupby(["regime", "per_class", "metric"])["value"].agg(["mean", "var", "count"])


def halfwidths(golden_runs: pd.DataFrame, metrics: tuple[str, ...], n_new: int) -> pd.Series:
    """Per regime, budget and metric: how far the rerun's mean may lie from the golden mean."""
    cells = _cells(golden_runs, metrics)
    spread = cells[cells["var"] > 0]
    df = spread["count"] - 1
    pooled = (df * spread["var"]).groupby(level="metric").sum() / df.groupby(level="metric").sum()
    prior = pooled.reindex(cells.index.get_level_values("metric")).to_numpy()
    d = cells["count"] - 1
    moderated = (PRIOR_DF * prior + d * cells["var"].fillna(0.0)) / (PRIOR_DF + d)
    quantile = stats.t.ppf(1 - ALPHA / (2 * len(cells)), PRIOR_DF + d)
    width = quantile * moderated.pow(0.5) * (1 / n_new + 1 / cells["count"]).pow(0.5)
    return width.where(cells["var"] > 0, FLOOR)


def mean_differences(
    golden: dict[str, Any], runs: pd.DataFrame, metrics: tuple[str, ...]
) -> list[str]:
    """One line per regime, budget and metric whose rerun mean is outside its interval."""
    kept = pd.DataFrame(
        [
            {"regime": r["regime"], "per_class": str(r["per_class"])} | r["metrics"]
            for r in golden["runs"]
        ]
    )
    want = _cells(kept, metrics)
    got = _cells(runs, metrics)
    n_new = int(got["count"].min()) if len(got) else 1
    width = halfwidths(kept, metrics, n_new)
    problems = []
    for (regime, per_class, metric), cell in want.iterrows():
        name = f"{regime} per_class={per_class}: mean {metric}"
        if (regime, per_class, metric) not in got.index:
            problems.append(f"{name} missing from the rerun")
            continue
        mean, tol = got.loc[(regime, per_class, metric), "mean"], width[(regime, per_class, metric)]
        if not abs(mean - cell["mean"]) <= tol or math.isnan(mean):
            problems.append(
                f"{name} {mean:.4f} vs golden {cell['mean']:.4f} "
                f"({mean - cell['mean']:+.4f}, interval ±{tol:.4g})"
            )
    return problems
