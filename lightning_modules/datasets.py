"""Dataset loaders: each turns a ``data`` config into in-memory float images and labels.

- ``digits``: scikit-learn's bundled 8x8 digits (no files, the default).
- torchvision's MNIST, FashionMNIST, KMNIST, CIFAR-10/100, SVHN and STL-10, read by the real
  torchvision classes from ``data.root`` (``data.download=true`` fetches them where a network
  exists). STL-10's 100,000-image unlabeled split joins as unlabelled pretraining images with
  ``data.unlabeled=true``.
- ``imagefolder``: any ``root/<class>/*.png|jpg`` tree, with ``data.test_root`` or a seeded split.
- ``fractaldb``: formula-driven images generated offline (``lightning_modules/fractaldb.py``),
  cached on disk by their parameters.

A loader returns :class:`Raw`; ``domains.build_domain`` then selects classes, shifts, converts
channels and resizes. Everything is decoded once into tensors (the in-memory path of the
performance design): at the presets' 32 px that is 0.6 GB for CIFAR's 50,000 training images.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_modules.streaming import Images, take

NODE = "<node>"  # stands for the config key of the domain (data, source, stream.<k>)


class DataError(ValueError):
    """Data that cannot be loaded: missing files, an empty folder, unreadable images.

    Loaders are cached per spec, whichever node asked, so a message names the node by the
    placeholder :data:`NODE`; :meth:`at` fills in the key the user set (``source.root``).
    """

    def at(self, node: str) -> str:
        """The message with the domain's config key filled in."""
        return str(self.args[0]).replace(NODE, node)

    def __str__(self) -> str:
        return self.at("data")


@dataclass(frozen=True)
class Raw:
    """A dataset as loaded: images (N, C, H, W) float in [0, 1], labels, class names."""

    x_train: Images
    y_train: torch.Tensor
    x_test: Images
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    x_unlabeled: torch.Tensor | None = None
    native_size: tuple[int, int] | None = None  # (H, W) on disk, before any resize
    native_channels: int | None = None  # 1 (gray) or 3 (RGB) on disk


def _images(array: np.ndarray, channels_last: bool) -> torch.Tensor:
    """uint8 (N, H, W[, C]) or (N, C, H, W) -> float (N, C, H, W) in [0, 1]."""
    x = torch.from_numpy(np.require(array, requirements="W"))  # PIL arrays are read-only
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif channels_last:
        x = x.permute(0, 3, 1, 2)
    return x.contiguous().float().div_(255.0)


def _split_indices(y: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """A stratified train/test split that depends only on ``seed`` (never the run seed)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=y.numpy(), random_state=seed)
    return torch.from_numpy(tr), torch.from_numpy(te)  # the split's own order, as always


def _split(
    x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, ...]:
    tr, te = _split_indices(y, test_fraction, seed)
    return x[tr], y[tr], x[te], y[te]


def digits(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """scikit-learn's 8x8 digits, split with ``test_fraction``/``split_seed``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.from_numpy((data.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(data.target).long()
    names = tuple(map(str, range(10)))
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), names, None, (8, 8), 1)


def _root(spec: dict[str, Any]) -> Path:
    if not spec.get("root"):
        raise DataError(f"{NODE}.root is not set; {spec['dataset']} reads its files from there")
    return Path(spec["root"]).expanduser()


def _torchvision(cls_name: str, spec: dict[str, Any], **kwargs: Any) -> Any:
    """Instantiate a torchvision dataset; missing files become one line naming the folder."""
    import torchvision.datasets as tvd

    root = _root(spec)
    try:
        return getattr(tvd, cls_name)(root=str(root), download=bool(spec.get("download")), **kwargs)
    except RuntimeError as err:
        if "not found" not in str(err).lower() and "corrupted" not in str(err).lower():
            raise
        raise DataError(
            f"{spec['dataset']}: no usable files under {NODE}.root={root} (torchvision looked in "
            f"{root}); set {NODE}.root to the folder that holds them, or {NODE}.download=true "
            "where a network exists"
        ) from None


