"""Image-folder trees (``data=imagefolder``): decoded into memory, or streamed from the files.

Images are resized to the model's side length as they are decoded; the size most of them have
on disk and their channel count are kept on :class:`Raw`, so a record can say what was resized.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_modules.datasets import NODE, DataError, Raw, _images, _split, _split_indices
from lightning_modules.streaming import StreamedImages, take

RGB_MODES = ("RGB", "RGBA", "P", "CMYK")


def _check_tree(root: Path, key: str, classes: list[str] | None, **kwargs: Any) -> Any:
    """The torchvision ImageFolder of ``root``; a missing or empty tree is one line."""
    from torchvision.datasets import ImageFolder

    if not root.is_dir():
        raise DataError(f"imagefolder: {NODE}.{key}={root} is not a folder; set {NODE}.{key}")
    try:
        folder = ImageFolder(str(root), **kwargs)
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"imagefolder: {root}: {err}".splitlines()[0]) from None
    if classes is not None and folder.classes != classes:
        raise DataError(f"imagefolder: {root} has classes {folder.classes}, expected {classes}")
    return folder


def _native(sizes: Counter, modes: set[str]) -> tuple[tuple[int, int], int]:
    """The (H, W) most images have on disk, and 3 channels if any image is in colour."""
    width, height = sizes.most_common(1)[0][0]  # PIL sizes are (W, H)
    return (int(height), int(width)), 3 if "RGB" in modes else 1


def _read_folder(root: Path, key: str, image_size: int, classes: list[str] | None) -> tuple:
    """Decode every image of an ImageFolder tree at ``image_size`` (RGB kept, else gray).

    Returns images, labels, class names and the native (size, channels).
    """
    from PIL import Image

    folder = _check_tree(root, key, classes)
    modes, sizes = set(), Counter()
    images, labels = [], []
    for path, label in folder.samples:
        with Image.open(path) as img:
            modes.add("RGB" if img.mode in RGB_MODES else "L")
            sizes[img.size] += 1
            images.append(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
            labels.append(label)
    mode = "RGB" if "RGB" in modes else "L"
    arrays = np.stack([np.asarray(i.convert(mode)) for i in images])
    x = _images(arrays, mode == "RGB")
    return x, torch.tensor(labels).long(), tuple(folder.classes), _native(sizes, modes)


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


def _stream_folder(
    root: Path, key: str, image_size: int, workers: int, classes: list[str] | None
) -> tuple:
    """List an ImageFolder tree without decoding it; the first image decides RGB or gray.

    The native size and channels are the first image's (nothing else is opened up front).
    """
    from PIL import Image

    folder = _check_tree(root, key, classes, loader=_path)  # paths only, nothing decoded
    paths = [path for path, _ in folder.samples]
    with Image.open(paths[0]) as first:
        mode = "RGB" if first.mode in RGB_MODES else "L"
        native = _native(Counter([first.size]), {mode})
    shape = (len(paths), 3 if mode == "RGB" else 1, image_size, image_size)
    images = StreamedImages(FolderImages(paths, image_size, mode), shape, workers)
    labels = torch.tensor([label for _, label in folder.samples])
    return images, labels, tuple(folder.classes), native


def read_imagefolder(spec: dict[str, Any], image_size: int) -> Raw:
    """A class-per-folder tree; ``test_root`` (same classes) or a seeded stratified split.

    ``in_memory: false`` lists the files and decodes them in DataLoader workers as they are
    needed, instead of decoding every image up front. The native size and channels are the
    train tree's.
    """
    if not spec.get("root"):
        raise DataError(f"{NODE}.root is not set; imagefolder reads its files from there")
    root = Path(spec["root"]).expanduser()
    streamed = spec.get("in_memory") is False
    workers = int(spec.get("workers") or 0)

    def read(path: Path, key: str, classes: list[str] | None) -> tuple:
        if streamed:
            return _stream_folder(path, key, image_size, workers, classes)
        return _read_folder(path, key, image_size, classes)

    x, y, names, (size, chans) = read(root, "root", None)
    if spec.get("test_root"):
        x_te, y_te, _, _ = read(Path(spec["test_root"]).expanduser(), "test_root", list(names))
        return Raw(x, y, x_te, y_te, names, None, size, chans)
    if torch.bincount(y).min() < 2:
        raise DataError(f"imagefolder: {root} has a class with fewer than 2 images")
    if streamed:
        tr, te = _split_indices(y, spec["test_fraction"], spec["split_seed"])
        return Raw(take(x, tr), y[tr], take(x, te), y[te], names, None, size, chans)
    return Raw(*_split(x, y, spec["test_fraction"], spec["split_seed"]), names, None, size, chans)
