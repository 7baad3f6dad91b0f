"""The data-efficiency table: per arm, AULC, IQM and effective data transferred per budget.

Curves use labelled examples *per class* on the x axis, on the budgets every arm of a group has,
so AULCs are comparable (METRICS.md §2.2). AULC is computed per pairing unit (subset_seed,
train_seed) and summarised with a Student-t interval (BCa beside from 10 units). Effective data
transferred D_T and the data multiplier M compare the arm's mean curve with scratch's (§2.3);
their intervals resample pairing units and recompute both mean curves (§5), only from 10 units.
Nothing is inverted against a flat scratch curve: it is censored, and said so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.compare import BASELINE, iqm, iqm_ci
from reports.crossed import INDEPENDENT, design
from reports.curves import data_multiplier, effective_data, monotone, required_n
from reports.family import UNIT, grid, unit_aulc, units_of, with_keys
from reports.inference import MIN_BOOT, boot_interval, t_interval
from reports.selection import protocol_labels

METRIC = "test/acc"
TARGET_ACCURACIES = (0.9, 0.95)  # accuracies at which M = n_req(scratch) / n_req(arm) is shown
FLAT = 0.02  # scratch's monotone envelope must rise by at least this over the grid
TRANSFER_RESAMPLES = 2_000
FLAT_TEXT = "censored: scratch's curve is flat"
AULC_METHOD = (
    "AULC: trapezoid of accuracy over ln(labelled per class) on the budgets every arm of the "
    "group has, divided by the ln-range, per pairing unit; mean and Student-t 95% interval over "
    f"units (n = units with the whole grid), BCa bootstrap beside from {MIN_BOOT} units"
)
TRANSFER_METHOD = (
    "effective data transferred D_T = D_E - n (labelled per class): D_E is where scratch's mean "
    "curve (monotone envelope, linear in ln n) reaches the arm's mean accuracy at n; "
    "'>' marks a lower bound (beyond scratch's best), '<' an upper bound (below its first point). "
    "n for X%: labelled per class the arm needs to reach accuracy X (same interpolation); M: "
    "the data multiplier n_req(scratch) / n_req(arm), '-' when either is censored. Intervals: "
    f"95% percentile bootstrap over pairing units ({TRANSFER_RESAMPLES:,} resamples of the units "
    "both arms have, both mean curves recomputed, censored resamples kept as +-infinity), only "
    f"from {MIN_BOOT} units. When scratch's envelope rises by less than {FLAT} over the grid, "
    f"D_T and M are not computed ('{FLAT_TEXT}')"
)


def _transfer(n: np.ndarray, budgets: list[str], base: np.ndarray, mine: np.ndarray) -> dict:
    """Point values of D_T per budget and M per target accuracy from two mean curves."""
    row: dict = {}
    for budget, t in zip(budgets, effective_data(n, base, mine), strict=True):
        row[f"dt_{budget}"] = t.transferred
        row[f"dt_{budget}_censored"] = t.censored
        row[f"dt_{budget}_text"] = t.text()
    for alpha in TARGET_ACCURACIES:
        row[f"n_req_{alpha}"] = required_n(alpha, n, mine).text()
        row[f"multiplier_{alpha}"] = data_multiplier(alpha, n, base, mine)
    return row


def _draw(n: np.ndarray, base: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """One resample's D_T per budget (censored as +-inf) and M per target accuracy."""
    dts = [
        {"above": np.inf, "below": -np.inf}.get(t.censored, t.transferred)
        for t in effective_data(n, base, mine)
    ]
    ms = [data_multiplier(alpha, n, base, mine) for alpha in TARGET_ACCURACIES]
    return np.array(dts + ms, float)


def _intervals(n: np.ndarray, budgets: list[str], base: pd.DataFrame, mine: pd.DataFrame) -> dict:
    """Bootstrap over the units both curves have; percentile bounds, NaN where undefined."""
    units = base.index.intersection(mine.index)
    out: dict = {"transfer_units": len(units)}
    if len(units) < MIN_BOOT or design(*units_of(units)) != INDEPENDENT:
        return out  # too few units, or units sharing seeds (not an i.i.d. sample to resample)
    b, m = base.loc[units].to_numpy(float), mine.loc[units].to_numpy(float)
    rng = np.random.default_rng(0)
    draws = np.array(
        [
            _draw(n, np.nanmean(b[idx], axis=0), np.nanmean(m[idx], axis=0))
            for idx in rng.integers(0, len(units), size=(TRANSFER_RESAMPLES, len(units)))
        ]
    )
    names = [f"dt_{b}" for b in budgets] + [f"multiplier_{a}" for a in TARGET_ACCURACIES]
    for k, name in enumerate(names):
        col = draws[:, k]
        if np.isnan(col).any():  # some resample has no defined value: no interval
            continue
        lo, hi = np.quantile(col, [0.025, 0.975], method="inverted_cdf")
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(lo), float(hi)
    return out


