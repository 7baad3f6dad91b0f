"""The learning-forgetting frontier: per budget, target gain against source loss.

Why a frontier and not two tables: an arm that forgets less (a frozen probe, WiSE-FT's weight
interpolation, L2-SP, EWC) usually also gains less, so neither number alone ranks the arms. A point
(arm, budget) is Pareto-optimal within its budget when no other arm at that budget has a gain at
least as high and a forgetting at most as high, one of the two strictly: the arms worth choosing
among, whatever weight a reader gives each side.

- x, source loss: probe-refit forgetting ``source/forgetting`` (and head-retained
  ``source/head_forgetting`` where recorded), the summary's mean and interval per cell.
- y, target gain: the per-unit paired difference of ``test/acc`` against the group's reference
  (:func:`reports.compare.paired_differences`). The reference is the first regime of the declared
  ``comparisons.references`` that has runs in the group (:func:`references`): fixed by the
  declaration, before any number is read, never the reference that makes an arm look best. A
  group without one shows plain ``test/acc`` and says so.
- wise_ft's alpha-curve, the interpolated models theta(alpha) = (1 - alpha) theta_start + alpha
  theta_lp_ft (the start: the pretrained backbone with the probe head): x = mean over seeds of
  ``source/acc_before - wise/source/<alpha>``, y = the paired difference
  ``wise/target/<alpha>`` - the reference's ``test/acc``.

``regimebench-report SWEEP_DIR`` writes ``frontier.csv`` and ``figures/frontier.png``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from common.records import RunRecord
from reports.aggregate import CI_METHOD
from reports.collect import budget_order
from reports.compare import paired_differences
from reports.family import declared, with_keys
from reports.plots import COLORS
from reports.tables import arm_order, frontier_tables

PROBE, HEAD = "source/forgetting", "source/head_forgetting"
LEAD_REGIMES = ("wise_ft", "l2sp", "ewc")  # built to trade gain for forgetting: the section leads
WISE = "wise_ft"
TARGET, SOURCE = "wise/target/", "wise/source/"
NO_REFERENCE = "none (plain test/acc)"
ROUND = 6  # decimals of the means the Pareto comparison reads
GAIN = ["gain", "gain_ci_low", "gain_ci_high", "n_seeds", "reference"]
COLUMNS = ["arm", "per_class", *GAIN[:3], "forgetting", "forgetting_ci_low"]
COLUMNS += ["forgetting_ci_high", "n_seeds", "pareto", "reference"]
COLUMNS += ["head_forgetting", "head_forgetting_ci_low", "head_forgetting_ci_high"]
GAIN_METHOD = (
    "gain: paired by unit (subset_seed, train_seed), the mean of the per-unit differences arm - "
    "reference in test/acc, Student-t 95% interval (clipped to [-1, 1]); n = pairs"
)
RULE = (
    "The reference is, per group, the first regime of the experiment's declared "
    "comparisons.references that has runs in the group (fixed by the declaration before any "
    "number is read, never the one that flatters an arm; without one the y axis is plain test "
    "accuracy), and a point is Pareto-optimal when no other arm at its budget has a gain at least "
    "as high and a forgetting at most as high, one of the two strictly (ringed; the dashed step "
    "line is the front)."
)


def pareto_mask(gain: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Which points no other point dominates (higher gain is better, lower loss is better).

    j dominates i when gain[j] >= gain[i] and loss[j] <= loss[i], one of them strictly; equal
    points do not dominate each other, so both stay. A point with a NaN is never optimal and,
    comparing False with everything, dominates nothing.

    >>> pareto_mask(np.array([0.1, 0.2, 0.2, 0.0]), np.array([0.0, 0.1, 0.2, 0.0])).tolist()
    [True, True, False, False]
    """
    g, x = np.asarray(gain, float), np.asarray(loss, float)
    at_least = (g[:, None] >= g[None, :]) & (x[:, None] <= x[None, :])  # [j, i]: j vs i
    strictly = (g[:, None] > g[None, :]) | (x[:, None] < x[None, :])
    return ~(at_least & strictly).any(axis=0) & ~np.isnan(g) & ~np.isnan(x)


