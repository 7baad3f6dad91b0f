"""The benchmark's bookkeeping and its JSON contract (no timing is asserted)."""

import json
import math

import pandas as pd
import pytest
from helpers import synthetic_record, write_dict

from benchmarks.bench import main
from benchmarks.sweep_bench import executions
from reports.aggregate import with_costs

KEYS = {
    "train_throughput_ratio",
    "probe_speedup",
    "probe_accuracy_diff",
    "rerun_time_ratio",
    "pretrain_executions",
    "pretrain_configs",
    "feature_extractions",
    "feature_configs",
    "default_sweep_seconds",
    "default_sweep_overhead_ratio",
    "report_build_seconds",
    "report_share",
    "compose_speedup",
}


def test_executions_count_builds_against_distinct_keys(tmp_path):
    infos = [
        {"pretrain_hash": "a", "pretrain_cached": False},
        {
            "pretrain_hash": "a",
            "pretrain_cached": True,
            "features_hash": "f",
            "features_cached": False,
        },
        {
            "pretrain_hash": "b",
            "pretrain_cached": False,
            "features_hash": "f",
            "features_cached": True,
        },
        {},
    ]
    for i, info in enumerate(infos):
        record = synthetic_record("finetune", 1, i, 0.5, info=info)
        write_dict(tmp_path / str(i) / "record.json", record)
    assert executions(tmp_path) == {
        "pretrain_executions": 2,
        "pretrain_configs": 2,
        "feature_extractions": 1,
        "feature_configs": 1,
    }


def test_costs_amortise_a_shared_pretraining():
    runs = pd.DataFrame(
        {
            "seconds/train": [1.0, 2.0, 3.0],
            "seconds/eval": [0.5, 0.5, 0.5],
            "compute/pretrain_seconds_full": [12.0, 12.0, None],
            "pretrain_hash": ["h", "h", None],
        }
    )
    out = with_costs(runs)
    assert out["cost/target_s"].tolist() == [1.5, 2.5, 3.5]
    assert out["cost/pretrain_full_s"].tolist() == [12.0, 12.0, 0.0]
    assert out["cost/pretrain_amortised_s"].tolist() == [6.0, 6.0, 0.0]


@pytest.mark.slow
def test_bench_writes_every_key(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "--repeats",
                "1",
                "--out",
                str(out),
                "--sweep",
                "regime=finetune budget.per_class=1 seed=0 name=b pretrain.steps=5 train.steps=5",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert set(data) >= KEYS
    assert data["pretrain_executions"] == data["pretrain_configs"] == 1
    assert data["default_sweep_workers"] == 1  # the basic launcher: one job at a time
    assert 0 < data["default_sweep_compute_bound_seconds"] < data["default_sweep_seconds"]
    assert data["default_sweep_overhead_ratio"] > 1  # start-up and the report are not compute
    assert 0 < data["report_share"] < 1
    assert data["probe_accuracy_diff"] == pytest.approx(0.0, abs=0.01)
    assert data["train_throughput_ratio"] > 0
    assert data["compose_jobs"] == data["compose_group_choices"] == 1  # one job, no sweep axes
    assert math.isfinite(data["compose_speedup"]) and data["compose_speedup"] > 0
    printed = capsys.readouterr().out
    assert "train_throughput_ratio" in printed and "(target <= 1.05)" in printed


def test_zero_repeats_is_rejected_before_any_work(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--repeats", "0"])
    assert stop.value.code == 2
    assert "0 is not an int >= 1" in capsys.readouterr().err
