"""Every loader on tiny data the test writes in the dataset's own on-disk format, read through
the real torchvision class; ImageFolder on PNGs; FractalDB generation and its filter."""

import pickle
import struct

import numpy as np
import pytest
import torch
from helpers import domain_spec
from PIL import Image

from lightning_modules import fractaldb
from lightning_modules.datasets import LOADERS
from lightning_modules.domains import build_domain

RNG = np.random.default_rng(0)


def _images(n, *shape):
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _labels(n, k):
    return np.arange(n) % k  # every class present


def write_mnist(root, folder="MNIST", n=(20, 10)):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, count in zip(("train", "t10k"), n, strict=True):
        images = _images(count, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + _labels(count, 10).astype(np.uint8).tobytes()
        )


def write_cifar(root, hundred=False, n=(20, 10)):
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key, k = ("fine_labels", 100) if hundred else ("labels", 10)
    batches = (
        ["train", "test"] if hundred else [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    )
    for name in batches:
        count = n[1] if "test" in name else n[0] // (len(batches) - 1)  # CIFAR-10: 5 batches
        first = 0 if "test" in name else count * batches.index(name)
        entry = {
            "data": _images(count, 3 * 32 * 32),
            key: _labels(first + count, k)[first:].tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    meta_key, meta_name = (
        ("fine_label_names", "meta") if hundred else ("label_names", "batches.meta")
    )
    (folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"c{i}" for i in range(k)]}))


def write_svhn(root, n=(20, 10)):
    from scipy.io import savemat

    for split, count in zip(("train", "test"), n, strict=True):
        y = _labels(count, 10)[:, None].copy()
        y[y == 0] = 10  # SVHN stores the digit 0 as label 10
        savemat(
            root / f"{split}_32x32.mat",
            {"X": _images(count, 32, 32, 3).transpose(1, 2, 3, 0), "y": y},
        )


def write_stl10(root, n=(20, 10, 30)):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for split, count in zip(("train", "test", "unlabeled"), n, strict=True):
        (folder / f"{split}_X.bin").write_bytes(_images(count, 3, 96, 96).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(
                (_labels(count, 10) + 1).astype(np.uint8).tobytes()
            )
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))


@pytest.fixture
def no_checksums(monkeypatch):
    """The tiny files are not the published ones; only torchvision's md5 check is bypassed."""
    import torchvision.datasets as tvd

    for cls in (tvd.CIFAR10, tvd.CIFAR100, tvd.SVHN, tvd.STL10):
        monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *args, **kwargs: True)


@pytest.mark.parametrize(
    ("dataset", "writer", "shape", "classes"),
    [
        ("mnist", write_mnist, (1, 28, 28), 10),
        ("fashion_mnist", lambda r: write_mnist(r, "FashionMNIST"), (1, 28, 28), 10),
        ("kmnist", lambda r: write_mnist(r, "KMNIST"), (1, 28, 28), 10),
        ("cifar10", write_cifar, (3, 32, 32), 10),
        ("cifar100", lambda r: write_cifar(r, hundred=True), (3, 32, 32), 100),
        ("svhn", write_svhn, (3, 32, 32), 10),
        ("stl10", write_stl10, (3, 96, 96), 10),
    ],
)
def test_torchvision_loaders_read_their_own_format(
    dataset, writer, shape, classes, tmp_path, no_checksums
):
    writer(tmp_path)
    raw = LOADERS[dataset]({"dataset": dataset, "root": str(tmp_path)}, 32, str(tmp_path))
    assert raw.x_train.shape == (20, *shape) and raw.x_test.shape == (10, *shape)
    assert raw.x_train.dtype == torch.float32 and raw.x_train.min() >= 0 and raw.x_train.max() <= 1
    assert len(raw.class_names) == classes
    assert raw.y_train.tolist() == _labels(20, classes).tolist()


