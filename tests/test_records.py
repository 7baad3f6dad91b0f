import json

import pytest

from benchmarks.run import config_hash
from common.cache import cached, stable_hash
from common.records import read_record, write_record


def test_write_is_atomic_and_readable(tmp_path):
    path = tmp_path / "run" / "record.json"
    write_record(path, {"schema_version": 1, "status": "ok", "metrics": {"test/acc": 0.5}})
    assert read_record(path)["metrics"]["test/acc"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_failed_write_leaves_old_record(tmp_path):
    path = tmp_path / "record.json"
    write_record(path, {"schema_version": 1, "status": "ok"})
    with pytest.raises(TypeError):
        write_record(path, {"schema_version": 1, "status": "ok", "bad": object()})
    assert read_record(path)["status"] == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_read_rejects_foreign_json(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a regimebench record"):
        read_record(path)


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
