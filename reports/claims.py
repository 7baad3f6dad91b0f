"""Findings as rows: one per pre-declared claim, tested, Holm-corrected; sentences from the rows.

Four families, each fixed before the numbers are seen (``reports.family``):

* primary: the paired AULC difference of every declared comparison (all groups together);
* secondary: every declared comparison at every budget (test accuracy);
* forgetting: per pretrained arm, the AULC-style average of probe-refit source forgetting over
  the budgets, against 0;
* forgetting differences: the same average, paired, for every declared comparison whose two
  arms both record forgetting (does a mitigation forget less than the regime it modifies?).

Holm runs within a family. A difference is claimed only when its Holm-adjusted paired-t p < 0.05
and its t interval excludes 0. ``findings.csv`` holds the rows; the HTML prints sentences made
from the same rows, so the two cannot disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.metrics import difference_range, lookup
from reports.family import UNIT, Comparison, budgets, grid, paired, unit_aulc, units_of, wide
from reports.inference import from_on, holm, paired_test

ALPHA = 0.05
COLUMNS = [
    "comparison", "budget", "estimate", "ci_low", "ci_high", "p_raw", "p_adjusted",
    "p_wilcoxon", "method", "n_seeds", "family", "verdict", "group", "a", "b", "metric",
    "clipped", "budgets",
]  # fmt: skip
T_ROW = (
    "paired t-test (scipy.stats.ttest_rel) over pairing units (subset_seed, train_seed); "
    "Student-t 95% interval of the mean difference, clipped to [-1, 1]; Wilcoxon signed-rank "
    "(scipy.stats.wilcoxon) beside"
)
PRIMARY = "primary: AULC difference of every declared comparison"
SECONDARY = "secondary: every declared comparison at every budget"
FORGETTING = "forgetting: AULC-style source forgetting of every pretrained arm against 0"
FORGETTING_PAIRS = (
    "forgetting differences: AULC-style source forgetting of every declared comparison whose "
    "arms both record it"
)
AULC_TEXT = "AULC (log budget axis, normalised, per unit)"


def _row(
    comp: Comparison,
    budget: str,
    a: np.ndarray,
    b: np.ndarray,
    units: tuple[np.ndarray, np.ndarray],
    metric: str,
    bounds: tuple[float, float] | None = None,
) -> dict:
    """One claim; its interval is clipped to ``bounds``, by default where a - b can lie."""
    test = paired_test(a, b, difference_range(metric) if bounds is None else bounds, units)
    return {
        "comparison": comp.label, "budget": budget, "estimate": test.estimate,
        "ci_low": test.low, "ci_high": test.high, "p_raw": test.p_t, "p_wilcoxon": test.p_wilcoxon,
        "method": T_ROW + ("" if budget != "AULC" else "; of per-unit AULC"),
        "n_seeds": test.n, "group": comp.group, "a": comp.a, "b": comp.b, "metric": metric,
        "clipped": test.clipped,
    }  # fmt: skip


def _aulc_row(ok: pd.DataFrame, comp: Comparison, per_unit: pd.DataFrame, metric: str) -> dict:
    """The primary endpoint of one comparison; ``budgets`` names the grid the AULC is on."""
    both = per_unit.pivot_table(index=UNIT, columns="arm", values="aulc")
    both = both[[k for k in (comp.a, comp.b) if k in both]].dropna()
    a, b = (both[k].to_numpy(float) if k in both else np.array([]) for k in (comp.a, comp.b))
    if not (len(a) and len(b)):
        a = b = np.array([])
    row = _row(comp, "AULC", a, b, units_of(both.index), metric)
    in_group = ok[(ok["group"] == comp.group) & ok[metric].notna()]
    return row | {"budgets": ",".join(grid(in_group).index)}


def _family(rows: list[dict], name: str) -> list[dict]:
    """Holm within one family; the family's name and size go into every row."""
    adjusted = holm(np.array([r["p_raw"] for r in rows], float))
    m = int(np.isfinite(adjusted).sum())
    for r, p in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = p
        r["family"] = f"{name}; Holm over {m} tests"
        resolved = p < ALPHA and (r["ci_low"] > 0 or r["ci_high"] < 0)
        r["verdict"] = ("higher" if r["estimate"] > 0 else "lower") if resolved else "not resolved"
    return rows


