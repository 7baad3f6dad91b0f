"""The "Findings" section: short sentences generated from the numbers and their intervals.

A sentence claims a difference only when its 95% interval excludes zero (or, for "within", lies
inside the margin); otherwise it says the difference is not resolved with this many seeds. All
differences are paired by seed (same labelled subset), bootstrapped over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.aggregate import bootstrap_ci
from reports.arms import ensure_arms
from reports.collect import budget_order
from reports.compare import paired

DEEP = ("scratch", "linear_probe", "finetune", "incremental_pretrain")
WITHIN = 0.01  # "within" margin for the linear probe against finetune


def _ci(lo: float, hi: float) -> str:
    return f"95% CI {lo:+.3f} to {hi:+.3f}"


def _budget(per_class: str) -> str:
    if per_class == "all":
        return "all labels"
    return f"{per_class} example{'' if per_class == '1' else 's'} per class"


def _budgets(runs: pd.DataFrame) -> list[str]:
    values = pd.Series(runs["per_class"].unique())
    return list(values.iloc[np.argsort(budget_order(values).to_numpy())])


def versus_scratch(runs: pd.DataFrame) -> list[str]:
    """Per budget: the pretrained regime with the largest mean gain over scratch, if resolved."""
    out = []
    regimes = [r for r in DEEP[1:] if r in set(runs["regime"])]
    if "scratch" not in set(runs["regime"]) or not regimes:
        return out
    for per_class in _budgets(runs):
        diffs = {r: paired(runs, r, "scratch", per_class, "test/acc") for r in regimes}
        diffs = {r: d for r, d in diffs.items() if len(d)}
        if not diffs:
            continue
        best = max(diffs, key=lambda r: diffs[r].mean())
        d = diffs[best]
        lo, hi = bootstrap_ci(d)
        where = f"At {_budget(per_class)}"
        if len(d) >= 2 and lo > 0:
            out.append(f"{where}, {best} beats scratch by {d.mean():.3f} ({_ci(lo, hi)}).")
        elif len(d) >= 2 and hi < 0:
            out.append(
                f"{where}, scratch beats every pretrained regime; the closest, {best}, by "
                f"{-d.mean():.3f} ({_ci(lo, hi)})."
            )
        else:
            out.append(
                f"{where}, no pretrained regime is resolved from scratch with {len(d)} seeds "
                f"(best: {best} {d.mean():+.3f}, {_ci(lo, hi)})."
            )
    return out


def probe_versus_finetune(runs: pd.DataFrame) -> list[str]:
    """Where the frozen linear probe is within 0.01 of finetuning, and where it is resolved."""
    if not {"linear_probe", "finetune"} <= set(runs["regime"]):
        return []
    within, behind = [], []
    for per_class in _budgets(runs):
        d = paired(runs, "linear_probe", "finetune", per_class, "test/acc")
        if len(d) < 2:
            continue
        lo, hi = bootstrap_ci(d)
        if lo >= -WITHIN and hi <= WITHIN:
            within.append(per_class)
        elif hi < 0:
            behind.append((per_class, d.mean(), lo, hi))
    out = []
    if within:
        out.append(
            f"Linear probe is within {WITHIN} of finetune (paired 95% CI inside ±{WITHIN}) at: "
            + ", ".join(_budget(b) for b in within)
            + "."
        )
    if behind:
        per_class, mean, lo, hi = behind[0]
        out.append(
            f"From {_budget(per_class)} finetune beats the linear probe "
            f"(by {-mean:.3f} there, {_ci(-hi, -lo)})."
        )
    if not out:
        out.append("Linear probe against finetune is not resolved at any budget with these seeds.")
    return out


def pixel_floor(runs: pd.DataFrame) -> list[str]:
    """Budgets where no deep regime is resolved above the logistic regression on pixels."""
    deep = [r for r in DEEP if r in set(runs["regime"])]
    if "pixels" not in set(runs["regime"]) or not deep:
        return []
    out = []
    for per_class in _budgets(runs):
        diffs = {r: paired(runs, r, "pixels", per_class, "test/acc") for r in deep}
        diffs = {r: d for r, d in diffs.items() if len(d) >= 2}
        if not diffs:
            continue
        best = max(diffs, key=lambda r: diffs[r].mean())
        lo, hi = bootstrap_ci(diffs[best])
        if lo <= 0:
            out.append(
                f"At {_budget(per_class)}, no deep regime is resolved above the pixel floor "
                f"(best: {best} {diffs[best].mean():+.3f} against pixels, {_ci(lo, hi)})."
            )
    return out


def aulc_ranking(eff: pd.DataFrame) -> list[str]:
    """The regime with the largest area under the data-efficiency curve."""
    if eff.empty or eff["aulc"].isna().all():
        return []
    eff = ensure_arms(eff)
    ranked = eff.sort_values("aulc", ascending=False)
    parts = [
        f"{r.arm} {r.aulc:.3f} [{r.aulc_ci_low:.3f}, {r.aulc_ci_high:.3f}]"
        for r in ranked.itertuples()
    ]
    return ["Area under the data-efficiency curve (log budget axis, 95% CI): " + "; ".join(parts)]


def source_forgetting(runs: pd.DataFrame) -> list[str]:
    """The largest resolved probe-refit forgetting (or gain) of the source domain."""
    if "source/forgetting" not in runs:
        return []
    out = []
    for regime in ("finetune", "incremental_pretrain"):
        cells = runs[runs["regime"] == regime].groupby("per_class")["source/forgetting"]
        resolved = []
        for per_class, vals in cells:
            lo, hi = bootstrap_ci(vals.to_numpy(float))
            if lo > 0 or hi < 0:
                resolved.append((abs(vals.mean()), per_class, vals.mean(), lo, hi))
        if not resolved:
            if len(cells):
                out.append(
                    f"{regime}: source forgetting (probe-refit) is not resolved from zero at any "
                    "budget with these seeds."
                )
            continue
        _, per_class, mean, lo, hi = max(resolved)
        verb = "loses" if mean > 0 else "gains"
        out.append(
            f"{regime} {verb} {abs(mean):.3f} of source probe accuracy at {_budget(per_class)} "
            f"(probe-refit forgetting {mean:+.3f}, {_ci(lo, hi)})."
        )
    return out


def replay_effect(per_run: pd.DataFrame, knobs: pd.DataFrame) -> list[str]:
    """Per schedule: each replay fraction against none, on Chaudhry forgetting, paired by seed."""
    if per_run.empty:
        return []
    data = per_run.merge(knobs, left_on="variant", right_index=True)
    out = []
    for schedule, group in data.groupby("schedule"):
        base = group[group["replay"] == 0].set_index("seed")["forgetting_max"]
        for replay, cell in group[group["replay"] > 0].groupby("replay"):
            mine = cell.set_index("seed")["forgetting_max"]
            seeds = mine.index.intersection(base.index)
            d = (mine.loc[seeds] - base.loc[seeds]).to_numpy(float)
            if len(d) < 2:
                continue
            lo, hi = bootstrap_ci(d)
            what = (
                f"Replay of {replay:.0%} (schedule {schedule}) "
                f"{{}} forgetting from {base.loc[seeds].mean():.3f} to {mine.loc[seeds].mean():.3f}"
            )
            if hi < 0:
                out.append(what.format("cuts") + f" ({_ci(lo, hi)}).")
            elif lo > 0:
                out.append(what.format("raises") + f" ({_ci(lo, hi)}).")
            else:
                out.append(
                    what.format("moves") + f", not resolved with {len(d)} seeds ({_ci(lo, hi)})."
                )
    return out


def findings(
    runs: pd.DataFrame, eff: pd.DataFrame, stream_runs: pd.DataFrame, stream_knobs: pd.DataFrame
) -> list[str]:
    """Every sentence, in the order a reader asks: which regime, how much, at what cost.

    Runs are compared only within one slice (see :func:`slices`); with more than one slice,
    each sentence starts with the slice's label in brackets.
    """
    ok = ensure_arms(runs[runs["status"] == "ok"])
    parts = slices(ok)
    out = []
    for label, part in parts:
        prefix = f"[{label}] " if len(parts) > 1 and label else ""
        mine = eff[eff["arm"].isin(set(part["arm"]))] if "arm" in eff else eff
        named = part.assign(arm=part["regime"])  # one arm per regime here: name it by regime
        sentences = (
            versus_scratch(named)
            + probe_versus_finetune(named)
            + pixel_floor(named)
            + aulc_ranking(mine)
            + source_forgetting(named)
        )
        out += [prefix + line for line in sentences]
    return out + replay_effect(stream_runs, stream_knobs)


def slices(ok: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The runs that may be compared, as (label, runs) with one arm per regime in each.

    One group at a time; a group whose arms have variants is cut once per variant, together
    with the arms that have none. The label names the group and variant.
    """
    out = []
    for group, runs in ok.groupby("group", sort=False):
        variants = [v for v in dict.fromkeys(runs["variant"]) if v] or [""]
        for variant in variants:
            part = runs[runs["variant"].isin({variant, ""})]
            label = " · ".join(x for x in (variant, group) if x)
            out.append((label, part))
    return out
