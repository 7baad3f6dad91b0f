"""Real-data paths end to end: an ImageFolder sweep, FractalDB pretraining, timm checkpoints."""

import json

import pandas as pd
import pytest
import torch
from helpers import TINY_STEPS, run_cli, write_image_tree
from PIL import Image

from benchmarks.config import ConfigError, validate
from benchmarks.regimes import READS
from benchmarks.run import execute
from lightning_modules.backbones import ModelError, create_backbone, load_checkpoint


def write_tree(root, per_class=12):
    """Three shape classes as PNGs of varying size and colour: a tree nobody made for the suite."""
    gen = torch.Generator().manual_seed(0)
    for c, name in enumerate(("bars", "blobs", "dots")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = 20 + i % 5
            img = torch.rand(3, size, size, generator=gen) * 0.3
            if c == 0:
                img[:, :, ::4] = 1.0
            elif c == 1:
                img[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0.9
            else:
                img[:, ::5, ::5] = 1.0
            array = (img.permute(1, 2, 0).numpy() * 255).astype("uint8")
            Image.fromarray(array).save(root / name / f"img_{i}.png")


@pytest.mark.slow
def test_imagefolder_sweep_with_fractaldb_pretraining(tmp_path):
    write_tree(tmp_path / "shapes")
    fractal = [
        "source.fractal.categories=4",
        "source.fractal.instances=8",
        "source.fractal.size=16",
        "source.fractal.points=600",
        "source.fractal.threshold=0.05",
    ]
    args = ["-m", "data=imagefolder", f"data.root={tmp_path / 'shapes'}", "pretrain=fractaldb"]
    args += ["regime=scratch,finetune,linear_probe", "budget.per_class=1,3", "name=shapes"]
    proc = run_cli([*args, *fractal, *TINY_STEPS], tmp_path)
    sweep = tmp_path / "multirun" / "shapes"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"}, proc.stdout[-2000:]
    rec = next(r for r in records if r["regime"] == "finetune")
    assert rec["classes"]["target"] == ["bars", "blobs", "dots"]
    assert sum(rec["classes"]["target_train_counts"].values()) == 25  # 36 images, 11 to test
    assert rec["classes"]["source"] == [f"fractal_{i}" for i in range(4)]
    assert rec["budget"]["per_class_used"] == {"bars": 1, "blobs": 1, "dots": 1} or rec["budget"][
        "per_class_used"
    ] == {"bars": 3, "blobs": 3, "dots": 3}
    assert rec["config"]["model"]["in_chans"] is None  # followed the RGB target: 3 channels
    assert len(list((tmp_path / "cache" / "fractaldb").glob("*/tensors.pt"))) == 1
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert len(summary) == 6 and (summary["n_seeds"] == 1).all()


@pytest.mark.slow
def test_missing_data_folder_is_one_line(tmp_path):
    proc = run_cli(["data=mnist", f"data.root={tmp_path / 'nowhere'}"], tmp_path, check=False)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert f"no usable files under data.root={tmp_path / 'nowhere'}" in line
    assert "data.download=true" in line
    assert not (tmp_path / "outputs").exists()


def test_timm_checkpoint_from_a_local_file(compose_cfg, tmp_path):
    source = create_backbone("test_resnet", in_chans=1)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.5)
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}},
        tmp_path / "w.pt",
    )
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors"
    )
    for name in ("w.pt", "w.safetensors"):
        target = create_backbone("test_resnet", in_chans=1)
        load_checkpoint(target, tmp_path / name)
        assert all(
            torch.equal(a, b)
            for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True)
        )
    cfg = compose_cfg(
        "pretrain=timm", f"model.checkpoint={tmp_path / 'w.pt'}", "regime=linear_probe"
    )
    record = execute(cfg, tmp_path / "run")
    assert record.status == "ok" and record.info["pretrain_cached"] is False
    assert record.compute["pretrain_samples"] == 0  # weights were loaded, not trained


