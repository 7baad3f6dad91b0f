"""Findings from a declared family, end to end: findings.csv = the HTML, and scipy recomputes it."""

import html
import re

import numpy as np
import pandas as pd
import pytest
from helpers import as_records, synthetic_record, write_dict
from scipy import stats

from reports.build import build_report
from reports.efficiency import FLAT_TEXT, data_efficiency, efficiency_table

BUDGETS = {"1": 1, "5": 5, "20": 20}
COMPARISONS = {
    "references": ["pixels", "scratch"],
    "pretrained": ["finetune", "linear_probe"],
    "pairs": [["finetune", "linear_probe"]],
}


def _runs(curves: dict, n_units: int, noise: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"regime": regime, "per_class": b, "labelled_per_class": n, "seed": u, "status": "ok"}
        | {"test/acc": float(np.clip(acc + rng.normal(0, noise), 0, 1))}
        for regime, curve in curves.items()
        for (b, n), acc in zip(BUDGETS.items(), curve, strict=True)
        for u in range(n_units)
    ]
    return pd.DataFrame(rows)


def test_effective_data_is_censored_when_scratch_is_flat():
    runs = _runs({"scratch": [0.5, 0.505, 0.51], "finetune": [0.6, 0.7, 0.8]}, 10, noise=0.0)
    eff = data_efficiency(runs).set_index("arm")
    assert eff.loc["finetune", "scratch_flat"]
    assert "dt_5" not in eff or pd.isna(eff.loc["finetune", "dt_5"])
    table = efficiency_table(eff.reset_index())
    assert (table.loc["finetune", ["D_T @ 1", "D_T @ 20"]] == FLAT_TEXT).all()


def test_effective_data_gets_a_unit_bootstrap_from_ten_units_only():
    curves = {"scratch": [0.3, 0.6, 0.9], "finetune": [0.5, 0.8, 0.95]}
    eff = data_efficiency(_runs(curves, 10)).set_index("arm")
    row = eff.loc["finetune"]
    assert not row["scratch_flat"] and row["transfer_units"] == 10
    assert row["dt_1_ci_low"] <= row["dt_1"] <= row["dt_1_ci_high"]
    assert row["aulc_ci_low"] < row["aulc"] < row["aulc_ci_high"]
    few = data_efficiency(_runs(curves, 4)).set_index("arm")
    assert "dt_1_ci_low" not in few or pd.isna(few.loc["finetune", "dt_1_ci_low"])


@pytest.fixture
def report(tmp_path):
    """4 regimes x 3 budgets x 6 seeds: finetune clearly above scratch, the probe close to it."""
    rng = np.random.default_rng(1)
    curves = {
        "scratch": [0.3, 0.5, 0.7],
        "pixels": [0.4, 0.55, 0.7],
        "finetune": [0.6, 0.75, 0.85],
        "linear_probe": [0.6, 0.745, 0.85],
    }
    for regime, curve in curves.items():
        for k, base in zip(BUDGETS, curve, strict=True):
            for seed in range(6):
                acc = float(np.clip(base + rng.normal(0, 0.02), 0, 1))
                rec = synthetic_record(regime, int(k), seed, acc)
                rec["config"]["comparisons"] = COMPARISONS
                rec["subset_seed"] = rec["train_seed"] = seed
                write_dict(tmp_path / "s" / f"{regime}-{k}-{seed}" / "record.json", rec)
    return build_report([tmp_path / "s"], tmp_path / "report").parent


def _findings_html(out) -> str:
    page = (out / "index.html").read_text()
    section = page[page.index('<h2 id="findings">') : page.index("<details>")]
    return html.unescape(re.sub(r"<[^>]+>", " ", section))


