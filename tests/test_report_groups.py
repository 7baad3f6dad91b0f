"""Reports never pool different experiments: groups, variants, arms and refused duplicates."""

import shutil

import pandas as pd
import pytest
from helpers import as_records, synthetic_record, write_dict

from common.records import read_record
from reports.__main__ import main as report_main
from reports.aggregate import summarize
from reports.arms import arm_labels
from reports.build import build_report
from reports.collect import collect
from reports.compare import paired_differences
from reports.tables import config_split

TARGETS = {"digits_5to9": {"dataset": "digits"}, "mnist": {"dataset": "mnist"}}


def _sweep(folder, acc_of, config=None, regimes=("scratch", "finetune"), seeds=(0, 1), **fields):
    """2 regimes x budgets 1, 5 x seeds; acc_of(regime, budget, seed) gives each accuracy."""
    for regime in regimes:
        for k in (1, 5):
            for seed in seeds:
                rec = synthetic_record(regime, k, seed, acc_of(regime, k, seed), config=config)
                write_dict(folder / f"{regime}-{k}-{seed}" / "record.json", rec | fields)
    return folder


def _target(name):
    return {"data": {"name": name, **TARGETS[name]}}


def test_two_targets_are_two_groups_never_one_cell(tmp_path):
    a = _sweep(
        tmp_path / "a", lambda r, k, s: 0.5 + 0.1 * (r == "finetune"), _target("digits_5to9")
    )
    b = _sweep(tmp_path / "b", lambda r, k, s: 0.9 + 0.05 * (r == "finetune"), _target("mnist"))
    runs, _, _ = collect([a, b])
    assert set(runs["group"]) == {"data=digits_5to9", "data=mnist"}  # dataset follows the name
    assert "finetune · data=mnist" in set(runs["arm"])
    s = summarize(runs).set_index(["arm", "per_class"])
    assert len(s) == 8 and (s["n"] == 2).all()  # 2 runs per cell, not 4 pooled
    assert s.loc[("scratch · data=mnist", "1"), "test/acc_mean"] == pytest.approx(0.9)
    paired = paired_differences(runs).set_index(["arm", "per_class"])
    # each finetune arm is paired with the scratch arm of its own group
    assert paired.loc[("finetune · data=mnist", "1"), "diff_vs_scratch_mean"] == pytest.approx(0.05)
    assert paired.loc[("finetune · data=digits_5to9", "5"), "diff_vs_scratch_mean"] == (
        pytest.approx(0.1)
    )
    page = build_report([a, b], tmp_path / "r").read_text()
    assert "scratch · data=mnist" in page and "scratch · data=digits_5to9" in page
    assert "Group: data=mnist" in page  # one setup header per group
    # findings compare within a group: one row per group and comparison, never across groups
    rows = pd.read_csv(tmp_path / "r" / "findings.csv", keep_default_na=False)
    aulc = rows[rows["budget"] == "AULC"].set_index("group")
    assert set(aulc.index) == {"data=mnist", "data=digits_5to9"}
    assert aulc.loc["data=mnist", "estimate"] == pytest.approx(0.05)
    assert aulc.loc["data=digits_5to9", "estimate"] == pytest.approx(0.1)
    assert (aulc.loc["data=mnist", "a"], aulc.loc["data=mnist", "b"]) == (
        "finetune · data=mnist",
        "scratch · data=mnist",
    )


def test_two_models_are_two_groups(tmp_path):
    small = {"model": {"name": "test_resnet", "image_size": 16}}
    big = {"model": {"name": "resnet18", "image_size": 32}}
    a = _sweep(tmp_path / "a", lambda r, k, s: 0.6, small)
    b = _sweep(tmp_path / "b", lambda r, k, s: 0.7, big)
    runs, _, _ = collect([a, b])
    assert set(runs["group"]) == {"model=test_resnet", "model=resnet18"}  # image size implied
    s = summarize(runs)
    assert len(s) == 8 and (s["n"] == 2).all()
    table = pd.read_csv(build_report([a, b], tmp_path / "r").parent / "summary.csv")
    assert set(table["arm"]) == {
        f"{r} · model={m}" for r in ("scratch", "finetune") for m in ("test_resnet", "resnet18")
    }


