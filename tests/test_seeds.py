"""Factorised seeds: subset_seed picks the labelled examples, train_seed everything trained."""

import pytest
import torch

from benchmarks.config import ConfigError
from benchmarks.run import config_hash, execute, run_context

SMALL_GRID = "probe.l2_grid=[0.01,1.0]"  # the source probe's CV is most of a tiny run's time


def test_train_seed_keeps_the_subset_and_changes_training(compose_cfg, tmp_path):
    a, b = (compose_cfg("regime=finetune", SMALL_GRID, f"train_seed={s}") for s in (0, 1))
    assert torch.equal(run_context(a).labelled, run_context(b).labelled)
    ra, rb = execute(a, tmp_path / "a"), execute(b, tmp_path / "b")
    assert ra.info["pretrain_hash"] != rb.info["pretrain_hash"]  # pretraining re-seeded
    assert ra.metrics["test/ece"] != rb.metrics["test/ece"]
    assert (ra.subset_seed, ra.train_seed) == (0, 0)
    assert (rb.subset_seed, rb.train_seed) == (0, 1)


def test_subset_seed_changes_the_subset_and_reuses_the_pretraining(compose_cfg, tmp_path):
    a, b = (compose_cfg("regime=linear_probe", SMALL_GRID, f"subset_seed={s}") for s in (0, 1))
    assert not torch.equal(run_context(a).labelled, run_context(b).labelled)
    ra, rb = execute(a, tmp_path / "a"), execute(b, tmp_path / "b")
    assert ra.info["pretrain_cached"] is False
    assert rb.info["pretrain_cached"] is True  # one pretraining per train seed
    assert ra.info["pretrain_hash"] == rb.info["pretrain_hash"]
    assert ra.config_hash != rb.config_hash


def test_seed_is_shorthand_for_both(compose_cfg, tmp_path):
    short = compose_cfg("regime=scratch", "seed=3")
    both = compose_cfg("regime=scratch", "subset_seed=3", "train_seed=3")
    assert (short.subset_seed, short.train_seed) == (3, 3)
    assert config_hash(short) == config_hash(both)
    rs, rb = execute(short, tmp_path / "s"), execute(both, tmp_path / "b")
    assert rs.metrics == rb.metrics
    assert (rs.seed, rs.subset_seed, rs.train_seed) == (3, 3, 3)


@pytest.mark.parametrize("key", ["seed", "subset_seed", "train_seed"])
def test_a_negative_seed_is_refused(key, compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=f"^{key}=-1 is invalid; allowed: an int >= 0"):
        execute(compose_cfg("regime=pixels", f"{key}=-1"), tmp_path / "job")
