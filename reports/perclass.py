"""Per-class accuracy and confusion matrices of the target test split, at chosen budgets.

A mean accuracy hides which classes a regime gets wrong. Each record may carry
``record.confusion`` (counts, rows = true class, columns = predicted, the target test split);
per arm and budget the report shows per-class accuracy (recall: diagonal over row sum) as the
mean over runs, and the confusion matrix summed over runs. Records without it are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from common.records import RunRecord
from reports.collect import budget_order
from reports.tables import arm_order


def chosen_budgets(runs: pd.DataFrame, asked: list[str] | None = None) -> list[str]:
    """The budgets to show: those asked for (and present), else the smallest and the largest."""
    present = pd.Series(runs.loc[runs["status"] == "ok", "per_class"].unique())
    if present.empty:
        return []
    if asked:
        return [b for b in asked if b in set(present)]
    ordered = list(present.iloc[budget_order(present).argsort()])
    return list(dict.fromkeys([ordered[0], ordered[-1]]))


def _matrices(runs: pd.DataFrame, records: list[RunRecord], budget: str) -> dict[str, list]:
    """Arm -> its runs' confusion matrices (numpy) at ``budget``, ok runs that carry one."""
    out: dict[str, list] = {}
    for i, row in enumerate(runs.itertuples()):
        matrix = records[i].confusion
        if row.status == "ok" and row.per_class == budget and matrix:
            out.setdefault(row.arm, []).append(np.asarray(matrix, float))
    return out


def _classes(records: list[RunRecord], size: int) -> list[str]:
    for r in records:
        names = r.classes.get("target", [])
        if len(names) == size:
            return [str(n) for n in names]
    return [str(i) for i in range(size)]


def per_class_table(runs: pd.DataFrame, records: list[RunRecord], budget: str) -> pd.DataFrame:
    """Arms x target classes: per-class test accuracy, mean over runs; ``n`` runs per arm."""
    mats = _matrices(runs, records, budget)
    rows = {}
    for arm, found in mats.items():
        recall = [np.diag(m) / np.maximum(m.sum(axis=1), 1) for m in found]
        rows[arm] = list(np.mean(recall, axis=0)) + [len(found)]
    if not rows:
        return pd.DataFrame()
    size = len(next(iter(rows.values()))) - 1
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=[*_classes(records, size), "n"]
    ).astype({"n": int})
    order = arm_order(runs["arm"], runs["regime"])
    return table.loc[[a for a in order if a in table.index]].round(3)


def confusion_figure(runs: pd.DataFrame, records: list[RunRecord], budget: str) -> Figure | None:
    """One heatmap per arm of its confusion matrix summed over runs (rows: true class)."""
    mats = _matrices(runs, records, budget)
    if not mats:
        return None
    order = [a for a in arm_order(runs["arm"], runs["regime"]) if a in mats]
    cols = min(3, len(order))
    rows = -(-len(order) // cols)
    fig = Figure(figsize=(3.6 * cols, 3.4 * rows + 0.4))
    for k, arm in enumerate(order):
        total = np.sum(mats[arm], axis=0)
        names = _classes(records, len(total))
        ax = fig.add_subplot(rows, cols, k + 1)
        share = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, vmin=0, vmax=1)
        if len(total) <= 12:
            for (i, j), v in np.ndenumerate(total):
                colour = "k" if share[i, j] > 0.6 else "w"  # readable on viridis' yellow end
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color=colour)
        ticks = range(len(names)) if len(names) <= 20 else []
        ax.set_xticks(ticks, [names[t] for t in ticks], fontsize=6, rotation=90)
        ax.set_yticks(ticks, [names[t] for t in ticks], fontsize=6)
        ax.set_title(f"{arm} (n={len(mats[arm])})", fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.suptitle(f"Target test confusion at {budget} per class (counts summed over runs)")
    fig.tight_layout()
    return fig
