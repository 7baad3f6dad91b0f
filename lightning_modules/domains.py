"""Domains: in-memory image datasets with fixed train/test splits.

The embedded default is scikit-learn's bundled 8x8 digits (1,797 real images, no download).
Named domains are class subsets and deterministic transforms of it, so a source/target study
needs no data on disk. A domain is decoded once per process (``functools.lru_cache``) and then
shared by every run of an in-process sweep.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lightning_modules import shifts
from lightning_modules.datasets import LOADERS, NODE, TEXT_DATASETS, DataError, load
from lightning_modules.normalization import InputStats, domain_stats
from lightning_modules.streaming import Images, StreamedImages, mapped, take

DATASETS = tuple(LOADERS)


class DomainError(DataError):
    """A domain config that cannot be built (unknown dataset, transform or class).

    As :class:`DataError`, the message names the domain's node by a placeholder: ``str()`` says
    ``data``, ``at("source")`` the key the user set.
    """


@dataclass(frozen=True)
class Domain:
    """Images as float tensors in [0, 1], shape (N, C, H, W), with labels 0..num_classes-1.

    ``class_names`` maps a label back to the original class, so a record can say that label 0 of
    ``digits_5to9`` is the digit 5.
    """

    name: str
    x_train: Images  # a tensor, or StreamedImages for data.in_memory=false
    y_train: torch.Tensor
    x_test: Images
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    x_unlabeled: torch.Tensor | None = None  # extra images for self-supervised stages only
    dataset: str = ""
    transform: Any = None
    native_size: tuple[int, int] | None = None  # (H, W) on disk, before the resize
    native_channels: int | None = None
    declared_stats: dict[str, Any] | None = None  # the config's ``normalize`` (mean, std)
    evaluated_on: str = "test"  # or "validation": x_test is a held-out share of the train split

    @functools.cached_property
    def stats(self) -> InputStats:
        """The pixel statistics of this domain: declared, or computed from its train images.

        Computed on first use only: a run whose backbone keeps another domain's statistics
        never reads this one's train images for it.
        """
        return domain_stats(self.declared_stats, self.x_train, self.name)

    @property
    def is_text(self) -> bool:
        """Token ids (N, L) of a text corpus (``lightning_modules/corpora.py``), not images."""
        return self.dataset in TEXT_DATASETS

    @functools.cached_property
    def content_digest(self) -> str:
        """SHA-256 (16 hex digits) of a text domain's passages and labels, for cache keys."""
        digest = hashlib.sha256()
        parts = (self.x_train, self.y_train, self.x_test, self.y_test, self.x_unlabeled)
        for part in parts:
            if part is not None:
                digest.update(part.numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def num_classes(self) -> int:
        """Number of classes of the label space."""
        return len(self.class_names)

    def facts(self) -> dict[str, Any]:
        """What the domain is and what was done to it: the record's ``domains`` entry.

        The native and used size and channels are stated because every image is resized and
        converted to the model's input (24x24 RGB may become 16x16 gray) without a word.
        """
        if self.is_text:  # passages of byte ids: the sequence length is the shape
            return {
                "name": self.name,
                "dataset": self.dataset,
                "modality": "text",
                "classes": list(self.class_names),
                "n_train": len(self.x_train),
                "n_test": len(self.x_test),
                "evaluated_on": self.evaluated_on,
                "n_unlabeled": 0 if self.x_unlabeled is None else len(self.x_unlabeled),
                "passage_bytes": int(self.x_train.shape[1]),
                "content": self.content_digest,  # another Python's library: other passages
            }
        native = list(self.native_size) if self.native_size is not None else None
        return {
            "name": self.name,
            "dataset": self.dataset,
            "classes": list(self.class_names),
            "n_train": len(self.x_train),
            "n_test": len(self.x_test),
            "evaluated_on": self.evaluated_on,
            "n_unlabeled": 0 if self.x_unlabeled is None else len(self.x_unlabeled),
            "transform": self.transform,
            "native_size": native,
            "native_channels": self.native_channels,
            "used_size": [int(self.x_train.shape[2]), int(self.x_train.shape[3])],
            "used_channels": int(self.x_train.shape[1]),
        }

    def class_counts(self) -> dict[str, int]:
        """Training examples per class: the ceiling of any per-class budget."""
        counts = torch.bincount(self.y_train, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts, strict=True))


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _channels(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Gray to RGB by repetition, RGB to gray by luminance: every domain fits the model."""
    if x.shape[1] == in_chans:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, in_chans, -1, -1).contiguous()
    if in_chans == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    raise DomainError(f"cannot convert {x.shape[1]}-channel images to model.in_chans={in_chans}")


class Prepare:
    """Shift at native resolution, convert channels, resize: for a batch or one image.

    A class rather than a closure so that streamed domains can be pickled to DataLoader workers
    and DDP processes.
    """

    def __init__(self, transform: object, seed: int, in_chans: int, image_size: int) -> None:
        self.transform, self.seed = transform, seed
        self.in_chans, self.image_size = in_chans, image_size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A (N, C, H, W) batch."""
        x = shifts.apply(x, self.transform, self.seed)
        return _resize(_channels(x, self.in_chans), self.image_size).contiguous()

    def one(self, image: torch.Tensor) -> torch.Tensor:
        """One (C, H, W) image (random shifts draw the same numbers for every image)."""
        return self(image[None])[0]


@functools.lru_cache(maxsize=32)
def build_domain(
    name: str, spec_json: str, image_size: int, in_chans: int, cache_dir: str
) -> Domain:
    """Build (once per process) a named domain from its config (``spec_json``: sorted JSON).

    Classes are picked by index in the dataset's class list and re-indexed 0..K-1 in the order of
    ``classes``; then the shift is applied at native resolution, channels converted, and the
    images resized to the model's side length.
    """
    spec = json.loads(spec_json)
    if spec["dataset"] not in LOADERS:
        raise DomainError(
            f"{NODE}.dataset={spec['dataset']!r} is unknown; allowed: {', '.join(LOADERS)}"
        )
    try:
        raw = load(spec_json, image_size, cache_dir)
        shifts.parse(spec["transform"])
    except DataError as err:
        raise DomainError(err.args[0]) from None
    except shifts.ShiftError as err:
        raise DomainError(str(err).replace("data.", f"{NODE}.", 1)) from None
    all_classes = tuple(range(len(raw.class_names)))
    keep = all_classes if spec.get("classes") is None else tuple(spec["classes"])
    bad = [c for c in keep if c not in all_classes]
    if bad or not keep:
        raise DomainError(
            f"{NODE}.classes={list(keep)} is invalid; "
            f"allowed: a subset of 0..{len(all_classes) - 1}"
        )
    lookup = torch.full((len(all_classes),), -1, dtype=torch.long)
    lookup[list(keep)] = torch.arange(len(keep))
    if spec["dataset"] in TEXT_DATASETS:
        return _text_domain(name, spec, raw, keep, lookup)

    pipeline = Prepare(spec["transform"], spec["split_seed"], in_chans, image_size)

    def select(x: Images, y: torch.Tensor) -> tuple[Images, torch.Tensor]:
        rows = (lookup[y] >= 0).nonzero().squeeze(1)
        if isinstance(x, StreamedImages):  # the same steps, per image as it is decoded
            return mapped(take(x, rows), pipeline.one, in_chans), lookup[y[rows]]
        return pipeline(x[rows]), lookup[y[rows]]

    xtr, ytr = select(raw.x_train, raw.y_train)
    xte, yte = select(raw.x_test, raw.y_test)
    extra = pipeline(raw.x_unlabeled) if raw.x_unlabeled is not None else None
    names = tuple(raw.class_names[c] for c in keep)
    facts = (spec["dataset"], spec["transform"], raw.native_size, raw.native_channels)
    evaluated_on = spec.get("evaluate_on", "test")
    return Domain(name, xtr, ytr, xte, yte, names, extra, *facts, _declared(spec), evaluated_on)


def _text_domain(
    name: str, spec: dict[str, Any], raw: Any, keep: tuple[int, ...], lookup: torch.Tensor
) -> Domain:
    """A text domain: the loaded passages of the kept classes, unchanged (no shift applies)."""
    if spec["transform"] not in ("none", None, []):
        raise DomainError(
            f"{NODE}.transform={spec['transform']!r} is an image shift; allowed for the text "
            f"dataset {spec['dataset']}: none"
        )

    def select(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = (lookup[y] >= 0).nonzero().squeeze(1)
        return x[rows], lookup[y[rows]]

    xtr, ytr = select(raw.x_train, raw.y_train)
    xte, yte = select(raw.x_test, raw.y_test)
    names = tuple(raw.class_names[c] for c in keep)
    evaluated_on = spec.get("evaluate_on", "test")
    return Domain(
        name, xtr, ytr, xte, yte, names, raw.x_unlabeled, spec["dataset"], "none",
        evaluated_on=evaluated_on,
    )  # fmt: skip


def _declared(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The config's ``normalize`` (both values, or None for statistics computed from the data)."""
    node = spec.get("normalize") or {}
    mean, std = node.get("mean"), node.get("std")
    if mean is None and std is None:
        return None
    if mean is None or std is None or len(mean) != len(std) or not mean:
        raise DomainError(
            f"{NODE}.normalize={node} is invalid; set mean and std with one value per channel "
            "(or one for every channel), or neither to compute them from the train images"
        )
    if min(std) <= 0:
        raise DomainError(f"{NODE}.normalize.std={std} is invalid; allowed: values > 0")
    return {"mean": mean, "std": std}