def test_checkpoint_that_does_not_fit_names_the_first_tensor(tmp_path):
    rgb = create_backbone("test_resnet", in_chans=3)
    torch.save(rgb.state_dict(), tmp_path / "rgb.pt")
    gray = create_backbone("test_resnet", in_chans=1)
    first = next(iter(gray.state_dict()))
    with pytest.raises(
        ModelError, match=rf"tensor '{first}' has shape \(\d+, 3, .*in the file, \(\d+, 1, "
    ):
        load_checkpoint(gray, tmp_path / "rgb.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "rgb.pt").read_bytes()[:500])
    with pytest.raises(ModelError, match="is not a readable checkpoint"):
        load_checkpoint(gray, tmp_path / "cut.pt")
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(gray, tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "experiment", ["cifar10", "stl10", "digits", "digits_forgetting", "golden"]
)
def test_presets_compose_and_validate(experiment, compose_cfg):
    cfg = compose_cfg(f"experiment={experiment}", tiny=False)
    validate(cfg, READS)


def test_imagefolder_without_root_is_named(compose_cfg):
    with pytest.raises(ConfigError, match=r"data.root='unset' is invalid; allowed: the folder"):
        validate(compose_cfg("data=imagefolder"), READS)


def test_streamed_imagefolder_equals_the_in_memory_path(compose_cfg, tmp_path):
    """data.in_memory=false: files decoded by DataLoader workers, the same numbers as in memory."""
    from lightning_modules.streaming import StreamedImages, materialize

    write_tree(tmp_path / "shapes")
    from benchmarks.run import run_context

    base = ["data=imagefolder", f"data.root={tmp_path / 'shapes'}", "budget.per_class=3"]
    base.append("data@source=digits")  # the target streams; the default own_images source would too
    streamed_ctx = run_context(compose_cfg(*base, "data.in_memory=false", "data.workers=2"))
    memory_ctx = run_context(compose_cfg(*base))
    assert isinstance(streamed_ctx.target.x_train, StreamedImages)
    assert torch.equal(materialize(streamed_ctx.target.x_train), memory_ctx.target.x_train)
    for regime in ("scratch", "finetune", "linear_probe", "pixels"):
        got = execute(
            compose_cfg(*base, f"regime={regime}", "data.in_memory=false", "data.workers=2"),
            tmp_path / f"s_{regime}",
        )
        want = execute(compose_cfg(*base, f"regime={regime}"), tmp_path / f"m_{regime}")
        assert got.status == "ok", got.error
        assert got.metrics["test/acc"] == want.metrics["test/acc"], regime


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            ["data=cifar10", "data.root=/x", "data.in_memory=false"],
            r"data.in_memory=False is invalid; allowed: true for cifar10",
        ),
        (
            ["data=imagefolder", "data.root=/x", "data.workers=-1"],
            r"data.workers=-1 is invalid; allowed: an int >= 0",
        ),
        (["data.transform=[rot90,spin]"], r"data.transform='spin' is unknown"),
        (
            ["regime=continual_pretrain", "continued_pretrain.schedule=cyclic"],
            r"continued_pretrain.schedule='cyclic' is invalid",
        ),
        (
            ["data=fractaldb", "data.fractal.instances=200"],
            r"data.fractal.instances=200 is invalid; allowed: 1..100",
        ),
    ],
)
def test_new_options_reject_nonsense_in_one_line(overrides, match, compose_cfg):
    with pytest.raises(ConfigError, match=match) as err:
        validate(compose_cfg(*overrides), READS)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_rgb_folder_run_then_digits_run_share_a_cache_without_crashing(compose_cfg, tmp_path):
    """The fault end to end: one cache folder, an RGB image-folder run, then the README's run."""
    tree = write_image_tree(tmp_path / "rgb", size=24, rgb=True)
    folder = ["data=imagefolder", f"data.root={tree}", "data@source=digits", "budget.per_class=2"]
    first = execute(compose_cfg(*folder, "regime=finetune"), tmp_path / "rgb_run")
    assert first.status == "ok", first.error
    second = execute(compose_cfg("regime=finetune"), tmp_path / "digits_run")
    assert second.status == "ok", second.error  # was: size mismatch for conv1
    assert second.info["pretrain_cached"] is False


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data@source=imagefolder", "source.root=/nope"], "source.root=/nope is not a folder"),
        (["source.classes=[99]"], r"source.classes=\[99\] is invalid"),
        (["data.classes=[99]"], r"data.classes=\[99\] is invalid"),
        (["regime=continual_pretrain", "stream.s1.classes=[99]"], r"stream.s1.classes=\[99\]"),
    ],
)
def test_a_domain_that_cannot_be_built_names_the_key_the_user_set(overrides, match, compose_cfg):
    from benchmarks.run import run_context

    with pytest.raises(ConfigError, match=match) as err:
        run_context(compose_cfg(*overrides))
    message = str(err.value)
    assert "\n" not in message
    if not match.startswith("data."):
        assert "data." not in message  # was: "set data.root" for source.root
