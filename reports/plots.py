"""Figures, one function each: (summary, ax) -> Axes. matplotlib's Agg backend only."""

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
}
ORDER = list(COLORS)


def _regimes(summary: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(summary["regime"]))
    return [r for r in ORDER if r in present] + [r for r in present if r not in ORDER]


def _budget_ticks(ax: Axes, summary: pd.DataFrame) -> None:
    ticks = summary.groupby("per_class")["labelled_per_class"].mean().sort_values()
    ax.set_xscale("log")
    ax.set_xticks(ticks.to_numpy())
    ax.set_xticklabels([f"all\n({v:.0f})" if k == "all" else k for k, v in ticks.items()])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class (log scale)")


def _line(ax: Axes, cell: pd.DataFrame, metric: str, label: str, color: str, **kw: object) -> None:
    x = cell["labelled_per_class"]
    ax.plot(x, cell[f"{metric}_mean"], marker="o", ms=4, color=color, label=label, **kw)
    ax.fill_between(
        x, cell[f"{metric}_ci_low"], cell[f"{metric}_ci_high"], color=color, alpha=0.15, lw=0
    )


def data_efficiency(summary: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Target accuracy against labelled examples per class, one line per regime, 95% CI band."""
    ax = ax or plt.figure(figsize=(7, 4.5)).add_subplot()
    for regime in _regimes(summary):
        cell = summary[summary["regime"] == regime].sort_values("labelled_per_class")
        style = {"ls": "--"} if regime == "pixels" else {}
        label = "pixels (floor)" if regime == "pixels" else regime
        _line(ax, cell, "test/acc", label, COLORS.get(regime, "black"), **style)
    _budget_ticks(ax, summary)
    ax.set_ylabel("target test accuracy")
    ax.set_title("Data efficiency (mean over seeds, 95% bootstrap CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def forgetting(summary: pd.DataFrame) -> Figure:
    """Source probe accuracy before (dashed) and after (solid) target training, and their gap."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    has = summary.dropna(subset=["source/acc_before_mean"])
    for regime in _regimes(has):
        cell = has[has["regime"] == regime].sort_values("labelled_per_class")
        color = COLORS.get(regime, "black")
        left.plot(cell["labelled_per_class"], cell["source/acc_before_mean"], ls=":", color=color)
        _line(left, cell, "source/acc_after", regime, color)
        _line(right, cell, "source/forgetting", regime, color)
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
        for regime in _regimes(summary):
            cell = summary[summary["regime"] == regime].sort_values("labelled_per_class")
            cost = cell["cost/target_s_mean"] + cell[pre]
            cell, cost = cell[cost > 0], cost[cost > 0]  # a log axis cannot show zero
            ax.plot(
                cost,
                cell["test/acc_mean"],
                marker="o",
                ms=4,
                color=COLORS.get(regime, "black"),
                label=regime,
            )
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock seconds per run (log scale)")
        ax.set_title(f"Accuracy vs compute, {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("target test accuracy (mean over seeds)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