def test_findings_csv_is_what_the_html_says(report):
    rows = pd.read_csv(report / "findings.csv", keep_default_na=False, na_values=[""])
    text = _findings_html(report)
    # the declared family: 2 pretrained x 2 references + 1 pair, once on AULC and per budget
    primary = rows[rows["budget"] == "AULC"]
    assert sorted(primary["comparison"]) == sorted(
        ["finetune - pixels", "finetune - scratch", "linear_probe - pixels"]
        + ["linear_probe - scratch", "finetune - linear_probe"]
    )
    assert len(rows) == 5 + 5 * 3
    for r in rows.itertuples():
        interval = f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        assert interval in text, (r.comparison, r.budget)
        resolved = r.p_adjusted < 0.05 and (r.ci_low > 0 or r.ci_high < 0)
        assert (r.verdict != "not resolved") == resolved
    fs = primary.set_index("comparison").loc["finetune - scratch"]
    assert fs["verdict"] == "higher"
    assert (
        f"finetune - scratch, AULC (log budget axis, normalised, per unit): {fs.estimate:+.3f}"
        in text
    )
    pair = primary.set_index("comparison").loc["finetune - linear_probe"]
    assert pair["verdict"] == "not resolved"
    assert f"not resolved with 6 seeds; the interval is [{pair.ci_low:+.3f}, " in text
    assert "finetune is higher from 1 per class on" in text
    page = (report / "index.html").read_text()
    assert "the variance cannot be decomposed" in page  # one seed set subset and training


def _holm(p):
    order = np.argsort(p)
    adj = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    return adj[np.argsort(order)]


def test_findings_and_summary_recompute_from_runs_csv_with_scipy(report):
    runs = pd.read_csv(report / "runs.csv", dtype={"per_class": str})
    rows = pd.read_csv(report / "findings.csv", dtype={"budget": str})
    assert {"arm", "group", "subset_seed", "train_seed", "per_class", "test/acc"} <= set(runs)
    ok = runs[runs["status"] == "ok"]
    wide = ok.pivot_table(index=["per_class", "subset_seed", "train_seed"], columns="arm",
                          values="test/acc")  # fmt: skip
    secondary = rows[rows["family"].str.startswith("secondary")]
    p_raw = []
    for r in secondary.itertuples():
        cell = wide.loc[r.budget]
        p_raw.append(stats.ttest_rel(cell[r.a], cell[r.b]).pvalue)
    assert secondary["p_raw"].to_numpy() == pytest.approx(p_raw)
    assert secondary["p_adjusted"].to_numpy() == pytest.approx(_holm(np.array(p_raw)))
    r = secondary[(secondary["comparison"] == "finetune - scratch") & (secondary["budget"] == "5")]
    d = (wide.loc["5"]["finetune"] - wide.loc["5"]["scratch"]).to_numpy()
    ci = stats.ttest_1samp(d, 0).confidence_interval()
    assert r[["estimate", "ci_low", "ci_high"]].iloc[0].to_numpy() == pytest.approx(
        [d.mean(), ci.low, ci.high]
    )
    assert r["p_wilcoxon"].iloc[0] == pytest.approx(stats.wilcoxon(d).pvalue)
    # the primary endpoint: per-unit AULC on ln(labelled per class), trapezoid, normalised
    x = np.log(ok.groupby("per_class")["labelled_per_class"].mean().loc[list(BUDGETS)].to_numpy())
    curve = ok.pivot_table(index=["subset_seed", "train_seed"], columns=["arm", "per_class"],
                           values="test/acc")  # fmt: skip
    auc = {a: np.trapezoid(curve[a][list(BUDGETS)].to_numpy(), x, axis=1) / np.ptp(x)
           for a in ("finetune", "scratch")}  # fmt: skip
    top = rows[(rows["budget"] == "AULC") & (rows["comparison"] == "finetune - scratch")].iloc[0]
    assert top["budgets"] == ",".join(BUDGETS)  # the grid findings.csv says the AULC is on
    assert top["estimate"] == pytest.approx((auc["finetune"] - auc["scratch"]).mean())
    assert top["p_raw"] == pytest.approx(stats.ttest_rel(auc["finetune"], auc["scratch"]).pvalue)
    summary = pd.read_csv(report / "summary.csv", dtype={"per_class": str})
    cell = summary.set_index(["arm", "per_class"]).loc[("pixels", "20")]
    vals = ok[(ok["arm"] == "pixels") & (ok["per_class"] == "20")]["test/acc"]
    ref = stats.t.interval(0.95, len(vals) - 1, loc=vals.mean(), scale=stats.sem(vals))
    assert (cell["test/acc_ci_low"], cell["test/acc_ci_high"]) == pytest.approx(ref)
    assert cell["test/acc_std"] == pytest.approx(vals.std(ddof=1)) and cell["test/acc_n"] == 6


