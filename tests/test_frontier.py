"""The learning-forgetting frontier (reports/frontier.py): Pareto points, paired gains, files."""

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_record, write_dict
from scipy import stats

from common.metrics import definitions_for, lookup
from reports.aggregate import summarize
from reports.build import build_report
from reports.collect import collect
from reports.frontier import (
    COLUMNS,
    NO_REFERENCE,
    figure,
    frontier_table,
    pareto_mask,
    references,
    section,
    wise_curves,
)

DECLARED = {  # pixels is declared first but never run: svm, the next one, is the reference
    "comparisons": {
        "references": ["pixels", "svm", "scratch"],
        "pretrained": ["linear_probe", "finetune", "lp_ft"],
        "pairs": [],
    }
}
ALPHAS = ("0", "0.25", "0.5", "1")


def brute_pareto(gain, loss):
    """The definition, one pair at a time."""
    keep = []
    for i in range(len(gain)):
        dominated = False
        for j in range(len(gain)):
            better = gain[j] > gain[i] or loss[j] < loss[i]
            if j != i and gain[j] >= gain[i] and loss[j] <= loss[i] and better:
                dominated = True
        keep.append(not dominated)
    return np.array(keep)


def test_pareto_mask_on_a_fixed_table():
    gain = np.array([0.10, 0.05, 0.10, 0.20, 0.00, 0.20, -0.05])
    loss = np.array([0.02, 0.00, 0.05, 0.10, 0.00, 0.10, 0.08])
    # 2: same gain as 0, more loss; 4: same loss as 1, less gain; 3 and 5 tie (both stay);
    # 6: 0 gains more and loses less
    expected = [True, True, False, True, False, True, False]
    assert brute_pareto(gain, loss).tolist() == expected
    assert pareto_mask(gain, loss).tolist() == expected


def test_pareto_mask_matches_brute_force_on_random_tables_with_ties():
    rng = np.random.default_rng(0)
    tied = 0
    for _ in range(200):
        n = int(rng.integers(1, 10))
        gain, loss = rng.integers(-2, 3, n) / 10, rng.integers(0, 3, n) / 10  # few values: ties
        tied += len(set(zip(gain, loss, strict=True))) < n
        assert pareto_mask(gain, loss).tolist() == brute_pareto(gain, loss).tolist()
    assert tied > 50  # the ties the test is about did occur


def test_a_point_with_nan_is_never_optimal_and_dominates_nothing():
    assert pareto_mask([0.1, np.nan, 0.0], [0.0, 0.0, np.nan]).tolist() == [True, False, False]
    assert pareto_mask([0.1, np.nan], [0.1, 0.0]).tolist() == [True, False]


def _write(folder, regime, accs, forgetting=None, per_class=2, seeds=None, config=DECLARED):
    for i, acc in enumerate(accs):
        seed = i if seeds is None else seeds[i]
        fg = None if forgetting is None else forgetting[i]
        rec = synthetic_record(regime, per_class, seed, acc, forgetting=fg, config=config)
        write_dict(folder / f"{regime}-{per_class}-{seed}" / "record.json", rec)


def _frontier(folder):
    runs, records, _ = collect([folder])
    refs = references(runs, records)
    return runs, refs, frontier_table(runs, summarize(runs), refs)


