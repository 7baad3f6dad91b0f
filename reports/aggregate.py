"""Aggregation over seeds: per cell (arm x budget) mean, std, Student-t interval, BCa beside.

The intervals are those of ``reports.inference`` (why t and not the percentile bootstrap: with 3
seeds the latter is exactly [min, max], about 75% coverage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.metrics import PER_CELL, lookup
from reports.collect import budget_order
from reports.family import UNIT, with_keys
from reports.inference import DIFF_BOUNDS, MIN_BOOT, T_METHOD, boot_interval, t_interval

METRICS = PER_CELL  # what the registry says is aggregated per cell (common/metrics.py)
CI_METHOD = T_METHOD


def bounds(metric: str) -> tuple[float, float]:
    """The range a metric's mean can take (the registry's): a rate's [0, 1], forgetting's ±1."""
    return lookup(metric).range


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high): the Student-t interval clipped to [-1, 1].

    Used by the stream metrics (accuracies, BWT, FWT, forgetting: all within [-1, 1]).
    """
    r = t_interval(values, DIFF_BOUNDS)
    return r.mean, r.low, r.high


def with_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """Add wall-clock cost columns per run (seconds).

    ``cost/target_s``: the run's own work (features, training, evaluation, and under ``cv`` the
    fold fits that scored it: ``seconds/select``).
    ``cost/pretrain_full_s``: the full cost of the pretraining stages it used (EWC's source
    Fisher among them: like a pretraining, it is built once and shared).
    ``cost/pretrain_amortised_s``: that cost divided among the runs of these records that
    share each cached stage (its hash), i.e. what the sweep paid per run.
    """
    out = runs.copy()
    own = [
        c
        for c in ("seconds/features", "seconds/train", "seconds/eval", "seconds/select")
        if c in out
    ]
    out["cost/target_s"] = out[own].fillna(0).sum(axis=1)
    out["cost/pretrain_full_s"] = 0.0
    out["cost/pretrain_amortised_s"] = 0.0
    for stage in ("pretrain", "continued_pretrain", "fisher"):  # fisher: ewc's, per pretraining
        full, key = f"compute/{stage}_seconds_full", f"{stage}_hash"
        if full not in out or key not in out:
            continue
        sharing = out.groupby(key)[key].transform("size")
        out["cost/pretrain_full_s"] += out[full].fillna(0)
        out["cost/pretrain_amortised_s"] += (out[full] / sharing).fillna(0)
    return out


COSTS = ("cost/target_s", "cost/pretrain_full_s", "cost/pretrain_amortised_s")


def _metric_cells(ok: pd.DataFrame, metric: str) -> dict:
    vals = ok[metric].to_numpy(dtype=float) if metric in ok else np.array([])
    units = tuple(ok[k].to_numpy() for k in UNIT) if metric in ok else None
    r = t_interval(vals, bounds(metric), units=units)
    out = {f"{metric}_{k}": getattr(r, k) for k in ("mean", "std")}
    out |= {f"{metric}_ci_low": r.low, f"{metric}_ci_high": r.high, f"{metric}_n": r.n}
    out[f"{metric}_clipped"] = r.clipped
    out[f"{metric}_boot_low"], out[f"{metric}_boot_high"] = boot_interval(vals, units=units)
    return out


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm x budget over ``ok`` runs: units, failures, mean/std/t interval per metric.

    ``n_seeds`` counts the distinct pairing units (subset_seed, train_seed) of the cell; each
    metric's ``_n`` counts its non-missing values. ``_boot_low/_boot_high`` (BCa) appear only
    when some cell has at least ``MIN_BOOT`` values, and are empty in the cells that do not.
    """
    runs = with_keys(runs)
    rows = []
    for (arm, per_class), cell in runs.groupby(["arm", "per_class"], sort=False):
        ok = cell[cell["status"] == "ok"]
        row = {
            "arm": arm,
            "regime": cell["regime"].iloc[0],
            "group": cell["group"].iloc[0],
            "variant": cell["variant"].iloc[0],
            "per_class": per_class,
            "labelled_per_class": cell["labelled_per_class"].mean(),
            "n": len(ok),  # runs; collect refuses two ok runs of one arm, budget and unit
            "n_seeds": len(ok[UNIT].drop_duplicates()),
            "n_failed": int((cell["status"] != "ok").sum()),
        }
        if "selection" in cell:  # the protocol that chose these runs (reports.selection)
            row["selection"] = "; ".join(sorted(set(cell["selection"].dropna())))
        for metric in METRICS:
            row |= _metric_cells(ok, metric)
        for cost in COSTS:
            if cost in ok:
                row[f"{cost}_mean"] = float(ok[cost].mean())
        rows.append(row)
    out = pd.DataFrame(rows)
    for metric in METRICS:
        if not (out[f"{metric}_n"] >= MIN_BOOT).any():
            out = out.drop(columns=[f"{metric}_boot_low", f"{metric}_boot_high"])
    out = out.assign(_b=budget_order(out["per_class"])).sort_values(["arm", "_b"])
    return out.drop(columns="_b").reset_index(drop=True)
