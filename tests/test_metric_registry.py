"""One metric registry (common/metrics.py): runs, records, report and golden check all read it."""

import json

import numpy as np
import pytest
from helpers import synthetic_record, write_dict

from benchmarks import golden
from benchmarks.run import execute
from common.metrics import HEADLINE, METRICS, PER_CELL, PINNED, definitions_for, lookup
from reports.aggregate import summarize
from reports.collect import collect
from reports.tables import main_metrics, source_forgetting_rows


@pytest.mark.parametrize(
    "overrides",
    [
        ("regime=finetune", "pretrain=supervised"),  # test/*, source/* and source/head_*
        ("regime=incremental_pretrain",),  # source/acc_after_continued
        ("experiment=digits_forgetting", "budget.per_class=2"),  # R/i/j and b/j
    ],
)
def test_every_metric_a_real_run_writes_is_in_the_registry(compose_cfg, tmp_path, overrides):
    record = execute(compose_cfg(*overrides), tmp_path / "run")
    assert record.ok, record.error
    assert len(record.metrics) >= 3
    for name in record.metrics:
        metric = lookup(name)  # KeyError names an unregistered metric
        lo, hi = metric.range
        value = record.metrics[name]
        assert np.isnan(value) or lo <= value <= hi, (name, value)
    # the record's words are the registry's, one per metric (or family) it holds
    assert record.definitions == definitions_for(record.metrics)
    for name, words in record.definitions.items():
        assert METRICS[name].definition == words


def test_an_unknown_metric_is_refused_by_name():
    with pytest.raises(KeyError, match="'test/accuracy' is not a metric of the registry"):
        lookup("test/accuracy")
    assert lookup("R/2/0").name == "R/i/j" and lookup("b/1").name == "b/j"
    assert definitions_for({"R/0/1": 0.5, "made/up": 1.0}) == {"R/i/j": METRICS["R/i/j"].definition}


def test_the_report_reads_definitions_and_ranges_from_the_registry(tmp_path):
    """Forgetting may be negative (a gain), accuracy not above 1: intervals clip to each range."""
    for seed, (acc, fg) in enumerate([(0.97, -0.5), (0.99, -0.4), (1.0, -0.6)]):
        rec = synthetic_record("finetune", 1, seed, acc, forgetting=fg)
        write_dict(tmp_path / "s" / str(seed) / "record.json", rec)
    runs, _, _ = collect([tmp_path / "s"])
    summary = summarize(runs)
    row = summary.iloc[0]
    assert row["test/acc_ci_high"] == 1.0 and row["test/acc_clipped"]  # [0, 1]
    assert row["source/forgetting_ci_low"] < 0 and not row["source/forgetting_clipped"]
    assert all(f"{m}_mean" in summary for m in PER_CELL)
    assert list(main_metrics(summary).columns[4:]) == list(HEADLINE)
    words = source_forgetting_rows(summary).set_index("metric")["definition"]
    assert words["source_forgetting_probe_refit"] == METRICS["source/forgetting"].definition


def test_the_golden_check_pins_the_registry_s_metrics():
    """The golden file holds exactly the pinned metrics; the check compares those."""
    held = {
        m
        for s in golden.sets_of(json.loads(golden.GOLDEN_FILE.read_text()))
        for run in s["runs"]
        for m in run["metrics"]
    }
    assert held == set(PINNED) and golden.METRICS == PINNED
