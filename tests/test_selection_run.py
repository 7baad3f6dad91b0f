"""Model selection, run side: the holdout split, cv folds, tuning trials, records, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from benchmarks.preflight import prepare
from benchmarks.run import execute
from lightning_modules.selection import cv_folds
from tests.helpers import run_cli

CLASSES = 5  # the default target, digits 5-9 rotated


def _sets(t: torch.Tensor) -> set[int]:
    return set(t.tolist())


def test_holdout_is_disjoint_from_every_budget_and_the_same_for_every_regime(compose_cfg):
    def split(*overrides):
        _, target, labelled, holdout = prepare(compose_cfg(*overrides))
        return target, labelled, holdout

    holdout_of = ("selection=holdout", "selection.per_class=4", "subset_seed=3")
    budgets = {}
    for per_class in ("1", "2", "5", "all"):
        target, labelled, holdout = split(*holdout_of, f"budget.per_class={per_class}")
        assert len(holdout) == 4 * CLASSES
        assert torch.bincount(target.y_train[holdout]).tolist() == [4] * CLASSES  # stratified
        assert not _sets(labelled) & _sets(holdout)
        budgets[per_class] = labelled
        if per_class != "all":  # the budget is the one every other protocol labels
            _, fixed, none = split("subset_seed=3", f"budget.per_class={per_class}")
            assert none is None and torch.equal(fixed, labelled)
    assert _sets(budgets["all"]) | _sets(holdout) == set(range(len(target.y_train)))
    order = ["1", "2", "5", "all"]  # nested
    assert all(
        _sets(budgets[a]) <= _sets(budgets[b]) for a, b in zip(order, order[1:], strict=False)
    )
    for regime in ("svm", "scratch", "linear_probe"):  # regime-independent and deterministic
        assert torch.equal(split(*holdout_of, f"regime={regime}")[2], holdout)
    assert not torch.equal(split("selection=holdout", "selection.per_class=4")[2], holdout)
    # data.evaluate_on=validation: the pool (and so the holdout) excludes the validation view
    view, _, view_holdout = split(*holdout_of, "data.evaluate_on=validation")
    assert len(view.y_train) + len(view.y_test) == len(target.y_train)
    assert int(view_holdout.max()) < len(view.y_train)


def test_cv_folds_are_stratified_partitions_capped_at_the_smallest_class(compose_cfg):
    _, target, labelled, _ = prepare(compose_cfg("budget.per_class=5"))
    labels = target.y_train[labelled]
    folds = cv_folds(labels, 5, seed=0)
    assert folds.k == 5
    held = torch.cat([h for _, h in folds.splits])
    assert sorted(held.tolist()) == list(range(len(labels)))  # a partition of the budget
    for fit, held_out in folds.splits:
        assert torch.bincount(labels[held_out], minlength=CLASSES).tolist() == [1] * CLASSES
        assert torch.bincount(labels[fit], minlength=CLASSES).tolist() == [4] * CLASSES
    again, other = cv_folds(labels, 5, seed=0), cv_folds(labels, 5, seed=1)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(folds.splits, again.splits, strict=True))
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(folds.splits, other.splits, strict=True))
    _, target, small, _ = prepare(compose_cfg("budget.per_class=3"))
    assert cv_folds(target.y_train[small], 5, seed=0).k == 3  # the largest k allowed
    _, target, one, _ = prepare(compose_cfg("budget.per_class=1"))
    assert cv_folds(target.y_train[one], 5, seed=0) is None  # nothing to validate on


def test_every_protocol_stamps_its_record_through_the_entry_point(tmp_path):
    sweep = ["-m", "regime=svm", "selection=fixed,holdout,cv,oracle", "budget.per_class=3"]
    run_cli([*sweep, "selection.per_class=6", "hydra/launcher=basic", "name=prot"], tmp_path)
    records = {}
    for path in (tmp_path / "multirun" / "prot").glob("*/record.json"):
        record = json.loads(path.read_text())
        records[record["selection"]["protocol"]] = record
    assert sorted(records) == ["cv", "fixed", "holdout", "oracle"]
    fixed, holdout, cv, oracle = (records[p] for p in ("fixed", "holdout", "cv", "oracle"))
    assert fixed["selection"] == {
        "protocol": "fixed",
        "trial": None,
        "trials": None,
        "hparams": {},
        "extra_labels": 0,
        "per_class": None,
        "folds": None,
        "defaulted": False,
        "is_default": True,
    }
    assert not any(k.startswith("val/") for k in fixed["metrics"])
    assert holdout["selection"]["extra_labels"] == 6 * CLASSES
    assert holdout["selection"]["per_class"] == 6
    assert cv["selection"]["folds"] == 3 and cv["selection"]["extra_labels"] == 0
    assert oracle["metrics"]["val/acc"] == oracle["metrics"]["test/acc"]
    for record in (holdout, cv, oracle):
        assert 0 <= record["metrics"]["val/acc"] <= 1 and record["metrics"]["val/loss"] > 0
        assert "val/acc" in record["definitions"]
    # The same labelled examples and the same fit: selection only adds val/*.
    assert len({r["metrics"]["test/acc"] for r in records.values()}) == 1
    assert holdout["metrics"]["val/acc"] != cv["metrics"]["val/acc"]


def test_cv_refits_a_deep_regime_on_each_fold_and_defaults_at_one_shot(compose_cfg, tmp_path):
    fixed = execute(compose_cfg("regime=scratch", "budget.per_class=2"), tmp_path / "f")
    cv = execute(
        compose_cfg("regime=scratch", "budget.per_class=2", "selection=cv"), tmp_path / "cv"
    )
    assert cv.selection["folds"] == 2 and not cv.selection["defaulted"]
    assert cv.metrics["test/acc"] == fixed.metrics["test/acc"]  # the folds leave it alone
    assert cv.seconds["select"] > 0 and "select" not in fixed.seconds
    # two fold fits of the same steps and batch as the run's own: twice its samples, counted
    assert cv.compute["select_samples"] == 2 * cv.compute["train_samples"]
    assert "select_samples" not in fixed.compute
    assert {"val/acc", "val/loss"} <= cv.metrics.keys()
    one = execute(
        compose_cfg("regime=scratch", "budget.per_class=1", "selection=cv"), tmp_path / "one"
    )
    assert one.selection["defaulted"] is True and one.selection["folds"] is None
    assert "val/acc" not in one.metrics


def _trial(compose_cfg, tmp_path, regime, grid, trial, *extra):
    cfg = compose_cfg(
        f"regime={regime}",
        f"+tuning.grids.{regime}={grid}",
        "tuning.trials=2",
        f"tuning.trial={trial}",
        "budget.per_class=2",
        *extra,
    )
    return execute(cfg, tmp_path / f"{regime}-{trial}-{abs(hash(grid))}")


def test_a_trial_is_applied_before_hashing_and_cache_keys(compose_cfg, tmp_path):
    lr = "{train.lr:[0.001,0.003]}"
    a = _trial(compose_cfg, tmp_path, "incremental_pretrain", lr, 0)
    b = _trial(compose_cfg, tmp_path, "incremental_pretrain", lr, 1)
    assert a.config["train"]["lr"] == 0.001 and b.config["train"]["lr"] == 0.003
    assert a.config_hash != b.config_hash
    assert a.info["continued_pretrain_hash"] == b.info["continued_pretrain_hash"]  # not retrained
    assert b.info["continued_pretrain_cached"] is True
    assert a.selection["hparams"] == {"train.lr": 0.001} and a.selection["is_default"]
    assert (b.selection["trial"], b.selection["trials"], b.selection["is_default"]) == (1, 2, False)
    cont = "{continued_pretrain.lr:[0.001,0.003]}"
    c = _trial(compose_cfg, tmp_path, "incremental_pretrain", cont, 1)
    assert c.info["continued_pretrain_hash"] != a.info["continued_pretrain_hash"]
    assert c.info["continued_pretrain_cached"] is False


def test_a_baseline_trial_fixes_its_hyperparameters(compose_cfg, tmp_path):
    grid = "{svm.c_grid:[1.0,10.0],svm.gamma_grid:[1.0]}"
    record = _trial(compose_cfg, tmp_path, "svm", grid, 1, "selection=cv")
    assert record.info["baseline_params"] == {"C": 10.0, "gamma": 1.0}
    assert record.info["baseline_selected_by"] == "given"  # one candidate: no inner CV
    assert record.config["svm"]["c_grid"] == [10.0] and record.config["svm"]["default_c"] == 10.0
    assert record.selection["trials"] == 2 and record.selection["is_default"] is False
    assert record.selection["hparams"] == {"svm.c_grid": 10.0, "svm.gamma_grid": 1.0}
    assert record.selection["config_keys"] == [
        "svm.c_grid",
        "svm.default_c",
        "svm.default_gamma",
        "svm.gamma_grid",
    ]
    assert "val/acc" in record.metrics


def test_a_reruns_config_restores_what_its_trial_replaced(compose_cfg, tmp_path):
    """repro re-runs a record's applied config: the declared probe must come back first."""
    from benchmarks import tuning
    from benchmarks.run import READS

    grid = "+tuning.grids.linear_probe={probe.l2_grid:[1.0e-3,1.0e-1]}"
    cfg = compose_cfg("regime=linear_probe", "tuning.trials=2", grid, "tuning.trial=0")
    applied, facts = tuning.resolve(cfg, READS)
    assert applied.probe.l2_grid == [1.0e-3] and applied.probe.default_l2 == 1.0e-3
    assert facts["declared"] == {
        "probe.default_l2": cfg.probe.default_l2,
        "probe.l2_grid": list(cfg.probe.l2_grid),
    }
    restored = tuning.declared_config(OmegaConf.to_container(applied), facts)
    assert restored.probe == cfg.probe
    assert tuning.resolve(restored, READS)[0] == applied