def test_duplicate_records_are_refused_in_one_line(tmp_path, capsys):
    a = _sweep(tmp_path / "a", lambda r, k, s: 0.6)
    shutil.copytree(a, tmp_path / "copy")
    assert report_main([str(a), str(tmp_path / "copy"), "--out", str(tmp_path / "r")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("regimebench-report: error: two ok records for arm")
    assert str(a) in line and str(tmp_path / "copy") in line
    assert not (tmp_path / "r").exists()


def test_a_failed_rerun_is_not_a_duplicate(tmp_path):
    a = _sweep(tmp_path / "a", lambda r, k, s: 0.6)
    bad = synthetic_record("scratch", 1, 0, float("nan"), status="failed")
    write_dict(tmp_path / "a" / "again" / "record.json", bad)
    runs, _, _ = collect([a])
    assert len(runs) == 9


def test_stage_keys_vary_per_regime_and_unread_nodes_do_not(tmp_path):
    reads = {"scratch": ["train"], "finetune": ["pretrain", "train"]}
    for steps in (5, 50):  # two pretraining lengths: a variant of finetune, not of scratch
        for regime in ("scratch", "finetune"):
            for seed in (0, 1):
                config = {"pretrain": {"steps": steps}, "train": {"lr": 0.003}}
                if steps == 50 and regime == "scratch":
                    continue
                rec = synthetic_record(regime, 1, seed, 0.5, config=config, reads=reads[regime])
                write_dict(tmp_path / "s" / f"{regime}{steps}{seed}" / "record.json", rec)
    runs, records, _ = collect([tmp_path / "s"])
    assert set(runs["arm"]) == {
        "scratch",
        "finetune · pretrain.steps=5",
        "finetune · pretrain.steps=50",
    }
    assert set(runs["group"]) == {""}
    varied, fixed = config_split(records)
    assert dict(varied)["pretrain.steps"] == "5; 50; \u2014, not used by scratch"
    assert dict(fixed)["train.lr"] == "0.003"


def test_unset_stage_nodes_show_as_not_used(tmp_path):
    for regime, continued in (("scratch", "???"), ("incremental_pretrain", 200)):
        config = {"continued_pretrain": {"steps": continued}}
        rec = synthetic_record(regime, 1, 0, 0.5, config=config)
        write_dict(tmp_path / "s" / regime / "record.json", rec)
    _, records, _ = collect([tmp_path / "s"])
    labels = arm_labels(records)
    assert list(labels["arm"]) == ["incremental_pretrain", "scratch"]  # sorted by folder
    _, fixed = config_split(records)  # one value where used: fixed, and said where unused
    assert dict(fixed)["continued_pretrain.steps"] == "200; \u2014, not used by scratch"
    page = build_report([tmp_path / "s"], tmp_path / "r").read_text()
    assert "???" not in page


def test_old_records_borrow_what_a_regime_reads_from_new_ones():
    old = synthetic_record("scratch", 1, 0, 0.5, config={"pretrain": {"steps": 400}})
    new = synthetic_record("scratch", 1, 1, 0.5, config={"pretrain": {"steps": 5}}, reads=["train"])
    assert list(arm_labels(as_records([old, new]))["arm"]) == ["scratch", "scratch"]


def test_a_regime_s_own_node_is_a_stage_node_not_a_group(tmp_path):
    """svm.* is set only in svm runs: it must not split the other regimes into another group."""
    folder = tmp_path / "s"
    for regime in ("svm", "scratch"):
        for seed in (0, 1):
            own = (
                {"svm": {"c_grid": [1.0, 10.0]}} if regime == "svm" else {"svm": {"c_grid": "???"}}
            )
            rec = synthetic_record(regime, 5, seed, 0.8, config=own)
            rec["reads"] = ["svm"] if regime == "svm" else ["train"]
            write_dict(folder / f"{regime}-{seed}" / "record.json", rec)
    runs, _, _ = collect([folder])
    assert set(runs["group"]) == {""} and set(runs["arm"]) == {"svm", "scratch"}
    varied, fixed = config_split([read_record(p) for p in folder.rglob("record.json")])
    assert ("svm.c_grid", "[1.0, 10.0]; \u2014, not used by scratch") in fixed