def references(runs: pd.DataFrame, records: list[RunRecord]) -> dict[str, str | None]:
    """Per group: the first declared reference regime with an ok run in it, else None."""
    ok = with_keys(runs[runs["status"] == "ok"])
    order = declared(records, set(ok["regime"]))["references"]
    present = ok.groupby("group")["regime"].agg(set)
    return {str(g): next((r for r in order if r in have), None) for g, have in present.items()}


def _paired_gains(runs: pd.DataFrame, refs: dict[str, str | None]) -> pd.DataFrame:
    """Per arm x budget of a group with a reference: the paired ``test/acc`` gain over it.

    A group whose reference regime has more than one arm (variants) gets no gain, as in
    ``paired_differences``: which of them to pair with is not declared.
    """
    parts = []
    for ref in sorted({r for r in refs.values() if r is not None}):
        paired = paired_differences(runs[runs["group"].map(refs) == ref], reference=ref)
        if paired.empty:
            continue
        vs = f"diff_vs_{ref}"
        renamed = {f"{vs}_mean": "gain", f"{vs}_ci_low": "gain_ci_low"}
        renamed |= {f"{vs}_ci_high": "gain_ci_high", "n_pairs": "n_seeds"}
        parts.append(paired.rename(columns=renamed).assign(reference=ref))
    if not parts:
        return pd.DataFrame(columns=["arm", "per_class", *GAIN])
    return pd.concat(parts)[["arm", "per_class", *GAIN]]


def _plain_gains(summary: pd.DataFrame) -> pd.DataFrame:
    """Plain ``test/acc`` (the summary's mean and interval) for groups without a reference."""
    shown = {"test/acc_mean": "gain", "test/acc_ci_low": "gain_ci_low"}
    shown |= {"test/acc_ci_high": "gain_ci_high", "test/acc_n": "n_seeds"}
    plain = summary[["arm", "per_class", *shown]].rename(columns=shown)
    return plain.assign(reference=NO_REFERENCE)


def frontier_table(
    runs: pd.DataFrame, summary: pd.DataFrame, refs: dict[str, str | None]
) -> pd.DataFrame:
    """One row per pretrained arm x budget (arms with probe-refit forgetting), ``COLUMNS``.

    Sorted by group, budget and arm; ``pareto`` is within one group and budget.
    """
    arms = summary[summary[f"{PROBE}_mean"].notna()]
    arms = arms[arms["regime"] != arms["group"].map(refs)]
    kept = {"arm": "arm", "regime": "regime", "group": "group", "per_class": "per_class"}
    for metric, name in ((PROBE, "forgetting"), (HEAD, "head_forgetting")):
        kept |= {f"{metric}_mean": name, f"{metric}_ci_low": f"{name}_ci_low"}
        kept |= {f"{metric}_ci_high": f"{name}_ci_high", f"{metric}_n": f"{name}_n"}
    table = arms[list(kept)].rename(columns=kept)
    plain = arms["group"].map(refs).isna()
    gains = [_paired_gains(runs, refs), _plain_gains(arms[plain])]
    gains = pd.concat([g for g in gains if len(g)] or gains[:1])
    table = table.merge(gains, on=["arm", "per_class"], how="left")
    table["reference"] = table["reference"].fillna(table["group"].map(refs))
    table["pareto"] = table["pareto_head"] = False
    for _, cell in table.groupby(["group", "per_class"]):
        for x, column in (("forgetting", "pareto"), ("head_forgetting", "pareto_head")):
            # rounded: two float32 means that differ in the 9th digit are a tie, not an order
            gain, loss = cell["gain"].round(ROUND), cell[x].round(ROUND)
            table.loc[cell.index, column] = pareto_mask(gain, loss)
    rank = {a: i for i, a in enumerate(arm_order(table["arm"], table["regime"]))}
    table = table.assign(_b=budget_order(table["per_class"]), _a=table["arm"].map(rank))
    table = table.sort_values(["group", "_b", "_a"]).drop(columns=["_b", "_a"])
    return table.reset_index(drop=True)


