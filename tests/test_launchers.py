"""Beyond one process: Hydra's joblib and submitit launchers, and Lightning DDP on two CPUs."""

import json
import os
from pathlib import Path

import pytest
from helpers import TINY_STEPS, run_cli
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from joblib import Parallel, delayed

from benchmarks.config import CONF_DIR

# Three jobs so that a two-worker joblib pool reuses a worker; one thread per job (the trap:
# joblib gives each worker one thread, and the thread count is part of a run's config hash).
JOBS = ["-m", "regime=scratch,finetune,linear_probe", "budget.per_class=2", "threads=1", "name=l"]
METRICS = ("test/acc", "test/f1_macro", "test/ece")


def _metrics(workdir: Path) -> dict[str, dict[str, float]]:
    records = [json.loads(p.read_text()) for p in (workdir / "multirun/l").glob("*/record.json")]
    assert {r["status"] for r in records} == {"ok"}
    return {r["regime"]: {k: r["metrics"][k] for k in METRICS} for r in records}


@pytest.fixture(scope="module")
def basic(tmp_path_factory) -> dict[str, dict[str, float]]:
    """The same jobs through Hydra's basic launcher, in one process."""
    workdir = tmp_path_factory.mktemp("basic")
    run_cli([*JOBS, *TINY_STEPS], workdir)
    return _metrics(workdir)


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=parallel"],  # joblib, prewarmed workers, configs composed once
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
    ],
)
def test_parallel_launchers_give_the_records_of_one_process(launcher, basic, tmp_path):
    proc = run_cli([*JOBS, *TINY_STEPS, *launcher], tmp_path)
    assert len(basic) == 3
    assert _metrics(tmp_path) == basic  # bit for bit: no state leaks between reused workers
    assert "report: multirun/l/report/index.html" in proc.stdout
    # the two pretrained regimes ran at once and built their shared backbone once (file lock)
    records = [json.loads(p.read_text()) for p in (tmp_path / "multirun/l").glob("*/record.json")]
    built = [r["info"]["pretrain_cached"] for r in records if "pretrain_cached" in r["info"]]
    assert sorted(built) == [False, True]


def test_prewarm_starts_the_worker_pool_that_the_jobs_then_run_on():
    """The prewarm only pays off if joblib reuses its pool for the launch (same arguments)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=parallel"], return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)  # as Hydra builds it, all joblib arguments
    assert type(launcher).__name__ == "ParallelLauncher"
    launcher.task_function = json.dumps  # prewarm imports the task's module in each worker
    launcher.prewarm()
    warm = sorted(launcher._warming)  # noqa: SLF001
    assert len(warm) == 2
    ran_on = Parallel(**launcher._parallel_args())(delayed(os.getpid)() for _ in range(6))  # noqa: SLF001
    assert set(ran_on) <= set(warm)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_and_returns_the_weights(tmp_path):
    args = ["trainer=ddp", "trainer.accelerator=cpu", "regime=scratch", "budget.per_class=all"]
    args += ["train.steps=30", "train.batch_size=32", "threads=1"]
    proc = run_cli(args, tmp_path)
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr
    [path] = (tmp_path / "outputs").rglob("record.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    assert record["config"]["trainer"]["strategy"] == "ddp_spawn"
    # 5 classes: an untrained model sits near 0.2; weights trained in the workers came back
    assert record["metrics"]["test/acc"] > 0.45