def test_a_crossed_design_gets_its_variance_split_in_the_report(tmp_path):
    """3 subsets x 3 train seeds; the subset moves accuracy by 0.1, training by 0.01."""
    for s in range(3):
        for t in range(3):
            acc = 0.5 + 0.1 * s + 0.01 * t
            rec = synthetic_record("scratch", 5, 3 * s + t, acc)
            rec["subset_seed"], rec["train_seed"] = s, t
            write_dict(tmp_path / "s" / f"{s}-{t}" / "record.json", rec)
    out = build_report([tmp_path / "s"], tmp_path / "report").parent
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(set(zip(runs["subset_seed"], runs["train_seed"], strict=True))) == [
        (s, t) for s in range(3) for t in range(3)
    ]
    page = (out / "index.html").read_text()
    assert "subset share" in page and "3 subsets x 3 train seeds" in page
    share = 0.01 / (0.01 + 0.0001)  # variances of the two additive effects, no residual
    assert f"{share:.3f}" in page


def test_the_family_is_declared_or_derived_and_compares_within_group_and_variant():
    from reports.family import comparisons, declared

    arms = [
        ("scratch · s=1", "scratch", "s=1", ""),
        ("scratch · s=2", "scratch", "s=2", ""),
        ("finetune · s=1", "finetune", "s=1", ""),
        ("finetune · s=2", "finetune", "s=2", ""),
        ("pixels", "pixels", "", ""),
        ("finetune · m=b", "finetune", "", "m=b"),  # no reference in its group
    ]
    runs = pd.DataFrame(arms, columns=["arm", "regime", "variant", "group"])
    spec = declared(as_records([synthetic_record("scratch", 1, 0, 0.5)]), set(runs["regime"]))
    assert spec == {"references": ["pixels", "scratch"], "pretrained": ["finetune"], "pairs": []}
    found = {(c.a, c.b) for c in comparisons(runs, spec)}
    assert found == {
        ("finetune · s=1", "pixels"),
        ("finetune · s=1", "scratch · s=1"),
        ("finetune · s=2", "pixels"),
        ("finetune · s=2", "scratch · s=2"),
    }
    one = {"references": ["scratch"], "pretrained": ["finetune"], "pairs": [["lp_ft", "finetune"]]}
    two = {"references": ["pixels"], "pretrained": [], "pairs": [["lp_ft", "finetune"]]}
    declaring = [
        synthetic_record("scratch", 1, 0, 0.5, config={"comparisons": c}) for c in (one, two)
    ]
    union = declared(as_records(declaring), set())
    assert union == {
        "references": ["scratch", "pixels"],
        "pretrained": ["finetune"],
        "pairs": [["lp_ft", "finetune"]],
    }


def test_replay_sentences_are_paired_t_with_holm_over_the_replay_family():
    from reports.findings import replay_effect

    base, cut = [0.30, 0.32, 0.29, 0.31], [0.10, 0.13, 0.09, 0.12]
    per_run = pd.DataFrame(
        {
            "variant": ["r0"] * 4 + ["r25"] * 4,
            "seed": list(range(4)) * 2,
            "forgetting_max": base + cut,
        }
    )
    knobs = pd.DataFrame({"replay": [0.0, 0.25], "schedule": "rewarm"}, index=["r0", "r25"])
    (line,) = replay_effect(per_run, knobs)
    p = stats.ttest_rel(cut, base).pvalue  # one test in the family: Holm leaves it as it is
    assert line.startswith("Replay of 25% (schedule rewarm) cuts forgetting from 0.305 to 0.110")
    assert f"Holm p = {p:.3g} over 1" in line


