"""The validation view of a domain: recipes are chosen on it, so it must never touch test."""

from __future__ import annotations

import json

import torch

from common.records import read_record
from lightning_modules.datasets import held_out, load
from tests.helpers import TINY_STEPS, run_cli

DIGITS = {"dataset": "digits", "test_fraction": 0.3, "split_seed": 0}


def _load(**extra) -> object:
    return load(json.dumps({**DIGITS, **extra}, sort_keys=True), 16, "unused")


def _keys(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.flatten(1)}


def test_validation_is_a_stratified_share_of_train_and_never_test():
    full = _load()
    view = _load(evaluate_on="validation", validation_fraction=0.2)
    assert len(view.x_train) + len(view.x_test) == len(full.x_train)
    train, val, test = _keys(view.x_train), _keys(view.x_test), _keys(full.x_test)
    assert val <= _keys(full.x_train) and not val & train
    assert not (val | train) & test  # the test split is not read at all
    share = torch.bincount(view.y_test, minlength=10) / torch.bincount(full.y_train, minlength=10)
    assert torch.allclose(share, torch.full((10,), 0.2), atol=0.02)  # stratified


def test_the_validation_view_depends_only_on_the_split_seed():
    a = held_out(_load(), 0.2, seed=0)
    b = held_out(_load(), 0.2, seed=0)
    c = held_out(_load(), 0.2, seed=1)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)


def test_a_run_on_the_validation_view_says_so_in_its_record(tmp_path):
    run_cli(["regime=scratch", "data.evaluate_on=validation", *TINY_STEPS], tmp_path)
    (path,) = tmp_path.glob("outputs/**/record.json")
    target = read_record(path).domains["target"]
    assert target["evaluated_on"] == "validation"
    assert (target["n_train"], target["n_test"]) == (503, 124)  # 627 = 503 + 124


def test_an_unknown_evaluation_split_is_one_line_and_exit_2(tmp_path):
    proc = run_cli(["data.evaluate_on=val"], tmp_path, check=False)
    assert proc.returncode == 2
    assert "data.evaluate_on='val' is invalid; allowed: test, validation" in proc.stderr
    assert not list(tmp_path.glob("outputs/**/record.json"))
