"""Input normalisation comes from the data or the weights, and digits keep their constants."""

import pytest
import timm
import torch
from helpers import write_image_tree
from timm.models import get_pretrained_cfg

from benchmarks.inputs import domain
from benchmarks.run import execute
from lightning_modules.backbones import create_backbone
from lightning_modules.domains import DomainError
from lightning_modules.normalization import normalize, timm_stats

DIGITS = ["digits", "digits_0to4", "digits_5to9", "digits_5to9_rot90", "digits_invert"]
DIGITS += ["digits_permute", "digits_rot90"]


@pytest.mark.parametrize("name", DIGITS)
def test_digits_domains_resolve_to_the_constants_of_before(compose_cfg, name):
    cfg = compose_cfg(f"data={name}")
    stats = domain(cfg.data, cfg).stats
    assert (stats.mean, stats.std) == ((0.30,), (0.40,))
    assert stats.origin == f"declared by data {name}"
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(normalize(x, stats), (x - 0.30) / 0.40)  # bit for bit, as before


def _per_channel(x):
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    return flat.mean(1), flat.std(1, unbiased=False)


def test_undeclared_stats_are_computed_from_the_train_images(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "tree", rgb=True, per_class=6)
    cfg = compose_cfg("data=imagefolder", f"data.root={tree}")
    dom = domain(cfg.data, cfg)
    mean, std = _per_channel(dom.x_train)  # the train split only, as the model sees it
    assert dom.stats.mean == pytest.approx(mean.tolist(), abs=1e-4)
    assert dom.stats.std == pytest.approx(std.tolist(), abs=1e-4)
    assert len(dom.stats.mean) == 3 and len(set(dom.stats.mean)) > 1  # per channel
    assert dom.stats.origin.startswith(f"computed from {len(dom.x_train)} train images")
    test_mean, _ = _per_channel(dom.x_test)
    assert test_mean.tolist() != pytest.approx(mean.tolist(), abs=1e-4)  # not the test images


def test_declared_stats_are_used_and_ill_fitting_ones_are_not(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "tree", rgb=True, per_class=6)
    declared = ["data.normalize.mean=[0.1,0.2,0.3]", "data.normalize.std=[0.5,0.6,0.7]"]
    cfg = compose_cfg("data=imagefolder", f"data.root={tree}", *declared)
    stats = domain(cfg.data, cfg).stats
    assert (stats.mean, stats.std) == ((0.1, 0.2, 0.3), (0.5, 0.6, 0.7))
    x = torch.rand(2, 3, 4, 4)
    want = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.5, 0.6, 0.7]
    ).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, stats), want)
    gray = compose_cfg("data=imagefolder", f"data.root={tree}", *declared, "model.in_chans=1")
    stats = domain(gray.data, gray).stats  # RGB values for images converted to gray
    assert len(stats.mean) == 1 and "do not fit 1 channels" in stats.origin


def test_timm_stats_are_the_pretrained_cfg_s(tmp_path):
    imagenet = get_pretrained_cfg("resnet18")
    rgb = timm_stats(create_backbone("resnet18", in_chans=3), "resnet18")
    assert (rgb.mean, rgb.std) == (tuple(imagenet.mean), tuple(imagenet.std))
    gray = timm_stats(create_backbone("resnet18", in_chans=1), "resnet18")
    assert gray.mean == pytest.approx((sum(imagenet.mean) / 3,))  # summed first layer: average


def test_runs_record_the_stats_of_what_their_backbone_was_first_trained_on(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "tree", rgb=True, per_class=6)
    target = ["data=imagefolder", f"data.root={tree}", "budget.per_class=2"]
    scratch = execute(compose_cfg(*target, "regime=scratch"), tmp_path / "scratch")
    cfg = compose_cfg(*target)
    computed = domain(cfg.data, cfg).stats.facts()
    assert scratch.info["input_stats"] == computed  # the target's own statistics
    finetune = execute(
        compose_cfg(*target, "regime=finetune", "data@source=digits"), tmp_path / "finetune"
    )
    assert finetune.status == "ok", finetune.error
    stats = finetune.info["input_stats"]  # pretrained on digits: keeps digits' statistics
    assert (stats["mean"], stats["std"], stats["from"]) == ([0.3], [0.4], "declared by data digits")
    torch.save(create_backbone("test_resnet", in_chans=1).state_dict(), tmp_path / "w.pt")
    weights = ["pretrain=timm", f"model.checkpoint={tmp_path / 'w.pt'}", "regime=linear_probe"]
    probe = execute(compose_cfg(*weights), tmp_path / "probe")  # offline: a local file
    assert probe.status == "ok", probe.error
    want = timm.models.get_pretrained_cfg("test_resnet")
    assert probe.info["input_stats"]["mean"] == pytest.approx([sum(want.mean) / 3])
    assert probe.info["input_stats"]["from"] == "timm pretrained_cfg of test_resnet"


def test_half_a_declaration_is_refused_in_one_line(compose_cfg, tmp_path):
    tree = write_image_tree(tmp_path / "tree", rgb=True, per_class=6)
    cfg = compose_cfg("data=imagefolder", f"data.root={tree}", "data.normalize.mean=[0.5]")
    with pytest.raises(DomainError, match=r"^data.normalize=.* is invalid; set mean and std"):
        domain(cfg.data, cfg)