def test_the_forgetting_family_leaves_out_a_frozen_backbone(tmp_path):
    """linear_probe forgets exactly 0 by construction: it is no test and no member of the family."""
    rng = np.random.default_rng(2)
    for regime in ("finetune", "linear_probe", "scratch"):
        for k in BUDGETS:
            for seed in range(6):
                rec = synthetic_record(regime, int(k), seed, 0.7)
                if regime != "scratch":
                    moved = 0.02 + rng.normal(0, 0.005) if regime == "finetune" else 0.0
                    rec["metrics"]["source/forgetting"] = moved
                rec["config"]["comparisons"] = COMPARISONS
                rec["subset_seed"] = rec["train_seed"] = seed
                write_dict(tmp_path / "s" / f"{regime}-{k}-{seed}" / "record.json", rec)
    out = build_report([tmp_path / "s"], tmp_path / "report").parent
    rows = pd.read_csv(out / "findings.csv", keep_default_na=False)
    forgetting = rows[rows["family"].str.startswith("forgetting:")]
    assert list(forgetting["comparison"]) == ["finetune: source forgetting"]
    assert "Holm over 1 tests" in forgetting["family"].iloc[0]


def test_declared_pairs_whose_arms_both_forget_get_a_paired_forgetting_claim(tmp_path):
    """ewc - finetune on forgetting: the paired mean of per-unit AULCs, scipy's paired t."""
    rng = np.random.default_rng(3)
    comparisons = {
        "references": ["scratch"],
        "pretrained": ["finetune", "ewc", "linear_probe"],
        "pairs": [["ewc", "finetune"], ["finetune", "linear_probe"]],
    }
    forgets = {}
    for regime in ("finetune", "ewc", "linear_probe", "scratch"):
        for seed in range(6):
            level = {"finetune": 0.03, "ewc": 0.01}.get(regime, 0.0) + rng.normal(0, 0.004)
            for i, k in enumerate(BUDGETS):
                rec = synthetic_record(regime, int(k), seed, 0.7 + 0.01 * seed)
                if regime in ("finetune", "ewc"):  # forgetting that grows with the budget
                    value = level * (1 + i) + rng.normal(0, 0.002)
                    rec["metrics"]["source/forgetting"] = forgets[regime, seed, k] = value
                elif regime == "linear_probe":
                    rec["metrics"]["source/forgetting"] = 0.0
                rec["config"]["comparisons"] = comparisons
                rec["subset_seed"] = rec["train_seed"] = seed
                write_dict(tmp_path / "s" / f"{regime}-{k}-{seed}" / "record.json", rec)
    out = build_report([tmp_path / "s"], tmp_path / "report").parent
    rows = pd.read_csv(out / "findings.csv", keep_default_na=False)
    pairs = rows[rows["family"].str.startswith("forgetting differences")]
    # finetune - linear_probe would repeat finetune's own claim (the probe forgets 0): left out
    assert list(pairs["comparison"]) == ["ewc - finetune: source forgetting"]
    x = np.log([float(n) for n in BUDGETS.values()])

    def unit_aulc(regime: str) -> np.ndarray:  # trapezoid over ln(n), divided by its range
        curves = [[forgets[regime, s, k] for k in BUDGETS] for s in range(6)]
        return np.array([np.trapezoid(c, x) / (x[-1] - x[0]) for c in curves])

    a, b = unit_aulc("ewc"), unit_aulc("finetune")
    row = pairs.iloc[0]
    assert float(row["estimate"]) == pytest.approx((a - b).mean(), abs=1e-9)
    assert float(row["p_raw"]) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-6)
    assert row["verdict"] == "lower"
    page = html.unescape((out / "index.html").read_text())
    assert "ewc - finetune: source forgetting (probe-refit, averaged over budgets)" in page
    assert "ewc forgets less" in page
