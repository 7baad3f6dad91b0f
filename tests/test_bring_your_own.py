"""A user's backbone factory and LightningModule (tests/byo_example.py) run through ``_target_``.

The example is the README's ("Bring your own"); it is imported by its dotted name, the way a
user's package would be, with tests/ on PYTHONPATH.
"""

import csv
import json
import math
import os
from pathlib import Path

import pytest
from helpers import run_cli

from benchmarks.config import ConfigError
from benchmarks.run import execute

TESTS = Path(__file__).parent
FACTORY = "model.factory={_target_:byo_example.small_cnn,width:8}"
MODULE = "train.module={_target_:byo_example.UserClassifier}"
USER_CODE = [FACTORY, "model.name=small_cnn", MODULE, "train.lr=0.01"]


def _user_env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_a_user_module_and_backbone_run_through_the_entry_point(tmp_path):
    args = [
        "regime=finetune",
        *USER_CODE,
        "budget.per_class=5",
        "pretrain.steps=10",
        "pretrain.batch_size=16",
        "train.steps=60",
        "train.batch_size=16",
        "hydra.run.dir=run",
    ]
    run_cli(args, tmp_path, env=_user_env())
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "ok", record["error"]
    assert record["info"]["model_factory"] == "byo_example.small_cnn"
    assert record["info"]["train_module"] == "byo_example.UserClassifier"
    assert record["model"] == "small_cnn"
    m = record["metrics"]
    assert 0.4 < m["test/acc"] <= 1  # 5 classes: chance is 0.2; the example reaches about 0.9
    assert 0 <= m["test/ece"] <= 1
    assert m["source/forgetting"] == pytest.approx(m["source/acc_before"] - m["source/acc_after"])
    # The target fit was the user's: only its training_step logs train/margin.
    with (tmp_path / "run" / "train" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    margins = [float(r["train/margin"]) for r in rows]  # every 10th of 60 steps
    assert len(margins) == 6 and all(math.isfinite(x) for x in margins)
    # The pretraining stage built the factory's backbone: its cache entry is keyed by the node.
    pretrain = record["info"]["pretrain_hash"]
    meta = json.loads((tmp_path / "cache" / "pretrain" / pretrain / "meta.json").read_text())
    assert meta["key"]["model"]["factory"] == {"_target_": "byo_example.small_cnn", "width": 8}


@pytest.mark.parametrize(
    "regime",
    ["scratch", "lp_ft", "incremental_pretrain", "longer_pretrain", "linear_probe"],
)
def test_user_code_runs_in_every_regime_that_builds_a_backbone(regime, compose_cfg, tmp_path):
    cfg = compose_cfg(f"regime={regime}", *USER_CODE, "trainer.log_every_n_steps=2")  # 4 steps
    record = execute(cfg, tmp_path / regime)
    assert record.status == "ok", record.error
    assert record.info["model_factory"] == "byo_example.small_cnn"
    trains = regime != "linear_probe"
    assert ("train_module" in record.info) == trains  # linear_probe fits no target module
    assert 0 <= record.metrics["test/acc"] <= 1
    if trains:  # the user's module wrote its own column
        assert "train/margin" in (tmp_path / regime / "train" / "metrics.csv").read_text()


def test_the_built_in_runs_leave_no_trace_of_user_code(compose_cfg, tmp_path):
    record = execute(compose_cfg("regime=scratch"), tmp_path / "builtin")
    assert "model_factory" not in record.info and "train_module" not in record.info
    assert record.config["model"]["factory"] is None and record.config["train"]["module"] is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.module={_target_:byo_example.NoSuchModule}",
            "train.module._target_='byo_example.NoSuchModule' does not import",
        ),
        (
            "train.module={_target_:byo_example.NoPredict}",
            "train.module._target_='byo_example.NoPredict' does not define predict_logits()",
        ),
        (
            "train.module={_target_:byo_example.small_cnn}",
            "train.module._target_='byo_example.small_cnn' is not a LightningModule class",
        ),
        (
            "model.factory={_target_:no_such_package.build}",
            "model.factory._target_='no_such_package.build' does not import",
        ),
        (
            "model.factory={_target_:byo_example.no_width}",
            "model.factory._target_='byo_example.no_width' built a module without an int "
            "num_features",
        ),
        ("pretrain=timm", "pretrain=timm downloads timm's weights of model.name"),
    ],
)
def test_user_code_that_breaks_the_contract_is_refused(override, message, compose_cfg, tmp_path):
    extra = [FACTORY] if override == "pretrain=timm" else []
    cfg = compose_cfg("regime=finetune", *extra, override)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        execute(cfg, tmp_path / "job")
    assert not (tmp_path / "job").exists()


@pytest.mark.slow
def test_a_module_that_does_not_import_exits_2_in_one_line_writing_nothing(tmp_path):
    args = ["regime=scratch", "train.module={_target_:byo_example.NoSuchModule}"]
    proc = run_cli([*args, "hydra.run.dir=run"], tmp_path, check=False, env=_user_env())
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(
        "regimebench: error: train.module._target_='byo_example.NoSuchModule' does not import ("
    )
    assert not (tmp_path / "run").exists()
