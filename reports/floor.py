"""The floor every deep regime is held to: the best classical baseline, per budget and by AULC.

A baseline here is a regime that trains no backbone (its record reads none of the gradient
stages: pixels, SVM, kNN, label spreading). Which of them is best differs by budget (label
spreading uses the unlabelled images and wins at 1-5 per class; the SVM can win with all
labels), so the floor is the per-budget maximum of their mean accuracies. It is drawn for the
reader's eye only: every claim compares a regime with each baseline separately (declared,
Holm-corrected), never with this maximum, which would be a max of noisy means picked after
the fact.
"""

from __future__ import annotations

import pandas as pd

from common.records import RunRecord
from reports.arms import reads

GRADIENT_STAGES = frozenset({"pretrain", "continued_pretrain", "train"})


def baseline_regimes(records: list[RunRecord]) -> set[str]:
    """Regimes whose records say they read no gradient stage (records without ``reads``: none)."""
    found = set()
    for record in records:
        read = reads(record)
        if read is not None and not read & GRADIENT_STAGES:
            found.add(str(record.regime))
    return found


def floor_curve(summary: pd.DataFrame, baselines: set[str]) -> pd.DataFrame:
    """Per group and budget: the baseline arm with the highest mean test accuracy.

    Columns: group, per_class, labelled_per_class, acc (its mean), arm, regime.
    """
    cells = summary[summary["regime"].isin(baselines)].dropna(subset=["test/acc_mean"])
    if cells.empty:
        return pd.DataFrame(
            columns=["group", "per_class", "labelled_per_class", "acc", "arm", "regime"]
        )
    by = cells.groupby(["group", "per_class"], sort=False, dropna=False)["test/acc_mean"]
    best = cells.loc[by.idxmax()]
    return (
        best.rename(columns={"test/acc_mean": "acc"})[
            ["group", "per_class", "labelled_per_class", "acc", "arm", "regime"]
        ]
        .sort_values(["group", "labelled_per_class"])
        .reset_index(drop=True)
    )


def best_by_aulc(eff: pd.DataFrame, summary: pd.DataFrame, baselines: set[str]) -> list[str]:
    """One sentence per group: the baseline with the highest mean AULC, and its interval."""
    if eff.empty or not baselines:  # one budget: no curve, no AULC
        return []
    regime_of = summary.drop_duplicates("arm").set_index("arm")["regime"]
    group_of = summary.drop_duplicates("arm").set_index("arm")["group"]
    rows = eff[eff["arm"].map(regime_of).isin(baselines)].dropna(subset=["aulc"])
    out = []
    for group, cell in rows.groupby(rows["arm"].map(group_of), sort=False, dropna=False):
        top = cell.loc[cell["aulc"].idxmax()]
        where = f" ({group})" if isinstance(group, str) and group else ""
        among = ", ".join(sorted(cell["arm"].astype(str)))
        out.append(
            f"Floor{where}: the best classical baseline by AULC is {top['arm']}, "
            f"{top['aulc']:.3f} [{top['aulc_ci_low']:.3f}, {top['aulc_ci_high']:.3f}] "
            f"(95% t CI, n={int(top['aulc_seeds'])}; among {among})."
        )
    return out