def _arm_row(arm: str, per_unit: pd.DataFrame, curves: pd.DataFrame, x: pd.Series) -> dict:
    mine = per_unit[per_unit["arm"] == arm]
    vals = mine["aulc"].to_numpy(float)
    units = (mine["subset_seed"].to_numpy(), mine["train_seed"].to_numpy())
    ci, boot = t_interval(vals, units=units), boot_interval(vals, units=units)
    scores = curves.loc[arm].dropna().to_numpy()
    iqm_lo, iqm_hi = iqm_ci(scores) if len(scores) else (np.nan, np.nan)
    mean_curve = curves.loc[arm].mean()
    return {
        "arm": arm, "aulc": ci.mean, "aulc_std": ci.std, "aulc_ci_low": ci.low,
        "aulc_ci_high": ci.high, "aulc_boot_low": boot[0], "aulc_boot_high": boot[1],
        "aulc_seeds": ci.n, "iqm": iqm(scores) if len(scores) else np.nan,
        "iqm_ci_low": iqm_lo, "iqm_ci_high": iqm_hi,
        "acc_smallest": float(mean_curve.iloc[0]), "acc_largest": float(mean_curve.iloc[-1]),
        "budgets": ",".join(x.index),
    }  # fmt: skip


def _group_rows(ok: pd.DataFrame, group: str) -> list[dict]:
    rows = ok[ok["group"] == group]
    x = grid(rows)
    if len(x) < 2:
        return []
    budgets, n = list(x.index), x.to_numpy()
    curves = rows.pivot_table(index=["arm", *UNIT], columns="per_class", values=METRIC)
    curves = curves.reindex(columns=budgets)
    per_unit = unit_aulc(rows, group)
    regime = rows.groupby("arm")["regime"].first()
    base = list(regime[regime == BASELINE].index)
    out = []
    for arm in curves.index.unique(level="arm"):
        row = {"regime": regime[arm], "group": group} | _arm_row(arm, per_unit, curves, x)
        if len(base) == 1:
            scratch, mine = curves.loc[base[0]], curves.loc[arm]
            flat = float(np.ptp(monotone(scratch.mean().to_numpy()))) < FLAT
            row["scratch_flat"] = flat
            if not flat:
                row |= _transfer(n, budgets, scratch.mean().to_numpy(), mine.mean().to_numpy())
                if arm != base[0]:  # scratch against itself: D_T = 0, M = 1 by construction
                    row |= _intervals(n, budgets, scratch, mine)
        out.append(row)
    return out


def data_efficiency(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (per group); columns in the module docstring and the README."""
    ok = with_keys(runs[(runs["status"] == "ok") & runs[METRIC].notna()])
    out = pd.DataFrame([r for g in sorted(ok["group"].unique()) for r in _group_rows(ok, g)])
    if "selection" in ok and not out.empty:  # the protocol that chose the runs
        label = protocol_labels(ok)
        out.insert(1, "selection", out["arm"].map(label))
    return out


def _bounded(value: str, row: pd.Series, name: str) -> str:
    lo, hi = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    if lo is None or pd.isna(lo) or (np.isinf(lo) and lo == hi):  # every resample censored
        return value
    return f"{value} [{lo:.1f}, {hi:.1f}]".replace("inf", "∞")


def _transfer_cells(r: pd.Series, budgets: list[str]) -> dict:
    out = {}
    for b in budgets:
        if r.get("scratch_flat") is True:
            out[f"D_T @ {b}"] = FLAT_TEXT
        elif f"dt_{b}_text" in r and pd.notna(r[f"dt_{b}_text"]):
            out[f"D_T @ {b}"] = _bounded(r[f"dt_{b}_text"], r, f"dt_{b}")
    for alpha in TARGET_ACCURACIES:
        m = r.get(f"multiplier_{alpha}")
        if r.get("scratch_flat") is True:
            out[f"n for {alpha:.0%} (M)"] = FLAT_TEXT
        elif f"n_req_{alpha}" in r and pd.notna(r[f"n_req_{alpha}"]):
            mult = f"{m:.2f}x" if pd.notna(m) else "-"
            out[f"n for {alpha:.0%} (M)"] = (
                f"{r[f'n_req_{alpha}']} ({_bounded(mult, r, f'multiplier_{alpha}')})"
            )
    return out


def efficiency_table(eff: pd.DataFrame) -> pd.DataFrame:
    """The table a reader sees: AULC [t CI] n, BCa beside, IQM, ends of the curve, D_T, M."""
    if eff.empty:
        return eff
    rows = []
    for _, r in eff.iterrows():
        budgets = r["budgets"].split(",")
        cells = {
            "AULC [95% t CI] n": f"{r.aulc:.3f} [{r.aulc_ci_low:.3f}, {r.aulc_ci_high:.3f}] "
            f"n={r.aulc_seeds}",
            "AULC BCa 95%": "-"
            if pd.isna(r.aulc_boot_low)
            else f"[{r.aulc_boot_low:.3f}, {r.aulc_boot_high:.3f}]",
            "IQM acc [95% CI]": f"{r.iqm:.3f} [{r.iqm_ci_low:.3f}, {r.iqm_ci_high:.3f}]",
            "acc @ smallest": f"{r.acc_smallest:.3f} ({budgets[0]})",
            "acc @ largest": f"{r.acc_largest:.3f} ({budgets[-1]})",
        }
        protocol = {"selection": r["selection"]} if "selection" in r else {}
        rows.append(protocol | cells | _transfer_cells(r, budgets))
    return pd.DataFrame(rows, index=eff["arm"]).fillna("-")
