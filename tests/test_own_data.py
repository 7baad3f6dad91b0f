"""Own data: an image folder pretrains on its own unlabelled train images by default, and the
record states each domain's native and used image size and channels."""

import pytest
import torch
from helpers import write_image_tree

from benchmarks.config import ConfigError, validate
from benchmarks.inputs import ssl_images
from benchmarks.regimes import READS
from benchmarks.run import execute, run_context


def test_an_image_folder_target_pretrains_on_its_own_train_images(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    base = ["data=imagefolder", f"data.root={tree}", "budget.per_class=2"]
    cfg = compose_cfg(*base, "data.split_seed=3", "data.test_fraction=0.5")
    assert cfg.source.name == "own_images" and cfg.source.dataset == "imagefolder"
    assert (cfg.source.root, cfg.source.split_seed, cfg.source.test_fraction) == (str(tree), 3, 0.5)
    ctx = run_context(cfg)
    # SimCLR's images are exactly the target's train split: never a target test image
    assert torch.equal(ssl_images(ctx.source), ctx.target.x_train)
    test_rows = {tuple(x.flatten().tolist()) for x in ctx.target.x_test}
    assert not any(tuple(x.flatten().tolist()) in test_rows for x in ssl_images(ctx.source))
    # an explicit source still wins, on either side of data=, and pretrain=fractaldb's too
    assert compose_cfg(*base, "data@source=digits").source.name == "digits"
    assert compose_cfg("data@source=digits", *base).source.name == "digits"
    assert compose_cfg(*base, "pretrain=fractaldb").source.name == "fractaldb"
    # continued pretraining on the very images of the source is refused, in one line
    with pytest.raises(ConfigError, match="a target domain other than the source"):
        validate(compose_cfg(*base, "regime=incremental_pretrain"), READS)
    # two different folders are different images: continued pretraining may run
    other = write_image_tree(tmp_path / "other")
    elsewhere = ["data@source=imagefolder", f"source.root={other}"]
    validate(compose_cfg(*base, "regime=incremental_pretrain", *elsewhere), READS)


def test_the_record_states_native_and_used_size_and_channels(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "rgb", size=24, rgb=True)
    cfg = compose_cfg(
        "data=imagefolder", f"data.root={tree}", "regime=pixels", "budget.per_class=2"
    )
    record = execute(cfg, tmp_path / "run")
    assert record.status == "ok", record.error
    target, source = record.domains["target"], record.domains["source"]
    assert (target["native_size"], target["native_channels"]) == ([24, 24], 3)
    assert (target["used_size"], target["used_channels"]) == ([16, 16], 3)  # test_resnet: 16 px
    assert target["classes"] == ["ants", "bees"] and target["dataset"] == "imagefolder"
    assert (target["n_train"], target["n_test"], target["n_unlabeled"]) == (8, 4, 0)
    assert target["name"] == "imagefolder" and target["transform"] == "none"
    assert source["name"] == "own_images" and source["n_train"] == 8
    digits = execute(compose_cfg("regime=pixels"), tmp_path / "digits").domains["source"]
    assert (digits["native_size"], digits["native_channels"]) == ([8, 8], 1)
    assert (digits["used_size"], digits["used_channels"]) == ([16, 16], 1)
