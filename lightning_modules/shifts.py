"""Deterministic domain shifts, composable from config, applied once when a domain is built.

``data.transform`` is a name or a list of names, each optionally with one number after a colon,
applied left to right to (N, C, H, W) images in [0, 1]:

    transform: rot90                          # digits_rot90
    transform: [invert, "contrast:0.5"]       # inverted, then half contrast
    transform: ["rotate:30", "noise:0.1"]     # rotated 30 degrees, then fixed Gaussian noise

Shifts that draw random numbers (``noise``, ``permute``) take them from the domain's
``split_seed``, so a shifted domain is the same images in every run and process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF  # noqa: N812


class ShiftError(ValueError):
    """An unknown shift name or a bad parameter."""


def _permute(x: torch.Tensor, _: float, seed: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(h * w))
    return x.flatten(2)[:, :, perm].reshape_as(x)


def _noise(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def _contrast(x: torch.Tensor, factor: float, _: int) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + factor * (x - mean)).clamp(0, 1)


def _colour(x: torch.Tensor, hue: float, _: int) -> torch.Tensor:
    """Hue rotation by ``hue`` (a fraction of the circle) on RGB; gray images are unchanged."""
    return TF.adjust_hue(x, hue) if x.shape[1] == 3 else x


# name -> (function(x, parameter, seed), default parameter, allowed range of the parameter)
SHIFTS: dict[str, tuple[Callable[[torch.Tensor, float, int], torch.Tensor], float, str]] = {
    "none": (lambda x, p, s: x, 0.0, "no parameter"),
    "rot90": (lambda x, p, s: torch.rot90(x, 1, dims=(2, 3)), 0.0, "no parameter"),
    "rotate": (lambda x, p, s: TF.rotate(x, p), 30.0, "degrees"),
    "invert": (lambda x, p, s: 1.0 - x, 0.0, "no parameter"),
    "contrast": (_contrast, 0.5, "a factor > 0 (1 = unchanged)"),
    "brightness": (lambda x, p, s: (x * p).clamp(0, 1), 0.7, "a factor > 0 (1 = unchanged)"),
    "hue": (_colour, 0.25, "-0.5 .. 0.5 (RGB domains)"),
    "noise": (_noise, 0.1, "a standard deviation >= 0"),
    "permute": (_permute, 0.0, "no parameter (a fixed pixel permutation)"),
}


def parse(spec: str | Sequence[str] | None) -> list[tuple[str, float]]:
    """``"rot90"`` or ``["rotate:30", "noise:0.1"]`` -> [(name, parameter)], checked."""
    items = [spec] if isinstance(spec, str) or spec is None else list(spec)
    out = []
    for item in items:
        name, _, value = str(item or "none").partition(":")
        if name not in SHIFTS:
            raise ShiftError(
                f"data.transform={item!r} is unknown; allowed: {', '.join(SHIFTS)} "
                "(optionally name:number, e.g. rotate:30)"
            )
        try:
            param = float(value) if value else SHIFTS[name][1]
        except ValueError:
            raise ShiftError(f"data.transform={item!r}: {value!r} is not a number") from None
        out.append((name, param))
    return out


def apply(x: torch.Tensor, spec: str | Sequence[str] | None, seed: int) -> torch.Tensor:
    """Apply the shifts of ``spec`` in order."""
    for k, (name, param) in enumerate(parse(spec)):
        x = SHIFTS[name][0](x, param, seed + k)
    return x
