"""The report's text tables, as DataFrames: one row per arm (``reports.arms``), budgets across.

Rows are ordered by regime (``plots.ORDER``) and then by arm, so an arm's group and variant sit
next to the other arms of its regime.
"""

from __future__ import annotations

import pandas as pd

from common.metrics import HEADLINE, METRICS
from common.records import RunRecord
from reports import plots
from reports.arms import UNSET, flatten, node, reads, stage_nodes
from reports.collect import budget_order
from reports.selection import protocol_labels


def _cell(mean: float, lo: float, hi: float, n: int) -> str:
    if pd.isna(mean):
        return "-"
    ci = "" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]"
    return f"{mean:.3f}{ci} n={n}"


def arm_order(arms: pd.Series, regimes: pd.Series) -> list[str]:
    """Arms ordered by their regime's place in ``plots.ORDER``, then by name."""
    rank = {r: i for i, r in enumerate(plots.ORDER)}
    pairs = dict(zip(arms, regimes, strict=True))
    return sorted(pairs, key=lambda a: (rank.get(pairs[a], len(rank)), a))


def by_arm_and_budget(summary: pd.DataFrame, cells: list[str]) -> pd.DataFrame:
    """Pivot the text column ``cell`` into arms x budgets, budgets ascending, ``-`` where none."""
    table = summary.assign(cell=cells).pivot(index="arm", columns="per_class", values="cell")
    cols = sorted(table.columns, key=lambda c: budget_order(pd.Series([c])).iloc[0])
    order = arm_order(summary["arm"], summary["regime"])
    order = [a for a in order if a in table.index]
    table = table.loc[order, cols].fillna("-")
    if "selection" in summary:  # the protocol that chose the runs (reports.selection)
        table.insert(0, "selection", protocol_labels(summary).loc[order])
    return table


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Arms x budgets, each cell "mean [ci_low, ci_high] n=runs" of target accuracy."""
    cells = [
        _cell(r["test/acc_mean"], r["test/acc_ci_low"], r["test/acc_ci_high"], r["n"])
        for _, r in summary.iterrows()
    ]
    return by_arm_and_budget(summary, cells)


def paired_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    """Arms x budgets: paired difference to its group's scratch [CI] and P(improvement)."""
    if "diff_vs_scratch_mean" not in summary:
        return None
    cells = summary[summary["diff_vs_scratch_mean"].notna()]
    text = [
        f"{r['diff_vs_scratch_mean']:+.3f} [{r['diff_vs_scratch_ci_low']:+.3f}, "
        f"{r['diff_vs_scratch_ci_high']:+.3f}] P={r['p_improvement_vs_scratch']:.2f}"
        if pd.notna(r["diff_vs_scratch_ci_low"])
        else f"{r['diff_vs_scratch_mean']:+.3f} (one seed) P={r['p_improvement_vs_scratch']:.2f}"
        for _, r in cells.iterrows()
    ]
    return by_arm_and_budget(cells, text)


def _signed(mean: float, low: float, high: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:+.3f}" + ("" if pd.isna(low) else f" [{low:+.3f}, {high:+.3f}]")


def _pairs(pairs: float, forgetting_n: float) -> str:
    """The gain's pairs, and the forgetting's count where it differs ("3 (forgetting 4)")."""
    n = "-" if pd.isna(pairs) else str(int(pairs))
    return n if n == str(int(forgetting_n)) else f"{n} (forgetting {int(forgetting_n)})"


