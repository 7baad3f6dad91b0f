"""A run's record must not depend on whether its cached stages were built or loaded."""

import json

import pytest
from helpers import TINY_STEPS, run_cli

TINY_CONTINUED = ["continued_pretrain.steps=5", "continued_pretrain.batch_size=16"]


def _metrics(tmp_path, regime: str, out: str) -> dict:
    args = [f"regime={regime}", "budget.per_class=1", *TINY_STEPS, *TINY_CONTINUED]
    run_cli([*args, f"hydra.run.dir={out}"], tmp_path)
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