def alphas(runs: pd.DataFrame) -> list[tuple[float, str]]:
    """The interpolation weights with both a target and a source column, ascending.

    ``(0.5, "0.5")``: the value for the order, the text as it is spelled in the column names.
    """
    found = []
    for column in runs.columns:
        text = column.removeprefix(TARGET)
        if column.startswith(TARGET) and f"{SOURCE}{text}" in runs:
            with contextlib.suppress(ValueError):  # not a weight: not a point of the curve
                found.append((float(text), text))
    return sorted(found)


def _curve_point(
    runs: pd.DataFrame, refs: dict[str, str | None], alpha: str, wise: pd.DataFrame
) -> pd.DataFrame:
    """Per wise_ft arm x budget at one alpha: x (mean source loss) and y (gain or plain acc).

    The paired gain is ``paired_differences`` itself, on runs whose wise_ft rows carry the
    interpolated model's target accuracy as their ``test/acc``.
    """
    keys = [wise["arm"], wise["per_class"]]
    x = (wise["source/acc_before"] - wise[f"{SOURCE}{alpha}"]).groupby(keys).mean()
    plain = wise[f"{TARGET}{alpha}"].groupby(keys).mean()  # groups without a reference
    group = wise["group"].groupby(keys).first()
    swapped = runs[runs["regime"].isin({WISE, *filter(None, refs.values())})].copy()
    is_wise = swapped["regime"] == WISE
    swapped.loc[is_wise, "test/acc"] = swapped.loc[is_wise, f"{TARGET}{alpha}"]
    paired = _paired_gains(swapped, refs).set_index(["arm", "per_class"])["gain"]
    y = plain.where(group.map(refs).isna(), paired.reindex(plain.index))
    out = pd.DataFrame({"x": x, "y": y, "group": group}).reset_index()
    return out.assign(alpha=float(alpha), alpha_text=alpha)


def wise_curves(runs: pd.DataFrame, refs: dict[str, str | None]) -> pd.DataFrame:
    """Every wise_ft arm's alpha-curve per budget: arm, group, per_class, alpha, x, y."""
    columns = ["arm", "per_class", "x", "y", "group", "alpha", "alpha_text"]
    wise = runs[(runs["status"] == "ok") & (runs["regime"] == WISE)]
    found = alphas(runs)
    if wise.empty or not found or "source/acc_before" not in wise:
        return pd.DataFrame(columns=columns)
    points = [_curve_point(runs, refs, text, wise) for _, text in found]
    return pd.concat(points)[columns].sort_values(["arm", "per_class", "alpha"])


def y_label(reference: str) -> str:
    """The y axis's words: what the gain is over, or that it is plain accuracy."""
    if reference == NO_REFERENCE:
        return "target test accuracy (no reference regime present: not a gain)"
    return f"target gain over {reference} (test acc)"


def _budget(per_class: str) -> str:
    return "all labels" if per_class == "all" else f"{per_class} per class"


KINDS = {  # x column -> (its Pareto column, the x axis's words)
    "forgetting": ("pareto", "source loss: probe-refit forgetting (before - after)"),
    "head_forgetting": ("pareto_head", "source loss: head-retained forgetting (before - after)"),
}


def _panel(ax: Axes, cell: pd.DataFrame, x: str) -> None:
    """One budget: each arm's (loss, gain) with both 95% intervals; the Pareto points ringed."""
    for r in cell.itertuples():
        xs, ys = getattr(r, x), r.gain
        xerr = [[xs - getattr(r, f"{x}_ci_low")], [getattr(r, f"{x}_ci_high") - xs]]
        yerr = [[ys - r.gain_ci_low], [r.gain_ci_high - ys]]
        color = COLORS.get(r.regime, "black")
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o", ms=5, capsize=2, color=color,
                    label=r.arm)  # fmt: skip
    front = cell[cell[KINDS[x][0]]].sort_values(x)
    ax.scatter(front[x], front["gain"], s=170, facecolors="none", edgecolors="black", lw=1.1,
               zorder=3, label="Pareto-optimal (ringed; dashed: the front)")  # fmt: skip
    ax.step(front[x], front["gain"], where="post", color="black", ls="--", lw=0.8)
    ax.axvline(0, color="gray", lw=0.7)
    ax.axhline(0, color="gray", lw=0.7)
    ax.set_xlabel(KINDS[x][1], fontsize=8)
    ax.grid(alpha=0.3)


