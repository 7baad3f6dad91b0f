"""The data-efficiency table: per arm, AULC, IQM and effective data transferred per budget.

Curves use labelled examples *per class* on the x axis (the budget grid of the sweep), on the
common grid of budgets every regime has, so AULCs are comparable (METRICS.md §2.2). AULC is
computed per seed (a seed is one labelled subset per budget) and bootstrapped over seeds; seeds
missing a budget are left out of AULC and counted. Effective data transferred compares the
regime's mean curve with scratch's (§2.3): censored values are flagged, never extrapolated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.aggregate import RESAMPLES, bootstrap_ci
from reports.arms import ensure_arms, reference_arm
from reports.collect import budget_order
from reports.compare import BASELINE, iqm, iqm_ci
from reports.curves import aulc, data_multiplier, effective_data, required_n

METRIC = "test/acc"
# Accuracies at which the data multiplier M = n_req(scratch) / n_req(regime) is reported.
TARGET_ACCURACIES = (0.9, 0.95)
AULC_METHOD = (
    "AULC: trapezoid of accuracy over ln(labelled per class) on the budgets every regime has, "
    "divided by the ln-range, per seed; mean and 95% percentile bootstrap over seeds"
)
TRANSFER_METHOD = (
    "effective data transferred D_T = D_E - n (labelled per class): D_E is where scratch's mean "
    "curve (monotone envelope, linear in ln n) reaches the regime's mean accuracy at n; "
    "'>' marks a lower bound (beyond scratch's best), '<' an upper bound (below its first point). "
    "n for X%: labelled per class the regime needs to reach accuracy X (same interpolation); M: "
    "the data multiplier n_req(scratch) / n_req(regime), '-' when either is censored"
)


def _grid(ok: pd.DataFrame) -> pd.DataFrame:
    """Budgets (with their labelled-per-class x value) present for every arm, ascending."""
    per_arm = ok.groupby("arm")["per_class"].apply(set)
    common = set.intersection(*per_arm) if len(per_arm) else set()
    x = ok[ok["per_class"].isin(common)].groupby("per_class")["labelled_per_class"].mean()
    return x.sort_values().to_frame("n")


def data_efficiency(runs: pd.DataFrame, reps: int = RESAMPLES) -> pd.DataFrame:
    """One row per arm, each group on its own grid; columns documented in the module docstring."""
    ok = ensure_arms(runs[(runs["status"] == "ok") & runs[METRIC].notna()])
    parts = [_group_efficiency(cell, reps) for _, cell in ok.groupby("group", sort=False)]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _group_efficiency(ok: pd.DataFrame, reps: int) -> pd.DataFrame:
    """:func:`data_efficiency` for the arms of one group (compared with its scratch arm)."""
    grid = _grid(ok)
    if len(grid) < 2:
        return pd.DataFrame()
    budgets, n = list(grid.index), grid["n"].to_numpy()
    curves = ok.pivot_table(index=["arm", "seed"], columns="per_class", values=METRIC)
    curves = curves.reindex(columns=budgets)
    mean_curves = curves.groupby(level="arm").mean()
    rows = []
    for arm, per_seed in curves.groupby(level="arm"):
        complete = per_seed.dropna()
        seed_aulc = np.array([aulc(n, row) for row in complete.to_numpy()])
        lo, hi = bootstrap_ci(seed_aulc, reps)
        scores = complete.to_numpy()
        iqm_lo, iqm_hi = iqm_ci(scores) if len(scores) else (np.nan, np.nan)
        first = ok[ok["arm"] == arm].iloc[0]
        row = {
            "arm": arm,
            "regime": first["regime"],
            "group": first["group"],
            "aulc": float(seed_aulc.mean()) if len(seed_aulc) else np.nan,
            "aulc_ci_low": lo,
            "aulc_ci_high": hi,
            "aulc_seeds": len(seed_aulc),
            "iqm": iqm(scores) if len(scores) else np.nan,
            "iqm_ci_low": iqm_lo,
            "iqm_ci_high": iqm_hi,
            "acc_smallest": float(mean_curves.loc[arm].iloc[0]),
            "acc_largest": float(mean_curves.loc[arm].iloc[-1]),
            "budgets": ",".join(budgets),
        }
        base_arm = reference_arm(ok, arm, BASELINE)
        if base_arm in mean_curves.index:
            base = mean_curves.loc[base_arm].to_numpy()
            mine = mean_curves.loc[arm].to_numpy()
            for budget, t in zip(budgets, effective_data(n, base, mine), strict=True):
                row[f"dt_{budget}"] = t.transferred
                row[f"dt_{budget}_censored"] = t.censored
                row[f"dt_{budget}_text"] = t.text()
            for alpha in TARGET_ACCURACIES:
                row[f"n_req_{alpha}"] = required_n(alpha, n, mine).text()
                row[f"multiplier_{alpha}"] = data_multiplier(alpha, n, base, mine)
        rows.append(row)
    return pd.DataFrame(rows)


def efficiency_table(eff: pd.DataFrame) -> pd.DataFrame:
    """The table a reader sees: AULC [CI], IQM, smallest/largest budget, D_T per budget."""
    if eff.empty:
        return eff
    grids = eff["budgets"].unique()
    budgets = pd.Series(sorted({b for g in grids for b in g.split(",")}))
    budgets = list(budgets.iloc[budget_order(budgets).argsort()])
    one_grid = len(grids) == 1  # several groups may each have their own budgets
    table = pd.DataFrame(
        {
            "AULC [95% CI]": [
                f"{r.aulc:.3f} [{r.aulc_ci_low:.3f}, {r.aulc_ci_high:.3f}] n={r.aulc_seeds}"
                for r in eff.itertuples()
            ],
            "IQM acc [95% CI]": [
                f"{r.iqm:.3f} [{r.iqm_ci_low:.3f}, {r.iqm_ci_high:.3f}]" for r in eff.itertuples()
            ],
            f"acc @ {budgets[0] if one_grid else 'smallest'}": eff["acc_smallest"]
            .map("{:.3f}".format)
            .to_list(),
            f"acc @ {budgets[-1] if one_grid else 'largest'}": eff["acc_largest"]
            .map("{:.3f}".format)
            .to_list(),
        },
        index=ensure_arms(eff)["arm"],
    )
    for b in budgets:
        if f"dt_{b}_text" in eff:
            table[f"D_T @ {b}"] = eff[f"dt_{b}_text"].fillna("-").to_list()
    for alpha in TARGET_ACCURACIES:
        if f"multiplier_{alpha}" in eff:
            table[f"n for {alpha:.0%} (M)"] = [
                "-"
                if not isinstance(req, str)  # no scratch arm in this arm's group
                else f"{req} ({m:.2f}x)"
                if m == m
                else f"{req} (-)"  # m != m: censored, no M
                for req, m in zip(eff[f"n_req_{alpha}"], eff[f"multiplier_{alpha}"], strict=True)
            ]
    return table
