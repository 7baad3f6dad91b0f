"""A run's record must not depend on whether its cached stages were built or loaded."""

import json

import pytest
from helpers import TINY_STEPS, run_cli

TINY_CONTINUED = ["continued_pretrain.steps=5", "continued_pretrain.batch_size=16"]
TINY = ["budget.per_class=1", *TINY_STEPS, *TINY_CONTINUED]


def _metrics(tmp_path, regime: str, out: str) -> dict:
    run_cli([f"regime={regime}", *TINY, f"hydra.run.dir={out}"], tmp_path)
    return json.loads((tmp_path / out / "record.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("regime", ["incremental_pretrain", "finetune"])
def test_a_cache_hit_gives_the_same_record_as_the_miss_that_built_it(tmp_path, regime):
    built = _metrics(tmp_path, regime, "first")
    loaded = _metrics(tmp_path, regime, "second")  # same cache folder: every stage a hit
    stages = [k for k in built["info"] if k.endswith("_cached")]
    assert stages and not any(built["info"][k] for k in stages)
    assert all(loaded["info"][k] for k in stages)
    assert loaded["metrics"] == built["metrics"]  # exactly, every digit
    assert loaded["info"].get("probe_l2") == built["info"].get("probe_l2")


@pytest.mark.slow
def test_longer_pretrain_gives_one_record_on_every_path_through_its_two_cached_stages(tmp_path):
    """Built alone, after another regime in the same process, and loaded: one record.

    The golden sweep's longer_pretrain runs after linear_probe and incremental_pretrain in one
    process: its pretrained backbone is a hit (another regime built it) and its continued one a
    miss. Before stages handed on a restored backbone, that miss gave the channels-last module
    the build had trained, and the golden file kept test/ece 0.22413 where a hit gives 0.22695.
    """
    alone = tmp_path / "alone"
    alone.mkdir()
    fresh = _metrics(alone, "longer_pretrain", "fresh")  # pretrain and continued built here
    loaded = _metrics(alone, "longer_pretrain", "loaded")  # both from the cache
    # one process, Hydra's basic launcher as the golden sweep: finetune builds the pretrained
    # backbone, then longer_pretrain loads it and builds its continued backbone
    jobs = ["-m", "regime=finetune,longer_pretrain", "name=mixed", *TINY]
    run_cli(jobs, tmp_path)
    path = next((tmp_path / "multirun/mixed").glob("*regime=longer_pretrain*/record.json"))
    mixed = json.loads(path.read_text())
    cached = ("pretrain_cached", "continued_pretrain_cached")
    assert [fresh["info"][k] for k in cached] == [False, False]
    assert [loaded["info"][k] for k in cached] == [True, True]
    assert [mixed["info"][k] for k in cached] == [True, False]
    assert mixed["metrics"] == fresh["metrics"]  # exactly, every digit
    assert loaded["metrics"] == fresh["metrics"]
