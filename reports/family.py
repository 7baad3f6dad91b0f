"""The pre-declared family of comparisons, the cell keys and the pairing of runs by unit.

A comparison is fixed before the numbers are looked at: it comes from the experiment config
(``record.config["comparisons"]``: every pretrained regime against every reference, plus the
declared pairs), or, for old records without it, is derived from the regimes present by the same
rule. Runs are compared only within one ``group`` and paired by unit (subset_seed, train_seed):
the same labelled subset and the same training seed on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.records import RunRecord
from reports.collect import budget_order
from reports.curves import aulc

REFERENCES = ("pixels", "svm", "knn", "label_spreading", "tfidf", "scratch")
UNIT = ["subset_seed", "train_seed"]


def with_keys(runs: pd.DataFrame) -> pd.DataFrame:
    """Add the cell and pairing keys old records lack (one small fallback for every reader).

    arm = regime and group = variant = "" until collect writes them; subset_seed = train_seed =
    seed for records from before the split (one seed set all three).
    """
    out = runs.copy()
    if "arm" not in out:
        out["arm"] = out["regime"]
    for key in ("group", "variant"):
        out[key] = out[key].fillna("").astype(str) if key in out else ""
    for key in UNIT:
        out[key] = out[key].fillna(out["seed"]) if key in out else out["seed"]
    return out


def declared(records: list[RunRecord], regimes: set[str]) -> dict[str, list]:
    """The union of the records' declared comparisons; derived by the default rule if none."""
    found = [r.config["comparisons"] for r in records if r.config.get("comparisons")]
    if not found:
        refs = [r for r in REFERENCES if r in regimes]
        return {"references": refs, "pretrained": sorted(regimes - set(refs)), "pairs": []}
    out: dict[str, list] = {"references": [], "pretrained": [], "pairs": []}
    for spec in found:
        for key in ("references", "pretrained"):
            out[key] += [r for r in spec.get(key, []) if r not in out[key]]
        out["pairs"] += [list(p) for p in spec.get("pairs", []) if list(p) not in out["pairs"]]
    return out


@dataclass(frozen=True)
class Comparison:
    """Arm ``a`` against arm ``b`` within ``group``: the estimate is a - b."""

    a: str
    b: str
    group: str

    @property
    def label(self) -> str:
        """How a reader sees it, e.g. "finetune - scratch"."""
        return f"{self.a} - {self.b}"


def _partner(arms: pd.DataFrame, arm: str, regime: str) -> str | None:
    """The arm of ``regime`` that ``arm`` is compared with, or None.

    The only one in the group, else the one with the same variant: a variant of a stage key
    (e.g. train.steps) is compared only at the same setting.
    """
    cand = arms[arms["regime"] == regime]
    if len(cand) > 1:
        cand = cand[cand["variant"] == arms.loc[arm, "variant"]]
    return str(cand.index[0]) if len(cand) == 1 else None


def comparisons(runs: pd.DataFrame, spec: dict[str, list]) -> list[Comparison]:
    """Every declared comparison whose two regimes are present in a group, in declared order."""
    wanted = [(p, r) for p in spec["pretrained"] for r in spec["references"]]
    wanted += [tuple(p) for p in spec["pairs"]]
    out: list[Comparison] = []
    for group, rows in runs.groupby("group", sort=True):
        arms = rows.groupby("arm")[["regime", "variant"]].first()
        for ra, rb in wanted:
            for a in arms[arms["regime"] == ra].index:
                b = _partner(arms, a, rb)
                comp = Comparison(str(a), str(b), group)
                if b is not None and a != b and comp not in out:
                    out.append(comp)
    return out


def budgets(runs: pd.DataFrame) -> list[str]:
    """The budgets of these runs, ascending, "all" last."""
    values = pd.Series(runs["per_class"].unique())
    return list(values.iloc[np.argsort(budget_order(values).to_numpy(), kind="stable")])


def wide(ok: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (group, budget, unit), one column per arm: what ``paired`` reads.

    Built once: pivoting per comparison was most of a large report's time.
    """
    return ok.pivot_table(index=["group", "per_class", *UNIT], columns="arm", values=metric)


def units_of(index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The (subset_seed, train_seed) arrays of an index whose levels include UNIT."""
    return tuple(index.get_level_values(k).to_numpy() for k in UNIT)  # type: ignore[return-value]


def paired(
    table: pd.DataFrame, comp: Comparison, per_class: str
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The two arms' values at one budget on the units both have, aligned, and those units.

    The units go to the test, which must know when runs share a seed (a crossed design).
    """
    key = (comp.group, per_class)
    if comp.a not in table or comp.b not in table or key not in table.index.droplevel(UNIT):
        return np.array([]), np.array([]), (np.array([]), np.array([]))
    both = table.loc[key, [comp.a, comp.b]].dropna()
    return both[comp.a].to_numpy(float), both[comp.b].to_numpy(float), units_of(both.index)


def grid(ok: pd.DataFrame) -> pd.Series:
    """Budgets every arm of one group has, ascending, with their labelled-per-class x value."""
    per_arm = ok.groupby("arm")["per_class"].apply(set)
    common = set.intersection(*per_arm) if len(per_arm) else set()
    x = ok[ok["per_class"].isin(common)].groupby("per_class")["labelled_per_class"].mean()
    return x.sort_values()


def unit_aulc(ok: pd.DataFrame, group: str, metric: str = "test/acc") -> pd.DataFrame:
    """Per arm x unit of one group: the area under its curve on the group's common grid.

    Units missing a budget of the grid are left out (their curve is not on the same grid).
    """
    rows = ok[(ok["group"] == group) & ok[metric].notna()]
    x = grid(rows)
    if len(x) < 2:
        return pd.DataFrame(columns=["arm", *UNIT, "aulc"])
    curves = rows.pivot_table(index=["arm", *UNIT], columns="per_class", values=metric)
    curves = curves.reindex(columns=list(x.index)).dropna()
    values = [aulc(x.to_numpy(), row) for row in curves.to_numpy()]
    return curves.index.to_frame(index=False).assign(aulc=values)
