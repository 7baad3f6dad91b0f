"""Input normalisation: the pixel statistics a backbone was trained with, from data or weights.

A backbone reads standardised pixels, ``(x - mean) / std`` per channel. The statistics are
those of what it was first trained on, and it keeps them for life: a backbone pretrained on a
source domain reads its target images with the source's statistics (as every fine-tune of
ImageNet weights uses ImageNet's), because its first layer was fitted to them. Where they come
from, in order:

- published weights (``pretrain=timm``): timm's ``pretrained_cfg`` mean/std for the model
  (:func:`timm_stats`);
- a domain that declares them (``normalize: {mean: [...], std: [...]}`` in ``conf/data``);
- otherwise the domain's own train images (:func:`computed_stats`).

The statistics travel with the backbone (:func:`with_stats`, :func:`stats_of`), so every module
that runs it (classifier, pretraining objective, linear probe) normalises alike.

The digits domains declare 0.30 / 0.40 (the digits pixel mean/std at 16x16, the suite's constants
since its first version), and a one-value mean/std is applied with Python scalars exactly as
before, so digits results are bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lightning_modules.streaming import Images, chunks, take

ATTRIBUTE = "input_stats"  # the backbone attribute that carries its statistics
MAX_IMAGES = 10_000  # images a computed statistic reads (evenly spaced): a pass over CIFAR's 50k
# costs more than it changes (the 4th decimal)
DECIMALS = 4  # computed values are rounded: the same data gives the same numbers on every CPU
MIN_STD = 1e-3  # a constant channel (blank images) would divide by zero


@dataclass(frozen=True)
class InputStats:
    """Per-channel mean and std of [0, 1] pixels (one value: every channel), and their origin."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    origin: str  # e.g. "declared by data digits", "computed from 630 train images of x"

    def facts(self) -> dict[str, Any]:
        """What the record's ``info.input_stats`` says."""
        return {"mean": list(self.mean), "std": list(self.std), "from": self.origin}


# A text backbone's inputs are byte ids, which no statistic applies to (normalize passes them).
TOKEN_IDS = InputStats((0.0,), (1.0,), "token ids: not normalised")


def normalize(x: torch.Tensor, stats: InputStats) -> torch.Tensor:
    """``(x - mean) / std`` per channel; one value applies to every channel, as Python scalars.

    Integer inputs are token ids (a text backbone's): they pass unchanged.
    """
    if not x.is_floating_point():
        return x
    if len(stats.mean) == 1 and len(stats.std) == 1:
        return (x - stats.mean[0]) / stats.std[0]
    mean = torch.tensor(stats.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(stats.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def with_stats(backbone: nn.Module, stats: InputStats) -> nn.Module:
    """Give ``backbone`` the statistics it is trained and evaluated with; returns it."""
    setattr(backbone, ATTRIBUTE, stats)
    return backbone


def stats_of(backbone: nn.Module) -> InputStats:
    """The statistics a backbone carries.

    Raises:
        ValueError: a backbone built without them (not through the suite's backbone builder).
    """
    stats = getattr(backbone, ATTRIBUTE, None)
    if not isinstance(stats, InputStats):
        raise ValueError(
            f"{type(backbone).__name__} carries no input statistics; attach them with "
            "lightning_modules.normalization.with_stats(backbone, stats)"
        )
    return stats


def computed_stats(images: Images, origin: str) -> InputStats:
    """Per-channel mean and std of up to :data:`MAX_IMAGES` evenly spaced images (float64)."""
    n = len(images)
    rows = torch.linspace(0, n - 1, min(n, MAX_IMAGES)).round().long().unique()
    picked = take(images, rows) if len(rows) < n else images
    channels = int(images.shape[1])
    total, sq = (
        torch.zeros(channels, dtype=torch.float64),
        torch.zeros(channels, dtype=torch.float64),
    )
    count = 0
    for chunk in chunks(picked, 1024):
        flat = chunk.detach().cpu().double().transpose(0, 1).flatten(1)  # (C, pixels)
        total, sq = total + flat.sum(1), sq + (flat**2).sum(1)
        count += flat.shape[1]
    mean = total / count
    std = (sq / count - mean**2).clamp_min(0).sqrt().clamp_min(MIN_STD)
    return InputStats(
        tuple(round(float(v), DECIMALS) for v in mean),
        tuple(round(float(v), DECIMALS) for v in std),
        f"computed from {len(rows)} train images of {origin}",
    )


def domain_stats(
    declared: dict[str, Sequence[float]] | None, images: Images, name: str
) -> InputStats:
    """A domain's statistics: declared in its config where they fit its channels, else computed.

    Declared values with one entry apply to every channel; with one per channel of the images
    as used (after conversion to the model's channels) they are used as they are. Values for
    another channel count (RGB statistics of a set converted to gray) are not guessed at.
    """
    channels = int(images.shape[1])
    if declared is not None:
        mean, std = tuple(map(float, declared["mean"])), tuple(map(float, declared["std"]))
        if len(mean) == len(std) and len(mean) in (1, channels):
            return InputStats(mean, std, f"declared by data {name}")
        why = f"{name}, whose declared {len(mean)}-channel values do not fit {channels} channels"
        return computed_stats(images, why)
    return computed_stats(images, name)


def timm_stats(backbone: nn.Module, name: str) -> InputStats:
    """The mean/std of timm's ``pretrained_cfg`` for the model (timm's public data-config API).

    Timm adapts RGB weights to a gray input by summing the first layer over the colours; the
    gray image then stands for three equal channels, so it takes the channels' average.
    """
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(backbone)
    mean, std = tuple(map(float, config["mean"])), tuple(map(float, config["std"]))
    if in_chans(backbone) == 1 and len(mean) > 1:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    return InputStats(mean, std, f"timm pretrained_cfg of {name}")


def in_chans(backbone: nn.Module) -> int:
    """The input channels of a timm model: its ``in_chans``, or its first layer's (timm's cfg)."""
    found = getattr(backbone, "in_chans", None)
    if found is None:
        first = getattr(backbone, "pretrained_cfg", {}).get("first_conv") or ""
        found = getattr(backbone.get_submodule(first), "in_channels", 3) if first else 3
    return int(found)
