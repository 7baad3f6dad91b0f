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

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_modules.streaming import Images, StreamedImages, take


class DataError(ValueError):
    """Data that cannot be loaded: missing files, an empty folder, unreadable images."""


@dataclass(frozen=True)
class Raw:
    """A dataset as loaded: images (N, C, H, W) float in [0, 1], labels, class names."""

    x_train: Images
    y_train: torch.Tensor
    x_test: Images
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    x_unlabeled: torch.Tensor | None = None


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
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), tuple(map(str, range(10))))


def _root(spec: dict[str, Any]) -> Path:
    if not spec.get("root"):
        raise DataError(f"data.root is not set; {spec['dataset']} reads its files from there")
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
            f"{spec['dataset']}: no usable files under data.root={root} (torchvision looked in "
            f"{root}); set data.root to the folder that holds them, or data.download=true where a "
            "network exists"
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
    return Raw(*split(train), *split(test), classes, extra)


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


def _read_folder(root: Path, image_size: int, classes: list[str] | None) -> tuple:
    """Decode every image of an ImageFolder tree at ``image_size`` (RGB kept, else gray)."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    if not root.is_dir():
        raise DataError(f"imagefolder: data.root={root} is not a folder; set data.root")
    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"imagefolder: {root}: {err}".splitlines()[0]) from None
    names = classes or folder.classes
    if folder.classes != names:
        raise DataError(f"imagefolder: {root} has classes {folder.classes}, expected {names}")
    modes = set()
    images, labels = [], []
    for path, label in folder.samples:
        with Image.open(path) as img:
            modes.add("RGB" if img.mode in ("RGB", "RGBA", "P", "CMYK") else "L")
            images.append(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
            labels.append(label)
    mode = "RGB" if "RGB" in modes else "L"
    arrays = np.stack([np.asarray(i.convert(mode)) for i in images])
    return _images(arrays, mode == "RGB"), torch.tensor(labels).long(), tuple(names)


class FolderImages(Dataset):
    """Image files decoded one at a time (the streamed path): PIL, resized, as float tensors."""

    def __init__(self, paths: list[str], image_size: int, mode: str) -> None:
        self.paths, self.image_size, self.mode = paths, image_size, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            img = img.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
            array = np.asarray(img.convert(self.mode))
        return _images(array[None], self.mode == "RGB")[0], i


def _path(path: str) -> str:
    return path


def _stream_folder(root: Path, image_size: int, workers: int, classes: list[str] | None) -> tuple:
    """List an ImageFolder tree without decoding it; the first image decides RGB or gray."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    if not root.is_dir():
        raise DataError(f"imagefolder: data.root={root} is not a folder; set data.root")
    folder = ImageFolder(str(root), loader=_path)  # paths only, nothing decoded
    if classes is not None and folder.classes != classes:
        raise DataError(f"imagefolder: {root} has classes {folder.classes}, expected {classes}")
    paths = [path for path, _ in folder.samples]
    with Image.open(paths[0]) as first:
        mode = "RGB" if first.mode in ("RGB", "RGBA", "P", "CMYK") else "L"
    shape = (len(paths), 3 if mode == "RGB" else 1, image_size, image_size)
    images = StreamedImages(FolderImages(paths, image_size, mode), shape, workers)
    return images, torch.tensor([label for _, label in folder.samples]), tuple(folder.classes)


def imagefolder(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """A class-per-folder tree; ``test_root`` (same classes) or a seeded stratified split.

    ``in_memory: false`` lists the files and decodes them in DataLoader workers as they are
    needed, instead of decoding every image up front.
    """
    if spec.get("in_memory") is False:
        workers = int(spec.get("workers") or 0)
        x, y, names = _stream_folder(_root(spec), image_size, workers, None)
        if spec.get("test_root"):
            test_root = Path(spec["test_root"]).expanduser()
            x_te, y_te, _ = _stream_folder(test_root, image_size, workers, list(names))
            return Raw(x, y, x_te, y_te, names)
        tr, te = _split_indices(y, spec["test_fraction"], spec["split_seed"])
        return Raw(take(x, tr), y[tr], take(x, te), y[te], names)
    x, y, names = _read_folder(_root(spec), image_size, None)
    if spec.get("test_root"):
        x_te, y_te, _ = _read_folder(Path(spec["test_root"]).expanduser(), image_size, list(names))
        return Raw(x, y, x_te, y_te, names)
    if torch.bincount(y).min() < 2:
        raise DataError(f"imagefolder: {spec['root']} has a class with fewer than 2 images")
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), names)


def fractaldb(spec: dict[str, Any], image_size: int, cache_dir: str) -> Raw:
    """Generated fractal categories (cached on disk by their parameters), seeded split."""
    from benchmarks.cache import cached  # the suite's one disk cache (atomic, locked)
    from lightning_modules.fractaldb import generate

    f = spec.get("fractal") or {}
    params = {k: f[k] for k in ("categories", "instances", "size", "points", "threshold", "seed")}

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        images, labels = generate(**params)
        return {"x": torch.from_numpy(images), "y": torch.from_numpy(labels)}, {}

    tensors, _, _ = cached(cache_dir, "fractaldb", {"version": 1, **params}, build)
    x, y = tensors["x"].unsqueeze(1).float(), tensors["y"].long()
    names = tuple(f"fractal_{c}" for c in range(params["categories"]))
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), names)


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
}


@functools.lru_cache(maxsize=8)
def load(spec_json: str, image_size: int, cache_dir: str) -> Raw:
    """Load once per process; ``spec_json`` is the domain config as sorted JSON (hashable)."""
    spec = json.loads(spec_json)
    return LOADERS[spec["dataset"]](spec, image_size, cache_dir)