def test_stl10_unlabeled_split_joins_for_self_supervised_stages(tmp_path, no_checksums):
    write_stl10(tmp_path)
    dom = build_domain(
        "stl", domain_spec("stl10", root=str(tmp_path), unlabeled=True), 32, 3, str(tmp_path)
    )
    assert dom.x_unlabeled.shape == (30, 3, 32, 32) and dom.x_train.shape == (20, 3, 32, 32)


def write_folder(root, classes=("cat", "dog", "owl"), per_class=6, size=(20, 14), mode="RGB"):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = 40 * c + i
            Image.new(mode, size, (value,) * 3 if mode == "RGB" else value).save(
                root / name / f"{i}.png"
            )


def test_imagefolder_reads_pngs_with_a_seeded_split_or_a_test_tree(tmp_path):
    write_folder(tmp_path / "train")
    dom = build_domain(
        "f", domain_spec("imagefolder", root=str(tmp_path / "train")), 16, 3, str(tmp_path)
    )
    assert dom.class_names == ("cat", "dog", "owl")
    assert dom.x_train.shape[1:] == (3, 16, 16) and len(dom.y_train) + len(dom.y_test) == 18
    assert sorted(torch.bincount(dom.y_test).tolist()) == [2, 2, 2]  # stratified 30%
    write_folder(tmp_path / "test", per_class=2, mode="L")
    spec = domain_spec(
        "imagefolder", root=str(tmp_path / "train"), test_root=str(tmp_path / "test")
    )
    split = build_domain("g", spec, 16, 1, str(tmp_path))
    assert len(split.y_train) == 18 and len(split.y_test) == 6 and split.x_test.shape[1] == 1


def test_fractal_generation_is_deterministic_and_filtered(tmp_path):
    a, ya = fractaldb.generate(
        categories=3, instances=8, size=24, points=1500, threshold=0.1, seed=5
    )
    b, yb = fractaldb.generate(
        categories=3, instances=8, size=24, points=1500, threshold=0.1, seed=5
    )
    assert a.shape == (24, 24, 24) and np.array_equal(a, b) and np.array_equal(ya, yb)
    assert np.bincount(ya).tolist() == [8, 8, 8]
    # the filter: kept systems cover more of the canvas than unfiltered random ones
    kept, tries = fractaldb.find_categories(4, 0.3, 24, 1500, seed=5)
    assert tries > 4  # some candidates were rejected
    rng = np.random.default_rng(11)
    unfiltered = [fractaldb.random_system(rng) for _ in range(60)]

    def mean_rate(systems):
        pts = fractaldb.chaos_game(systems, 1500, 3)
        return np.mean([fractaldb.filling_rate(fractaldb.render(p, 24)) for p in pts])

    assert mean_rate(kept) > mean_rate(unfiltered)
    # a degenerate system (every map collapses to one point) fills one pixel and is rejected
    point = np.array([[0.0, 0.0, 0.0, 0.0, 0.3, 0.3], [0.0, 0.0, 0.0, 0.0, 0.3, 0.3]])
    assert (
        fractaldb.filling_rate(fractaldb.render(fractaldb.chaos_game([point], 1500, 0)[0], 24))
        < 0.01
    )


def test_expansive_systems_render_without_overflow():
    expansive = np.array([[1.8, 0.0, 0.0, 1.8, 0.5, 0.5], [1.9, 0.1, 0.0, 1.7, -0.5, 0.2]])
    pts = fractaldb.chaos_game([expansive], 3000, 0)[0]  # runs off to inf
    image = fractaldb.render(pts, 16)
    assert image.shape == (16, 16) and np.isfinite(image).all()


def test_fractaldb_domain_is_cached_on_disk(tmp_path):
    fractal = {
        "categories": 2,
        "instances": 4,
        "size": 16,
        "points": 800,
        "threshold": 0.05,
        "seed": 1,
    }
    spec = domain_spec("fractaldb", fractal=fractal)
    dom = build_domain("fr", spec, 16, 1, str(tmp_path))
    assert dom.class_names == ("fractal_0", "fractal_1") and len(dom.y_train) + len(dom.y_test) == 8
    assert len(list((tmp_path / "fractaldb").glob("*/tensors.pt"))) == 1