def _wise_curve(ax: Axes, curve: pd.DataFrame) -> None:
    """wise_ft's interpolated models in alpha order, the two ends named by their alpha."""
    for arm, line in curve.dropna(subset=["x", "y"]).groupby("arm"):
        ax.plot(line["x"], line["y"], ls="-", marker=".", color=COLORS.get(WISE, "black"),
                alpha=0.7, label=f"{arm}: (1 - α) θ_start + α θ_LP-FT")  # fmt: skip
        for end in (line.iloc[0], line.iloc[-1]):
            ax.annotate(f"α={end['alpha_text']}", (end["x"], end["y"]), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)  # fmt: skip


def figure(table: pd.DataFrame, curves: pd.DataFrame) -> Figure:
    """Gain against source loss, one panel per group x budget, a row per kind of forgetting.

    The wise_ft curves go on the probe-refit panels only: their x is probe-refit.
    """
    panels = list(dict.fromkeys(zip(table["group"], table["per_class"], strict=True)))
    kinds = ["forgetting"] + (["head_forgetting"] if table["head_forgetting"].notna().any() else [])
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols) * len(kinds)
    fig = Figure(figsize=(4 * cols, 3.6 * rows))  # no pyplot: nothing global to close
    for i, (group, per_class) in enumerate(panels):
        cell = table[(table["group"] == group) & (table["per_class"] == per_class)]
        for k, kind in enumerate(kinds):
            ax = fig.add_subplot(rows, cols, ((i // cols) * len(kinds) + k) * cols + i % cols + 1)
            _panel(ax, cell, kind)
            at = (curves["group"] == group) & (curves["per_class"] == per_class)
            _wise_curve(ax, curves[at] if kind == "forgetting" else curves.iloc[:0])
            ax.set_ylabel(y_label(cell["reference"].iloc[0]), fontsize=8)
            ax.set_title(_budget(per_class) + (f"\n{group}" if group else ""), fontsize=9)
    handles = {h.get_label(): h for ax in fig.axes for h in ax.get_legend_handles_labels()[0]}
    fig.legend(handles=list(handles.values()), fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.suptitle("Learning-forgetting frontier (means, 95% Student-t intervals)", fontsize=10)
    fig.tight_layout()
    return fig


def _titled(table: pd.DataFrame) -> list[dict]:
    """The budget tables (HTML, and by arm for the PDF), titled by budget, group and reference."""
    shown = []
    for (group, per_class), frame in frontier_tables(table):
        at = (table["group"] == group) & (table["per_class"] == per_class)
        ref = table.loc[at, "reference"].iloc[0]
        gain = "gain = plain test/acc" if ref == NO_REFERENCE else f"gain over {ref}"
        where = f", {group}" if group else ""
        html = frame.to_html(index=False, escape=True)
        title = f"{_budget(per_class)}{where}: {gain}"
        shown.append({"title": title, "frame": frame.set_index("arm"), "html": html})
    return shown


def section(runs: pd.DataFrame, summary: pd.DataFrame, records: list[RunRecord], out: Path) -> dict:
    """``frontier.csv`` (written into ``out``, always), the figure and the page context.

    Figure and context are None when no pretrained arm has probe-refit forgetting. ``lead``:
    the section comes right after the headline when a regime built for the trade-off ran.
    """
    runs = with_keys(runs)
    refs = references(runs, records)
    table = frontier_table(runs, summary, refs)
    table.reindex(columns=COLUMNS).to_csv(out / "frontier.csv", index=False)
    if table.empty:
        return {"figure": None, "context": None}
    curves = wise_curves(runs, refs)
    shown = _titled(table)
    context = {
        "lead": bool(runs["regime"].isin(LEAD_REGIMES).any()),
        "rule": RULE,
        "gain_method": GAIN_METHOD,
        "forgetting_method": CI_METHOD,
        "wise": not curves.empty,
        "tables": shown,
        "pages": {f"Learning-forgetting frontier, {t['title']}": t["frame"] for t in shown},
    }
    return {"figure": figure(table, curves), "context": context}
