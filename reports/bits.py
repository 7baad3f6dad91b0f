"""Bits per byte per stage: what each stage of a text regime did to its language model.

A language model's records hold its source bits per byte after pretraining, after continued
pretraining and after target training, and its target bits per byte after pretraining and after
continued pretraining (``lm/*``, common/metrics.py). The figure draws their means over runs per
regime, stage by stage, so a reader sees DAPT lower the target's bits and raise the source's,
and fine-tuning raise the source's at each budget.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from reports.collect import budget_order
from reports.plots import COLORS

SOURCE = (
    ("pretrained", "lm/source_bpb_before"),
    ("continued", "lm/source_bpb_continued"),
)
TARGET = (("pretrained", "lm/target_bpb_before"), ("continued", "lm/target_bpb_continued"))


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    if "lm/source_bpb_before" not in runs:
        return runs.iloc[0:0]
    return runs[runs["status"].eq("ok") & runs["lm/source_bpb_before"].notna()]


def figure(runs: pd.DataFrame) -> Figure | None:
    """Source and target bits per byte per stage, mean over runs, one line per arm; or None."""
    ok = _ok(runs)
    if ok.empty:
        return None
    order = budget_order(ok["per_class"].astype(str)).sort_values().index
    budgets = list(dict.fromkeys(ok.loc[order, "per_class"].astype(str)))
    stages = [s for s, _ in SOURCE] + [f"fine-tuned\n{b}/class" for b in budgets]
    fig = Figure(figsize=(10, 4), layout="constrained")
    source, target = fig.subplots(1, 2)
    for arm, group in ok.groupby("arm", sort=True):
        color = COLORS.get(str(group["regime"].iloc[0]), "black")
        # the stages in sequence are joined; each budget's end state is a point of its own
        staged = [(i, group[m].mean()) for i, (_, m) in enumerate(SOURCE) if m in group]
        staged = [(i, v) for i, v in staged if pd.notna(v)]
        source.plot(*zip(*staged, strict=True), marker="o", color=color, label=arm)
        after = group.groupby(group["per_class"].astype(str))["lm/source_bpb_after"].mean()
        ends = [(len(SOURCE) + j, after.get(b)) for j, b in enumerate(budgets)]
        ends = [(x, v) for x, v in ends if pd.notna(v)]
        if ends:
            source.scatter(*zip(*ends, strict=True), marker="s", color=color)
        tpoints = [(i, group[m].mean()) for i, (_, m) in enumerate(TARGET) if m in group]
        tpoints = [(i, v) for i, v in tpoints if pd.notna(v)]
        if tpoints:
            target.plot(*zip(*tpoints, strict=True), marker="o", color=color, label=arm)
    source.set_xticks(range(len(stages)), stages, fontsize=8)
    target.set_xticks(range(len(TARGET)), [s for s, _ in TARGET])
    source.set_ylabel("source test bits per byte (lower = better LM)")
    target.set_ylabel("target test bits per byte")
    for ax in (source, target):
        ax.grid(alpha=0.3)
    source.legend(fontsize=7)
    fig.suptitle(f"Bits per byte after each stage (mean over {len(ok)} runs with a language model)")
    return fig