def test_gain_is_the_paired_mean_over_the_first_declared_reference_present(tmp_path):
    s = tmp_path / "s"
    _write(s, "svm", [0.70, 0.71, 0.75, 0.50], seeds=[0, 1, 2, 4])  # seed 4: no partner
    _write(s, "scratch", [0.40, 0.41, 0.42, 0.43])  # a weaker reference, declared later
    _write(s, "finetune", [0.80, 0.84, 0.78, 0.90], forgetting=[0.10, 0.12, 0.08, 0.20])
    _write(s, "lp_ft", [0.79, 0.83, 0.77, 0.89], forgetting=[0.15] * 4)
    _write(s, "linear_probe", [0.72, 0.73, 0.74, 0.75], forgetting=[0.0] * 4)
    _, refs, table = _frontier(s)
    assert refs == {"": "svm"}
    row = table.set_index("arm")
    assert set(row.index) == {"finetune", "lp_ft", "linear_probe"}  # references are not on it
    diffs = np.array([0.80 - 0.70, 0.84 - 0.71, 0.78 - 0.75])  # seeds 0, 1, 2 only
    ci = stats.ttest_1samp(diffs, 0).confidence_interval()
    ft = row.loc["finetune"]
    assert ft["gain"] == pytest.approx(diffs.mean())  # 0.0867; unpaired means would give 0.165
    assert (ft["gain_ci_low"], ft["gain_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert ft["n_seeds"] == 3 and ft["reference"] == "svm"
    assert ft["forgetting"] == pytest.approx(0.125)  # all four seeds: forgetting needs no partner
    lp = np.array([0.72 - 0.70, 0.73 - 0.71, 0.74 - 0.75])
    assert row.loc["linear_probe", "gain"] == pytest.approx(lp.mean())
    # lp_ft gains less than finetune and forgets more: dominated; the other two are the front
    assert row["pareto"].to_dict() == {"finetune": True, "lp_ft": False, "linear_probe": True}


def test_without_a_reference_the_y_axis_is_plain_accuracy_and_says_so(tmp_path):
    s = tmp_path / "s"
    _write(s, "finetune", [0.80, 0.90], forgetting=[0.1, 0.1])
    _write(s, "linear_probe", [0.70, 0.72], forgetting=[0.0, 0.0])
    runs, refs, table = _frontier(s)
    assert refs == {"": None}
    row = table.set_index("arm")
    assert row.loc["finetune", "gain"] == pytest.approx(0.85)
    assert set(table["reference"]) == {NO_REFERENCE}
    fig = figure(table, wise_curves(runs, refs))
    assert "no reference regime present" in fig.axes[0].get_ylabel()


def test_head_retained_forgetting_gets_its_columns_and_its_panel(tmp_path):
    s = tmp_path / "s"
    _write(s, "scratch", [0.5, 0.6])
    for seed, head in enumerate([0.30, 0.40]):  # a supervised source stage left its head
        rec = synthetic_record("finetune", 2, seed, 0.8, forgetting=0.1, config=DECLARED)
        rec["metrics"] |= {"source/head_acc_before": 0.9, "source/head_acc_after": 0.9 - head}
        rec["metrics"]["source/head_forgetting"] = head
        write_dict(s / f"ft-{seed}" / "record.json", rec)
    _write(s, "linear_probe", [0.6, 0.7], forgetting=[0.0, 0.0])
    runs, refs, table = _frontier(s)
    row = table.set_index("arm")
    assert row.loc["finetune", "head_forgetting"] == pytest.approx(0.35)
    assert np.isnan(row.loc["linear_probe", "head_forgetting"])  # no head: nothing invented
    labels = [ax.get_xlabel() for ax in figure(table, wise_curves(runs, refs)).axes]
    assert labels == [
        "source loss: probe-refit forgetting (before - after)",
        "source loss: head-retained forgetting (before - after)",
    ]


def _wise(folder, seeds, with_curve=True):
    for seed in seeds:
        rec = synthetic_record("wise_ft", 2, seed, 0.7, forgetting=0.05, config=DECLARED)
        if with_curve:
            for a in ALPHAS:
                rec["metrics"][f"wise/target/{a}"] = 0.6 + 0.2 * float(a) + 0.02 * seed
                rec["metrics"][f"wise/source/{a}"] = 0.9 - 0.1 * float(a) - 0.01 * seed
            rec["metrics"]["wise/alpha"] = 0.5
        write_dict(folder / f"wise-{seed}" / "record.json", rec)


def test_the_registry_knows_the_interpolation_families():
    """wise_ft's records hold them: a record's definitions and ranges come from the registry."""
    held = {"wise/target/0.25": 0.7, "wise/source/1": 0.8, "wise/alpha": 0.5, "test/acc": 0.7}
    assert set(definitions_for(held)) == {
        "wise/target/a",
        "wise/source/a",
        "wise/alpha",
        "test/acc",
    }
    assert lookup("wise/target/0.5").range == (0.0, 1.0) and not lookup("wise/source/0").per_cell


def _curve_line(fig):
    lines = [line for ax in fig.axes for line in ax.get_lines() if "θ_start" in line.get_label()]
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    return lines, texts


def test_the_wise_ft_curve_is_the_paired_interpolation_drawn_in_alpha_order(tmp_path):
    s = tmp_path / "s"
    _write(s, "svm", [0.5, 0.53, 0.56])  # seeds 0..2
    _wise(s, seeds=[0, 1, 2, 3])  # seed 3 has no svm partner
    runs, refs, table = _frontier(s)
    curves = wise_curves(runs, refs)
    assert curves["alpha"].tolist() == [0, 0.25, 0.5, 1]
    half = curves.set_index("alpha_text").loc["0.5"]
    # x: source/acc_before (0.9) - wise/source/0.5 over all four seeds
    assert half["x"] == pytest.approx(np.mean([0.05 + 0.01 * s for s in range(4)]))
    # y: wise/target/0.5 - svm's test/acc, paired on seeds 0..2 only
    paired = [0.6 + 0.1 + 0.02 * s - (0.5 + 0.03 * s) for s in range(3)]
    assert half["y"] == pytest.approx(np.mean(paired))
    lines, texts = _curve_line(figure(table, curves))
    assert len(lines) == 1 and {"α=0", "α=1"} <= texts
    assert lines[0].get_xdata().tolist() == pytest.approx(curves["x"].tolist())
    assert lines[0].get_ydata().tolist() == pytest.approx(curves["y"].tolist())


def test_no_curve_without_wise_columns(tmp_path):
    s = tmp_path / "s"
    _write(s, "svm", [0.5, 0.53, 0.56])
    _wise(s, seeds=[0, 1, 2], with_curve=False)
    runs, refs, table = _frontier(s)
    assert wise_curves(runs, refs).empty
    lines, texts = _curve_line(figure(table, wise_curves(runs, refs)))
    assert lines == [] and not {"α=0", "α=1"} & texts


def test_no_forgetting_no_section_but_the_csv_is_written(tmp_path):
    s = tmp_path / "s"
    _write(s, "scratch", [0.5, 0.6])
    runs, records, _ = collect([s])
    front = section(runs, summarize(runs), records, tmp_path)
    assert front == {"figure": None, "context": None}
    written = pd.read_csv(tmp_path / "frontier.csv")
    assert list(written.columns) == COLUMNS and written.empty


def _page_order(page, *marks):
    return [page.index(m) for m in marks]


def test_the_report_writes_frontier_csv_and_figure_after_forgetting(tmp_path):
    s = tmp_path / "s"
    for k in (2, 5):
        _write(s, "scratch", [0.5, 0.6, 0.55], per_class=k)
        _write(s, "finetune", [0.8, 0.9, 0.85], forgetting=[0.1, 0.2, 0.15], per_class=k)
        _write(s, "linear_probe", [0.7, 0.7, 0.72], forgetting=[0.0] * 3, per_class=k)
    page = build_report([s], tmp_path / "r").read_text()
    out = tmp_path / "r"
    written = pd.read_csv(out / "frontier.csv")
    assert list(written.columns) == COLUMNS
    assert len(written) == 4 and set(written["reference"]) == {"scratch"}
    ft = written[(written["arm"] == "finetune") & (written["per_class"] == 2)].iloc[0]
    assert ft["gain"] == pytest.approx(0.3) and ft["n_seeds"] == 3
    for name in ("frontier.png", "frontier.svg"):
        assert (out / "figures" / name).stat().st_size > 0
    assert "Learning–forgetting frontier" in page and "Pareto-optimal" in page
    assert page.count("<h3>2 per class: gain over scratch</h3>") == 1  # one table per budget
    forgetting, front, compute = _page_order(page, 'id="forgetting"', 'id="frontier"', "Compute<")
    assert forgetting < front < compute  # no trade-off regime ran: after the forgetting section


def test_the_frontier_leads_when_a_trade_off_regime_ran(tmp_path):
    s = tmp_path / "s"
    _write(s, "svm", [0.5, 0.53, 0.56])
    _write(s, "finetune", [0.8, 0.9, 0.85], forgetting=[0.1, 0.2, 0.15])
    _wise(s, seeds=[0, 1, 2])
    page = build_report([s], tmp_path / "r").read_text()
    headline, front, findings = _page_order(page, 'id="headline"', 'id="frontier"', 'id="findings"')
    assert headline < front < findings  # right after the headline, before everything else
    assert page.count('id="frontier"') == 1
    assert "weight interpolation" in page  # the wise_ft curve is explained where it is drawn
    assert "gain over svm" in page
