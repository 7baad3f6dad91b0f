"""A sweep killed with SIGKILL at random moments, then re-run, equals an uninterrupted one."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent
SWEEP = [
    "-m",
    "regime=pixels,linear_probe,finetune,incremental_pretrain",
    "budget.per_class=1,5",
    "seed=0",
    "pretrain.steps=60",
    "pretrain.batch_size=32",
]
METRICS = ["test/acc", "test/f1_macro", "test/ece", "source/acc_before", "source/acc_after"]


def _sweep(workdir: Path, kill_after: float | None = None) -> None:
    env = {**os.environ, "REGIMEBENCH_CACHE": str(workdir / "cache")}
    proc = subprocess.Popen(
        [str(BIN / "regimebench"), *SWEEP, "hydra.sweep.dir=sweep"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if kill_after is None:
        assert proc.wait(timeout=600) == 0
        return
    time.sleep(kill_after)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _runs(workdir: Path) -> pd.DataFrame:
    runs = pd.read_csv(workdir / "sweep" / "report" / "runs.csv")
    runs["job"] = runs["run_dir"].map(lambda p: Path(p).name)
    return runs.set_index("job").sort_index()[["status", *METRICS]]


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_records(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    _sweep(clean)
    finished_after_kill = []
    for moment in sorted(random.Random(7).sample([4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0], 3)):
        _sweep(killed, kill_after=moment)
        finished_after_kill.append(len(list((killed / "sweep").glob("*/record.json"))))
    assert finished_after_kill[0] < 8  # the kills really interrupted the sweep
    _sweep(killed)
    pd.testing.assert_frame_equal(_runs(clean), _runs(killed))
    assert len(_runs(killed)) == 8
    leftovers = [p for p in (killed / "sweep").rglob(".record.*")]
    leftovers += [p for p in (killed / "cache").rglob(".*") if not p.name.endswith(".lock")]
    assert leftovers == []
