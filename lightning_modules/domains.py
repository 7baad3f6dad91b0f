"""Domains: in-memory image datasets with fixed train/test splits.

The embedded default is scikit-learn's bundled 8x8 digits (1,797 real images, no download).
Named domains are class subsets and deterministic transforms of it, so a source/target study
needs no data on disk. A domain is decoded once per process (``functools.lru_cache``) and then
shared by every run of an in-process sweep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

TRANSFORMS = ("none", "rot90", "invert", "permute")
DATASETS = ("digits",)


class DomainError(ValueError):
    """A domain config that cannot be built (unknown dataset, transform or class)."""


@dataclass(frozen=True)
class Domain:
    """Images as float tensors in [0, 1], shape (N, C, H, W), with labels 0..num_classes-1.

    ``class_names`` maps a label back to the original class, so a record can say that label 0 of
    ``digits_5to9`` is the digit 5.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes of the label space."""
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Training examples per class: the ceiling of any per-class budget."""
        counts = torch.bincount(self.y_train, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts, strict=True))


@functools.lru_cache(maxsize=4)
def _digits_split(test_fraction: float, split_seed: int) -> tuple[np.ndarray, ...]:
    """One stratified train/test split of load_digits; it never depends on the run seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images,
        digits.target,
        test_size=test_fraction,
        stratify=digits.target,
        random_state=split_seed,
    )
    return x_tr, y_tr, x_te, y_te


def _apply_transform(x: torch.Tensor, transform: str, seed: int) -> torch.Tensor:
    """Deterministic domain shift applied to a (N, 1, H, W) batch at native resolution."""
    if transform == "none":
        return x
    if transform == "rot90":
        return torch.rot90(x, 1, dims=(2, 3))
    if transform == "invert":
        return 1.0 - x
    if transform == "permute":
        h, w = x.shape[-2:]
        perm = torch.from_numpy(np.random.default_rng(seed).permutation(h * w))
        return x.flatten(2)[:, :, perm].reshape_as(x)
    raise DomainError(f"data.transform={transform!r} is unknown; allowed: {', '.join(TRANSFORMS)}")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


@functools.lru_cache(maxsize=32)
def build_domain(
    name: str,
    dataset: str,
    classes: tuple[int, ...] | None,
    transform: str,
    image_size: int,
    test_fraction: float = 0.3,
    split_seed: int = 0,
) -> Domain:
    """Build (once per process) a named domain from its config values.

    Labels are re-indexed to 0..K-1 in the order of ``classes``.
    """
    if dataset not in DATASETS:
        raise DomainError(f"data.dataset={dataset!r} is unknown; allowed: {', '.join(DATASETS)}")
    x_tr, y_tr, x_te, y_te = _digits_split(test_fraction, split_seed)
    all_classes = tuple(range(10))
    keep = all_classes if classes is None else tuple(classes)
    bad = [c for c in keep if c not in all_classes]
    if bad or not keep:
        raise DomainError(f"data.classes={list(keep)} is invalid; allowed: a subset of 0..9")
    lookup = {c: i for i, c in enumerate(keep)}

    def select(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        mask = np.isin(y, keep)
        images = torch.from_numpy(x[mask]).unsqueeze(1)
        images = _resize(_apply_transform(images, transform, split_seed), image_size)
        labels = torch.tensor([lookup[int(c)] for c in y[mask]], dtype=torch.long)
        return images.contiguous(), labels

    xtr, ytr = select(x_tr, y_tr)
    xte, yte = select(x_te, y_te)
    return Domain(name, xtr, ytr, xte, yte, tuple(str(c) for c in keep))