def frontier_tables(table: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """Per (group, budget) of ``reports.frontier.frontier_table``: arm, gain, forgetting, n, pareto.

    Gain and forgetting as "mean [95% CI]"; head-retained forgetting (and the Pareto points on
    it) only where recorded; n is the gain's pairs, with the forgetting's count where it differs.
    """
    out = []
    for key, cell in table.groupby(["group", "per_class"], sort=False):
        shown = pd.DataFrame({"arm": cell["arm"]})
        kinds = [("gain", "gain"), ("forgetting", "forgetting, probe-refit")]
        head = bool(cell["head_forgetting"].notna().any())
        kinds += [("head_forgetting", "forgetting, head-retained")] if head else []
        for name, header in kinds:
            values = cell[[name, f"{name}_ci_low", f"{name}_ci_high"]].T.values
            shown[f"{header} [95% Student-t CI]"] = list(map(_signed, *values))
        shown["n (pairs)"] = list(map(_pairs, cell["n_seeds"], cell["forgetting_n"]))
        shown["pareto"] = cell["pareto"].map({True: "yes", False: "no"})
        if head:
            shown["pareto (head-retained)"] = cell["pareto_head"].map({True: "yes", False: "no"})
        out.append((key, shown))
    return out


def source_forgetting_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Two-stage arms' source forgetting, in transfer_metrics.csv's columns.

    Probe-refit always; head-retained where the source stage was supervised and left a head.
    """
    tables = []
    for metric, name in (
        ("source/forgetting", "source_forgetting_probe_refit"),
        ("source/head_forgetting", "source_forgetting_head_retained"),
    ):
        cells = summary[summary[f"{metric}_mean"].notna()]
        tables.append(
            pd.DataFrame(
                {
                    "variant": cells["arm"] + " @ per_class=" + cells["per_class"].astype(str),
                    "metric": name,
                    "definition": METRICS[metric].definition,
                    "value": cells[f"{metric}_mean"],
                    "ci_low": cells[f"{metric}_ci_low"],
                    "ci_high": cells[f"{metric}_ci_high"],
                    "n_seeds": cells["n"],
                }
            )
        )
    return pd.concat(tables)


def _shown(record: RunRecord, key: str, value: object, stages: frozenset[str]) -> str:
    """A config value as the table shows it; a stage node the regime does not read is not used."""
    read = reads(record)
    if node(key) in stages and (value == UNSET or (read is not None and node(key) not in read)):
        return f"\u2014, not used by {record.regime}"
    return "(not set)" if value is None or value == "null" else str(value)


def _merge_not_used(values: set[str]) -> list[str]:
    """One "—, not used by a, b" entry for all the regimes that do not read a key."""
    unused = sorted(
        v.removeprefix("\u2014, not used by ") for v in values if v.startswith("\u2014")
    )
    used = sorted((v for v in values if not v.startswith("\u2014")), key=lambda v: (len(v), v))
    return used + ([f"\u2014, not used by {', '.join(unused)}"] if unused else [])


def config_split(
    records: list[RunRecord],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Config keys whose value differs between runs (with the values) and those that don't.

    A stage-node key a run's regime does not read shows as "—, not used by <regimes>" (never as
    OmegaConf's ``???``), and does not make the key count as varied.
    """
    flats = [flatten(r.config) for r in records]
    keys = sorted({k for f in flats for k in f})
    stages = stage_nodes(records)
    varied, fixed = [], []
    for key in keys:
        values = {_shown(r, key, f.get(key), stages) for r, f in zip(records, flats, strict=True)}
        used = [v for v in values if not v.startswith("\u2014")]
        # one value wherever the key is used is fixed, even if some regimes do not use it
        (varied if len(used) > 1 else fixed).append((key, "; ".join(_merge_not_used(values))))
    return varied, fixed


def environment(records: list[RunRecord]) -> list[tuple[str, str]]:
    """Each environment field with every value the runs had."""
    envs = pd.DataFrame([r.environment for r in records]).map(str)
    return [(k, ", ".join(sorted(envs[k].unique()))) for k in envs.columns]


MAIN_METRICS = HEADLINE  # the registry's metrics for the printed page (common/metrics.py)


def main_metrics(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary narrowed to what fits a printed page: runs, failures, each metric's mean [CI]."""
    shown = ["arm", "per_class", *(["selection"] if "selection" in summary else [])]
    out = summary[[*shown, "n", "n_failed"]].copy()
    for metric in MAIN_METRICS:
        if summary[f"{metric}_mean"].notna().any():
            out[metric] = [
                _cell(m, lo, hi, 0).removesuffix(" n=0")
                for m, lo, hi in summary[
                    [f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"]
                ].to_numpy()
            ]
    return out
