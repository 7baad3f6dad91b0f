"""A failed run exits 1 after writing its record; a sweep runs every job, builds its report,
then exits 1 naming each failed job (basic and parallel launchers)."""

import json

import pytest
from helpers import run_cli

# train.lr=1e9 diverges at the first step: NonFiniteLossError, a ``failed`` record.
TINY = ["regime=scratch", "train.steps=5", "train.batch_size=8", "threads=1"]


@pytest.mark.slow
def test_a_failed_run_exits_1_after_writing_its_record(tmp_path):
    proc = run_cli([*TINY, "train.lr=1e9"], tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    [path] = (tmp_path / "outputs").glob("*/*/record.json")
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and "NonFiniteLossError" in record["error"]
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("regimebench: failed:")]
    assert "NonFiniteLossError" in line and str(path) in line


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel"]])
def test_a_sweep_with_a_failed_job_runs_all_reports_and_exits_1(launcher, tmp_path):
    args = ["-m", *TINY, "train.lr=0.001,1e9", "name=two", *launcher]
    proc = run_cli(args, tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    sweep = tmp_path / "multirun" / "two"
    records = {
        p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/record.json")
    }
    assert sorted(records.values()) == ["failed", "ok"]  # both jobs ran
    assert (sweep / "report" / "index.html").exists()  # and the report was built
    failed = [x for x in proc.stderr.splitlines() if x.startswith("regimebench: failed:")]
    [bad] = [name for name, status in records.items() if status == "failed"]
    assert len(failed) == 1 and bad in failed[0] and "NonFiniteLossError" in failed[0], failed