def _from_splits(
    train: Any,
    test: Any,
    labels: str,
    classes: tuple[str, ...],
    channels_last: bool = False,
    unlabeled: Any = None,
) -> Raw:
    """A torchvision train/test pair as :class:`Raw` (``labels`` names the label attribute)."""

    def split(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        images = _images(np.asarray(ds.data), channels_last)
        return images, torch.as_tensor(np.asarray(getattr(ds, labels))).long()

    extra = _images(np.asarray(unlabeled.data), channels_last) if unlabeled is not None else None
    x_train, y_train = split(train)
    native = (int(x_train.shape[2]), int(x_train.shape[3]))
    return Raw(x_train, y_train, *split(test), classes, extra, native, int(x_train.shape[1]))


def _mnist_like(cls_name: str) -> Callable[[dict[str, Any], int, str], Raw]:
    def load(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
        train = _torchvision(cls_name, spec, train=True)
        test = _torchvision(cls_name, spec, train=False)
        return _from_splits(train, test, "targets", tuple(train.classes))

    return load


def _cifar(cls_name: str) -> Callable[[dict[str, Any], int, str], Raw]:
    def load(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
        train = _torchvision(cls_name, spec, train=True)
        test = _torchvision(cls_name, spec, train=False)
        return _from_splits(train, test, "targets", tuple(train.classes), channels_last=True)

    return load


def svhn(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """SVHN's train and test splits (labels 0..9; torchvision maps the digit 0 to label 0)."""
    train = _torchvision("SVHN", spec, split="train")
    test = _torchvision("SVHN", spec, split="test")
    return _from_splits(train, test, "labels", tuple(map(str, range(10))))


def stl10(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """STL-10 train/test, plus the unlabeled split as extra SSL images when asked for.

    The unlabeled images are resized with the domain's other images, by the same code
    (``domains.Prepare``). Decoding 100,000 images at 96x96 as float32 peaks at 11 GB.
    """
    train = _torchvision("STL10", spec, split="train")
    test = _torchvision("STL10", spec, split="test")
    unlabeled = _torchvision("STL10", spec, split="unlabeled") if spec.get("unlabeled") else None
    return _from_splits(train, test, "labels", tuple(train.classes), unlabeled=unlabeled)


def imagefolder(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """A class-per-folder tree (``lightning_modules/folders.py``, which builds on this module)."""
    from lightning_modules.folders import read_imagefolder

    return read_imagefolder(spec, image_size)


def fractaldb(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """Generated fractal categories (cached on disk by their parameters), seeded split."""
    from common.cache import cached, versioned  # the suite's one disk cache (atomic, locked)
    from lightning_modules.fractaldb import generate

    f = spec.get("fractal") or {}
    params = {k: f[k] for k in ("categories", "instances", "size", "points", "threshold", "seed")}

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        images, labels = generate(**params)
        return {"x": torch.from_numpy(images), "y": torch.from_numpy(labels)}, {}

    # The images follow from the generation parameters alone (not the model's size or channels).
    tensors, _, _ = cached(cache_dir, "fractaldb", versioned("fractaldb", params=params), build)
    x, y = tensors["x"].unsqueeze(1).float(), tensors["y"].long()
    names = tuple(f"fractal_{c}" for c in range(params["categories"]))
    native = (int(x.shape[2]), int(x.shape[3]))
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), names, None, native, 1)


def _installed(package: str) -> str | None:
    """A package's version, or None where it is not installed (its loader then says so)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text(name: str) -> Callable[[dict[str, Any], int, str], Raw]:
    """A text corpus of ``lightning_modules/corpora.py`` (which builds on this module).

    Cached on disk by what it is cut from: parsing the standard library takes seconds, which
    every worker of a sweep would otherwise pay. The interpreter's version is in the key, since
    its standard library is the corpus.
    """

    def load(spec: dict[str, Any], size: int, cache_dir: str) -> Raw:
        import sys

        from common.cache import cached, versioned
        from lightning_modules.corpora import CORPUS_PACKAGES, TEXT_LOADERS, hub_files

        def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            raw = TEXT_LOADERS[name](spec, size, cache_dir)
            tensors = {k: getattr(raw, k) for k in ("x_train", "y_train", "x_test", "y_test")}
            if raw.x_unlabeled is not None:
                tensors["x_unlabeled"] = raw.x_unlabeled
            return tensors, {"class_names": list(raw.class_names)}

        parts = {k: spec[k] for k in ("dataset", "text", "test_fraction", "split_seed")}
        packages = {p: _installed(p) for p in CORPUS_PACKAGES.get(name, ())}
        # Local files are keyed by content: an edited file is a new corpus under the same path.
        files = {str(f): _digest(f) for f in hub_files(spec) if f.is_file()}
        extra = {"packages": packages} if packages else {}
        key = versioned("corpus", python=sys.version, **parts, **extra, **(
            {"files": files} if files else {}))  # fmt: skip
        t, meta, _ = cached(cache_dir, "corpus", key, build)
        names = tuple(meta["class_names"])
        return Raw(
            t["x_train"], t["y_train"], t["x_test"], t["y_test"], names, t.get("x_unlabeled")
        )

    return load


TEXT_DATASETS = ("python_docs", "python_code", "kjv", "hf_text")  # token ids (N, L), not images

LOADERS: dict[str, Callable[[dict[str, Any], int, str], Raw]] = {
    "digits": digits,
    "mnist": _mnist_like("MNIST"),
    "fashion_mnist": _mnist_like("FashionMNIST"),
    "kmnist": _mnist_like("KMNIST"),
    "cifar10": _cifar("CIFAR10"),
    "cifar100": _cifar("CIFAR100"),
    "svhn": svhn,
    "stl10": stl10,
    "imagefolder": imagefolder,
    "fractaldb": fractaldb,
    **{name: _text(name) for name in TEXT_DATASETS},
}


def held_out(raw: Raw, fraction: float, seed: int) -> Raw:
    """The domain's validation view: a stratified share of its TRAIN split stands in for test.

    Recipes and design details (stage lengths, learning rates) are chosen on this view, so the
    test split is never read while choosing; the remaining train images are the pool that budgets
    and unlabelled stages draw from. The split depends only on ``split_seed``.
    """
    tr, va = _split_indices(raw.y_train, fraction, seed)
    return dataclasses.replace(
        raw,
        x_train=take(raw.x_train, tr),
        y_train=raw.y_train[tr],
        x_test=take(raw.x_train, va),
        y_test=raw.y_train[va],
    )


@functools.lru_cache(maxsize=8)
def load(spec_json: str, image_size: int, cache_dir: str) -> Raw:
    """Load once per process; ``spec_json`` is the domain config as sorted JSON (hashable)."""
    spec = json.loads(spec_json)
    raw = LOADERS[spec["dataset"]](spec, image_size, cache_dir)
    if spec.get("evaluate_on", "test") == "validation":
        return held_out(raw, spec["validation_fraction"], spec["split_seed"])
    return raw