BAD = {
    "protocol": (["selection=bogus"], "allowed: cv, fixed, holdout, oracle"),
    "protocol key": (["selection.protocol=bogus"], "allowed: fixed, holdout, cv, oracle"),
    "V too large": (["selection=holdout", "selection.per_class=120"], "selection.per_class=120"),
    "k < 2": (["selection=cv", "selection.folds=1"], "selection.folds=1"),
    "unknown key": (["+tuning.grids.svm={svm.c_gridd:[1.0]}"], "svm.c_gridd is not a config key"),
    "unknown regime": (["+tuning.grids.nope={train.lr:[0.1]}"], "tuning.grids.nope names no"),
    "grid size": (["experiment=digits_tuned", "tuning.trials=4"], "has 8 points"),
    "trial range": (["experiment=digits_tuned", "tuning.trial=8"], "tuning.trial=8"),
    "default": (["experiment=digits_tuned", "tuning.trial=0", "svm.default_c=5"], "declared"),
    "grid not a mapping": (["+tuning.grids.svm=3"], "tuning.grids.svm=3 is invalid"),
    "domain key": (["+tuning.grids.svm={data.split_seed:[0,1]}"], "data.split_seed"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_selection_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, case):
    overrides, named = BAD[case]
    proc = run_cli(["regime=svm", *overrides], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regimebench: error: ") and named in lines[0]
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "cache").exists()


def test_a_bad_grid_stops_a_sweep_before_its_first_job(tmp_path):
    # The svm jobs come first and are fine; scratch's declared lr is no point of its grid.
    args = ["-m", "experiment=digits_tuned", "regime=svm,scratch", "tuning.trial=0,1", "seed=0"]
    proc = run_cli([*args, "budget.per_class=2", "train.lr=0.5"], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "tuning.grids.scratch does not contain" in last and "regime=scratch" in last
    assert not list(tmp_path.rglob("record.json")) and not (tmp_path / "multirun").exists()
