import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY_STEPS, run_cli, synthetic_record

from benchmarks.run import config_hash
from common.cache import cached, stable_hash
from common.records import SCHEMA_VERSION, RunRecord, read_record, write_record

ROOT = Path(__file__).resolve().parents[1]


def _rec(**fields) -> RunRecord:
    return RunRecord.from_dict(synthetic_record("scratch", 1, 0, 0.5, **fields))


def test_write_is_atomic_and_readable(tmp_path):
    path = tmp_path / "run" / "record.json"
    write_record(path, _rec())
    assert read_record(path).metrics["test/acc"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_failed_write_leaves_old_record(tmp_path):
    path = tmp_path / "record.json"
    write_record(path, _rec())
    with pytest.raises(TypeError):
        write_record(path, _rec(bad=object()))
    assert read_record(path).status == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_read_rejects_foreign_json(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a regimebench record"):
        read_record(path)


def test_round_trip_keeps_every_key_and_unknown_ones(tmp_path):
    data = synthetic_record("finetune", 5, 2, 0.75, forgetting=0.1, from_a_fork={"x": [1, 2]})
    record = RunRecord.from_dict(data)
    assert record.extra == {"from_a_fork": {"x": [1, 2]}}
    assert record.subset_seed is None and record.reads is None  # not in this older record
    write_record(tmp_path / "record.json", record)
    again = read_record(tmp_path / "record.json")
    assert again == record
    assert json.loads(again.to_json()) == json.loads(record.to_json())
    assert set(json.loads(record.to_json())) >= set(data)


def test_version_1_is_upgraded_and_a_newer_one_refused(tmp_path):
    old = synthetic_record("finetune", 1, 0, 0.5, forgetting=0.1) | {"schema_version": 1}
    old.pop("definitions", None)
    upgraded = RunRecord.from_json(json.dumps(old))
    assert upgraded.schema_version == SCHEMA_VERSION
    assert set(upgraded.definitions) == set(old["metrics"])
    with pytest.raises(ValueError, match="schema_version 3 is not one"):
        RunRecord.from_dict(old | {"schema_version": SCHEMA_VERSION + 1})
    edited = dict(old)
    del edited["config"]
    with pytest.raises(KeyError, match="record lacks config"):
        RunRecord.from_dict(edited)


_READ_WITHOUT_TORCH = """
import sys
from pathlib import Path
from common.records import finished_record, read_record
import reports.build, reports.collect, reports.tables
record = read_record(Path(sys.argv[1]))
assert finished_record(Path(sys.argv[1])) == record and record.metrics["test/acc"] >= 0
runs, records, bad = reports.collect.collect([Path(sys.argv[1]).parent])
varied, fixed = reports.tables.config_split(records)
assert bad == [] and len(runs) == 1 and fixed, (bad, runs)
heavy = sorted(m for m in ("torch", "lightning", "timm", "benchmarks") if m in sys.modules)
print("loaded:", heavy)
"""


@pytest.mark.slow
def test_reading_a_real_record_does_not_import_torch(tmp_path):
    """A record written by a real tiny run is read, collected and tabled without torch."""
    run_cli(["regime=scratch", "budget.per_class=1", *TINY_STEPS, "hydra.run.dir=run"], tmp_path)
    path = tmp_path / "run" / "record.json"
    assert read_record(path).ok
    proc = subprocess.run(
        [sys.executable, "-c", _READ_WITHOUT_TORCH, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "loaded: []"


def test_config_hash_tracks_what_determines_a_run(compose_cfg, tmp_path):
    base = config_hash(compose_cfg())
    assert base == config_hash(compose_cfg())
    assert base != config_hash(compose_cfg("seed=1"))
    assert base != config_hash(compose_cfg("threads=1"))
    assert base != config_hash(compose_cfg("budget.per_class=2"))
    assert base == config_hash(compose_cfg(f"paths.cache_dir={tmp_path / 'elsewhere'}"))
    assert base == config_hash(compose_cfg("trainer.enable_progress_bar=true"))


def test_cache_builds_once_and_rebuilds_a_corrupt_entry(tmp_path):
    import torch

    calls = []

    def build():
        calls.append(1)
        return {"w": torch.ones(3)}, {"note": "x"}

    t1, m1, hit1 = cached(tmp_path, "kind", {"a": 1}, build)
    t2, m2, hit2 = cached(tmp_path, "kind", {"a": 1}, build)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    assert torch.equal(t1["w"], t2["w"]) and m2["note"] == "x"
    cached(tmp_path, "kind", {"a": 2}, build)
    assert len(calls) == 2
    entry = tmp_path / "kind" / stable_hash({"a": 1}) / "tensors.pt"
    entry.write_bytes(entry.read_bytes()[:20])  # truncate
    _, _, hit3 = cached(tmp_path, "kind", {"a": 1}, build)
    assert not hit3 and len(calls) == 3


def test_concurrent_builders_build_once(tmp_path):
    """Two processes that need the same entry: one builds, the other waits and loads it."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        hits = pool.starmap(_build_slowly, [(str(tmp_path), i) for i in range(2)])
    assert sorted(hits) == [False, True]


def _build_slowly(cache_dir, _):
    import time

    import torch

    def build():
        time.sleep(1.0)
        return {"w": torch.ones(2)}, {}

    return cached(cache_dir, "kind", {"same": True}, build)[2]
