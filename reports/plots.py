"""Figures, one function each: (summary, ax) -> Axes. matplotlib's Agg backend only.

One line per arm (``reports.arms``): the colour says the regime, the marker the group.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Fixed colours, so a regime looks the same in every figure and every report.
COLORS = {
    "pixels": "#7f7f7f",
    "scratch": "#1f77b4",
    "linear_probe": "#2ca02c",
    "finetune": "#d62728",
    "incremental_pretrain": "#9467bd",
    "lp_ft": "#e377c2",
    "longer_pretrain": "#ff7f0e",
    "unrelated_pretrain": "#aec7e8",
    "task_pretrain": "#c5b0d5",
    "domain_then_task_pretrain": "#5254a3",
    "svm": "#bcbd22",
    "knn": "#17becf",
    "label_spreading": "#8c564b",
    "continual_pretrain": "#393b79",
    "wise_ft": "#637939",
    "l2sp": "#8c6d31",
    "ewc": "#843c39",
    "tfidf": "#525252",
}
ORDER = list(COLORS)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _arms(summary: pd.DataFrame) -> list[tuple[str, str, dict]]:
    """(arm, regime, style) per arm: colour by regime, marker by group, regimes in ORDER."""
    arms = summary.drop_duplicates("arm")
    rank = {r: i for i, r in enumerate(ORDER)}
    arms = arms.assign(_r=arms["regime"].map(lambda r: rank.get(r, len(rank)))).sort_values(
        ["_r", "arm"]
    )
    groups = list(dict.fromkeys(summary["group"]))
    return [
        (a.arm, a.regime, {"marker": MARKERS[groups.index(a.group) % len(MARKERS)]})
        for a in arms.itertuples()
    ]


def _budget_ticks(ax: Axes, summary: pd.DataFrame) -> None:
    ticks = summary.groupby("per_class")["labelled_per_class"].mean().sort_values()
    ax.set_xscale("log")
    ax.set_xticks(ticks.to_numpy())
    ax.set_xticklabels([f"all\n({v:.0f})" if k == "all" else k for k, v in ticks.items()])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class (log scale)")


def _line(ax: Axes, cell: pd.DataFrame, metric: str, label: str, color: str, **kw: object) -> None:
    x = cell["labelled_per_class"]
    kw = {"marker": "o"} | kw
    ax.plot(x, cell[f"{metric}_mean"], ms=4, color=color, label=label, **kw)
    ax.fill_between(
        x, cell[f"{metric}_ci_low"], cell[f"{metric}_ci_high"], color=color, alpha=0.15, lw=0
    )


def _floor(ax: Axes, floor: pd.DataFrame) -> None:
    """The best classical baseline per budget: a wide grey band behind the arms, named per point."""
    for i, (group, cell) in enumerate(floor.groupby("group", sort=False, dropna=False)):
        where = f" ({group})" if isinstance(group, str) and group else ""
        label = f"floor: best classical baseline{where}" if i < 3 else None
        x, y = cell["labelled_per_class"], cell["acc"]
        ax.plot(x, y, color="black", lw=6, alpha=0.15, solid_capstyle="round", label=label)
        for xi, yi, name in zip(x, y, cell["regime"], strict=True):
            ax.annotate(
                name, (xi, yi), xytext=(0, 7), textcoords="offset points", fontsize=6,
                ha="center", color="dimgray",
            )  # fmt: skip


def data_efficiency(
    summary: pd.DataFrame, ax: Axes | None = None, floor: pd.DataFrame | None = None
) -> Axes:
    """Target accuracy against labelled examples per class, one line per arm, 95% CI band.

    ``floor`` (``reports.floor.floor_curve``): the best classical baseline at each budget.
    """
    ax = ax or plt.figure(figsize=(7, 4.5)).add_subplot()
    if floor is not None and not floor.empty:
        _floor(ax, floor)
    for arm, regime, style in _arms(summary):
        cell = summary[summary["arm"] == arm].sort_values("labelled_per_class")
        style = style | ({"ls": "--"} if regime in ("pixels", "tfidf") else {})
        _line(ax, cell, "test/acc", arm, COLORS.get(regime, "black"), **style)
    _budget_ticks(ax, summary)
    ax.set_ylabel("target test accuracy")
    ax.set_title("Data efficiency (mean over seeds, 95% Student-t CI)")
    ax.grid(alpha=0.3)
    if summary["arm"].nunique() > 5:  # many arms: the legend beside the plot, not over it
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.legend(fontsize=8, loc="lower right")
    return ax


def forgetting(summary: pd.DataFrame) -> Figure:
    """Source probe accuracy before (dashed) and after (solid) target training, and their gap."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    has = summary.dropna(subset=["source/acc_before_mean"])
    for arm, regime, style in _arms(has):
        cell = has[has["arm"] == arm].sort_values("labelled_per_class")
        color = COLORS.get(regime, "black")
        left.plot(cell["labelled_per_class"], cell["source/acc_before_mean"], ls=":", color=color)
        _line(left, cell, "source/acc_after", arm, color, **style)
        _line(right, cell, "source/forgetting", arm, color, **style)
    for ax in (left, right):
        _budget_ticks(ax, has)
        ax.grid(alpha=0.3)
    left.set_ylabel("source accuracy (linear probe)")
    left.set_title("Source accuracy: before (dotted) and after (solid)")
    right.axhline(0, color="black", lw=0.8)
    right.set_ylabel("forgetting = before - after")
    right.set_title("Forgetting (probe-refit on source features)")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_compute(summary: pd.DataFrame) -> Figure:
    """Target accuracy against wall-clock cost per run, pretraining amortised and in full.

    Each line is one regime, its points the budgets (small to large). Left: pretraining divided
    among the runs that shared it in these records; right: each run charged the whole stage.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, pre, title in (
        (axes[0], "cost/pretrain_amortised_s_mean", "pretraining amortised"),
        (axes[1], "cost/pretrain_full_s_mean", "pretraining in full"),
    ):
        for arm, regime, style in _arms(summary):
            cell = summary[summary["arm"] == arm].sort_values("labelled_per_class")
            cost = cell["cost/target_s_mean"] + cell[pre]
            cell, cost = cell[cost > 0], cost[cost > 0]  # a log axis cannot show zero
            ax.plot(
                cost,
                cell["test/acc_mean"],
                ms=4,
                color=COLORS.get(regime, "black"),
                label=arm,
                **style,
            )
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock seconds per run (log scale)")
        ax.set_title(f"Accuracy vs compute, {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("target test accuracy (mean over seeds)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def accuracy_matrices(matrix: pd.DataFrame) -> Figure:
    """One heatmap of R (rows: after stage, columns: evaluated domain) per stream variant."""
    variants = list(dict.fromkeys(matrix["variant"]))
    cols = min(3, len(variants))
    rows = -(-len(variants) // cols)
    fig = plt.figure(figsize=(4.2 * cols, 3.6 * rows))
    low = max(0.0, float(matrix["mean"].min()) - 0.05)  # one colour scale for every panel
    for k, variant in enumerate(variants):
        ax = fig.add_subplot(rows, cols, k + 1)
        cell = matrix[matrix["variant"] == variant]
        grid = cell.pivot(index="stage", columns="domain", values="mean")
        domains = list(dict.fromkeys(cell.sort_values("stage")["stage_domain"]))
        grid = grid[domains]
        ax.imshow(grid.to_numpy(), vmin=low, vmax=1, cmap="viridis")
        middle = (low + 1) / 2
        for (i, j), v in pd.DataFrame(grid.to_numpy()).stack().items():
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < middle else "k")
        ax.set_xticks(range(len(domains)), domains, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(domains)), [f"after {d}" for d in domains], fontsize=7)
        ax.set_title(variant or "stream", fontsize=8)
    fig.suptitle(
        f"Accuracy matrix R[i, j]: probe accuracy on domain j after stage i (colour {low:.2f}-1)"
    )
    fig.tight_layout()
    return fig


def _err(frame: pd.DataFrame, prefix: str) -> list:
    """Asymmetric error bars (below, above the mean) from ``<prefix>_mean/_ci_low/_ci_high``."""
    mean = frame[f"{prefix}_mean"].to_numpy(float)
    low, high = (
        frame[f"{prefix}_ci_low"].to_numpy(float),
        frame[f"{prefix}_ci_high"].to_numpy(float),
    )
    return [mean - low, high - mean]


def forgetting_vs_replay(per_variant: pd.DataFrame) -> Figure:
    """Chaudhry forgetting against replay fraction, one line per schedule, 95% CI bars."""
    fig = plt.figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for schedule, cell in per_variant.groupby("schedule"):
        cell = cell.sort_values("replay")
        ax.errorbar(
            cell["replay"],
            cell["fgt_mean"],
            yerr=_err(cell, "fgt"),
            marker="o",
            capsize=3,
            label=f"schedule: {schedule}",
        )
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("replay fraction of each continued-pretraining batch")
    ax.set_ylabel("forgetting (max - final, Chaudhry)")
    ax.set_title("Forgetting against replay (mean over seeds, 95% Student-t CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def forgetting_tradeoff(per_variant: pd.DataFrame) -> Figure:
    """Forgetting against target gain per variant: what each mitigation costs and buys."""
    fig = plt.figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for _, row in per_variant.iterrows():
        one = row.to_frame().T
        ax.errorbar(
            row["gain_mean"],
            row["fgt_mean"],
            xerr=_err(one, "gain"),
            yerr=_err(one, "fgt"),
            marker="o",
            capsize=3,
            label=row["variant"],
        )
    ax.set_xlabel("target gain: R[T,T] - R[1,T] (last domain)")
    ax.set_ylabel("forgetting (max - final, Chaudhry)")
    ax.set_title("Trade-off: forgetting against target gain (95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return fig
