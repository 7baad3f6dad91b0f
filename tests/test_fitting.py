"""Fits through lightning.Trainer: per-fit training curves, user callbacks, resume after SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks import keys
from benchmarks.run import config_hash, execute, run_context
from common.cache import stable_hash
from lightning_modules.optim import warmup_cosine

BIN = Path(sys.executable).parent


def _learning_rates(train: dict) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=train["lr"])
    sched = warmup_cosine(opt, train["steps"], train["warmup_fraction"])
    rates = []
    for _ in range(train["steps"]):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_each_fit_writes_a_csv_row_per_logged_step(compose_cfg, tmp_path):
    every = ["trainer.log_every_n_steps=5", "pretrain.steps=10", "train.steps=20"]
    job = tmp_path / "job"
    record = execute(compose_cfg("regime=finetune", *every), job)
    assert record.status == "ok", record.error
    train = pd.read_csv(job / "train" / "metrics.csv")
    assert train["step"].tolist() == [4, 9, 14, 19]  # one row per 5 optimiser steps
    assert {"train/loss", "train/lr", "train/head_lr"} <= set(train.columns)
    assert train["train/loss"].notna().all() and (train["train/loss"] > 0).all()
    schedule = _learning_rates(record.config["train"])  # the rate each step trained with
    assert train["train/lr"].tolist() == pytest.approx([schedule[s] for s in train["step"]])
    pretrain = pd.read_csv(job / "pretrain" / "metrics.csv")  # this run built the stage
    assert pretrain["step"].tolist() == [4, 9]
    assert pretrain["train/loss"].notna().all()
    again = execute(
        compose_cfg("regime=finetune", "seed=0", "budget.per_class=1", *every), job / "b"
    )
    assert again.info["pretrain_cached"] is True
    assert not (job / "b" / "pretrain").exists()  # a cached stage logs where it was built
    assert (job / "b" / "train" / "metrics.csv").exists()


def test_a_callback_named_in_config_runs_in_every_fit(compose_cfg, tmp_path):
    monitor = "+trainer.callbacks.lr={_target_:lightning.pytorch.callbacks.LearningRateMonitor}"
    cfg = compose_cfg("regime=scratch", "train.steps=10", monitor)
    record = execute(cfg, tmp_path)
    assert record.status == "ok", record.error
    train = pd.read_csv(tmp_path / "train" / "metrics.csv")
    lightning_lr = train.filter(like="lr-AdamW").dropna(how="all")  # the callback's own column
    assert len(lightning_lr) == 1
    ours = train["train/lr"].dropna().to_numpy()
    assert lightning_lr.iloc[:, 0].to_numpy() == pytest.approx(ours)


def test_logging_and_checkpoints_change_no_hash_and_a_callback_does(compose_cfg):
    def hashes(*overrides):
        cfg = compose_cfg(*overrides)
        return config_hash(cfg), stable_hash(keys.pretrain(run_context(cfg)))

    base = hashes()
    assert base == hashes("trainer.checkpoint_every=10", "trainer.log_every_n_steps=1")
    assert base == hashes("trainer.logger={}", "trainer.enable_model_summary=true")
    swa = "+trainer.callbacks.swa={_target_:lightning.pytorch.callbacks.StochasticWeightAveraging,"
    changed = hashes(swa + "swa_lrs:0.01}")  # a callback may change the weights
    assert changed[0] != base[0] and changed[1] != base[1]


STAGE = ["regime=linear_probe", "budget.per_class=1", "pretrain.steps=120"]
STAGE += ["pretrain.batch_size=16", "name=resume"]


def _stage(workdir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "REGIMEBENCH_CACHE": str(workdir / "cache")}
    return subprocess.Popen(
        [str(BIN / "regimebench"), *STAGE, *extra],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _entry(workdir: Path) -> dict[str, torch.Tensor]:
    [path] = (workdir / "cache" / "pretrain").glob("*/tensors.pt")
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_a_stage_killed_after_a_checkpoint_resumes_to_the_same_weights(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    assert _stage(clean).wait(timeout=600) == 0  # no checkpoints at all
    proc = _stage(killed, "trainer.checkpoint_every=20")
    checkpoints = killed / "cache" / "checkpoints"
    while not list(checkpoints.glob("pretrain-*/step=*.ckpt")):
        assert proc.poll() is None, "the stage ended before its first checkpoint"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    [saved] = checkpoints.glob("pretrain-*/step=*.ckpt")
    step = int(saved.stem.split("=")[1])
    assert step < 120  # killed mid-way
    assert not list((killed / "cache").glob("pretrain/*/tensors.pt"))  # no entry of a half stage
    assert _stage(killed, "trainer.checkpoint_every=20").wait(timeout=600) == 0
    *_, resumed = sorted((killed / "outputs" / "resume").iterdir())  # the latest run's folder
    assert pd.read_csv(resumed / "pretrain" / "metrics.csv")["step"].min() > step  # not from 0
    want, got = _entry(clean), _entry(killed)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)  # bit for bit
    assert not list(checkpoints.glob("pretrain-*"))  # removed once the entry was stored