def claim_rows(ok: pd.DataFrame, comps: list[Comparison], pretrained: list[str]) -> pd.DataFrame:
    """Every claim of the four families, as findings.csv rows (``ok`` runs with keys)."""
    per_unit = {g: unit_aulc(ok, g, "test/acc") for g in {c.group for c in comps}}
    primary = [_aulc_row(ok, c, per_unit[c.group], "test/acc") for c in comps]
    table = wide(ok, "test/acc")
    secondary = [
        _row(c, b, *paired(table, c, b), "test/acc")
        for c in comps
        for b in budgets(ok[(ok["group"] == c.group) & ok["arm"].isin([c.a, c.b])])
    ]
    forgetting = []
    if "source/forgetting" in ok:
        has = ok[ok["regime"].isin(pretrained) & ok["source/forgetting"].notna()]
        # a frozen backbone (linear_probe) forgets exactly 0 by construction: not a test
        moved = has["source/forgetting"].ne(0).groupby([has["group"], has["arm"]]).transform("any")
        has = has[moved.astype(bool)]
        for group, arm in has[["group", "arm"]].drop_duplicates().itertuples(index=False):
            rows = has[has["group"] == group]
            per_arm = unit_aulc(rows, group, "source/forgetting")
            mine = per_arm[per_arm["arm"] == arm]
            f = mine["aulc"].to_numpy(float)
            units = (mine["subset_seed"].to_numpy(), mine["train_seed"].to_numpy())
            comp = Comparison(arm, "0", group)
            # against 0, the difference is forgetting itself: the metric's own range
            forgets = lookup("source/forgetting").range
            row = _row(comp, "AULC", f, np.zeros_like(f), units, "source/forgetting", forgets)
            row["comparison"] = f"{arm}: source forgetting"
            row["method"] = (
                "one-sample t-test of per-unit forgetting AULC against 0 (scipy.stats.ttest_rel "
                "against zeros); Student-t 95% interval; Wilcoxon signed-rank beside"
            )
            row["budgets"] = ",".join(grid(rows).index)
            forgetting.append(row)
    rows = _family(primary, PRIMARY) + _family(secondary, SECONDARY)
    rows += _family(forgetting, FORGETTING) + _family(
        _forgetting_pairs(ok, comps), FORGETTING_PAIRS
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def _forgetting_pairs(ok: pd.DataFrame, comps: list[Comparison]) -> list[dict]:
    """The paired AULC of source forgetting for each comparison whose two arms both record it."""
    if "source/forgetting" not in ok:
        return []
    has = ok[ok["source/forgetting"].notna()]
    # a frozen backbone forgets exactly 0: the difference would repeat the other arm's own claim
    arms = set(has.loc[has["source/forgetting"].ne(0), "arm"])
    rows = []
    for group in sorted({c.group for c in comps}):
        pairs = [c for c in comps if c.group == group and {c.a, c.b} <= arms]
        if not pairs:
            continue
        per_unit = unit_aulc(has, group, "source/forgetting")
        for comp in pairs:
            row = _aulc_row(has, comp, per_unit, "source/forgetting")
            rows.append(row | {"comparison": f"{comp.label}: source forgetting"})
    return rows


def _budget(per_class: str) -> str:
    return "all labels" if per_class == "all" else f"{per_class} per class"


def _ci(r) -> str:
    return f"{r.estimate:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"


def _seeds(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"


def _tests(r) -> str:
    """n, Holm p and Wilcoxon p; with <= 5 pairs Wilcoxon's floor 2 / 2^n is said beside it."""
    floor = f" (floor {2 / 2**r.n_seeds:.3g} with {r.n_seeds} pairs)" if 2 <= r.n_seeds <= 5 else ""
    wilcoxon = f"Wilcoxon p = {r.p_wilcoxon:.3g}{floor}"
    return f"n = {r.n_seeds}, Holm p = {r.p_adjusted:.3g}, {wilcoxon}"


def _where(r) -> str:
    return f" ({r.group})" if r.group else ""


def aulc_sentence(r) -> str:
    """One primary or forgetting claim, with its interval and tests."""
    if r.metric == "source/forgetting" and r.b == "0":
        what = f"{r.a}: source forgetting (probe-refit), averaged over budgets{_where(r)}"
        verbs = {"higher": "it forgets", "lower": "it gains source accuracy"}
    elif r.metric == "source/forgetting":
        what = f"{r.comparison} (probe-refit, averaged over budgets){_where(r)}"
        verbs = {"higher": f"{r.a} forgets more", "lower": f"{r.a} forgets less"}
    else:
        what = f"{r.comparison}, {AULC_TEXT}{_where(r)}"
        verbs = {"higher": f"{r.a} is higher", "lower": f"{r.a} is lower"}
    if pd.isna(r.ci_low):
        return f"{what}: {r.estimate:+.3f}, not testable with {_seeds(r.n_seeds)} (no interval)."
    if r.verdict == "not resolved":
        return (
            f"{what}: {r.estimate:+.3f}, not resolved with {_seeds(r.n_seeds)}; "
            f"the interval is [{r.ci_low:+.3f}, {r.ci_high:+.3f}] ({_tests(r)})."
        )
    return f"{what}: {_ci(r)}, {verbs[r.verdict]} ({_tests(r)})."


def budget_sentence(rows: pd.DataFrame) -> str:
    """One comparison over the budgets: "from X on" only when every larger budget holds too."""
    first = rows.iloc[0]
    parts = []
    for verdict in ("higher", "lower"):
        holds = (rows["verdict"] == verdict).tolist()
        if not any(holds):
            continue
        start = from_on(holds)
        hit = rows[rows["verdict"] == verdict]
        cells = ", ".join(
            f"{_budget(r.budget)} {_ci(r)} (Holm p = {r.p_adjusted:.3g})" for r in hit.itertuples()
        )
        if start is not None and start < len(rows) - 1 and holds.count(True) == len(rows) - start:
            lead = f"{first.a} is {verdict} from {_budget(rows['budget'].iloc[start])} on"
        else:
            lead = f"{first.a} is {verdict} at"
        parts.append(f"{lead}: {cells}")
    untestable = rows[rows["ci_low"].isna()]
    if len(untestable):
        where = ", ".join(_budget(b) for b in untestable["budget"])
        parts.append(f"not testable with fewer than 2 pairs at {where}")
    constant = rows[rows["ci_low"].notna() & rows["p_adjusted"].isna()]
    if len(constant):  # deterministic arms (e.g. every seed labels the same images at 'all')
        where = ", ".join(f"{_budget(r.budget)} ({r.estimate:+.3f})" for r in constant.itertuples())
        parts.append(f"the same difference in every pair, so no test, at {where}")
    open_ = rows[
        (rows["verdict"] == "not resolved") & rows["ci_low"].notna() & rows["p_adjusted"].notna()
    ]
    if len(open_):
        cells = ", ".join(
            f"{_budget(r.budget)} (the interval is [{r.ci_low:+.3f}, {r.ci_high:+.3f}], "
            f"Holm p = {r.p_adjusted:.3g})"
            for r in open_.itertuples()
        )
        n = "/".join(str(v) for v in sorted(set(open_["n_seeds"])))
        parts.append(f"not resolved with {n} seeds at {cells}")
    lead = f"{first.comparison}, per budget{_where(first)} (family: {first.family})"
    return f"{lead}: " + "; ".join(parts) + "."


def sentences(rows: pd.DataFrame) -> list[str]:
    """The Findings, in order: primary AULC claims, per-budget claims, forgetting."""
    out = [aulc_sentence(r) for r in rows[rows["family"].str.startswith(PRIMARY)].itertuples()]
    secondary = rows[rows["family"].str.startswith(SECONDARY)]
    for _, group in secondary.groupby(["group", "comparison"], sort=False):
        out.append(budget_sentence(group))
    for family in (FORGETTING, FORGETTING_PAIRS):
        of = rows[rows["family"].str.startswith(family)]
        out += [aulc_sentence(r) for r in of.itertuples()]
    return out


def headline(rows: pd.DataFrame) -> pd.DataFrame:
    """The short table at the top of Findings: the primary endpoint of every comparison."""
    top = rows[rows["family"].str.startswith(PRIMARY)]
    holm_p = [f"{p:.3g} ({q:.3g})" for p, q in zip(top.p_raw, top.p_adjusted, strict=True)]
    names = [r.comparison + _where(r) for r in top.itertuples()]
    return pd.DataFrame(
        {
            "AULC difference [95% t CI]": [_ci(r) for r in top.itertuples()],
            "n pairs": top["n_seeds"].to_list(),
            "paired t p (Holm)": holm_p,
            "Wilcoxon p": top["p_wilcoxon"].map("{:.3g}".format).to_list(),
            "verdict": top["verdict"].to_list(),
        },
        index=pd.Index(names, name="A - B"),
    )


def claims_table(rows: pd.DataFrame) -> str:
    """Every row of findings.csv as HTML, so a reader can check it against the sentences."""
    if rows.empty:
        return ""
    shown = rows.drop(columns=["method", "a", "b"]).round(4)
    return shown.to_html(index=False, escape=True, na_rep="-")
