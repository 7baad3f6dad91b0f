"""Weight-space interpolation between two states of one network (WiSE-FT).

Wortsman et al. 2022 (arXiv 2109.01903): ``theta(alpha) = (1 - alpha) * theta_0 + alpha *
theta_1`` between the weights a fine-tune started from and the weights it ended at, with no
extra training. Every floating-point entry of the state is interpolated, BatchNorm's running
mean and variance included: the statistics then move with the weights they were measured for,
and the two ends are the two networks exactly (not re-estimated ones). Integer entries
(BatchNorm's step counter) are taken from the end state, except at alpha 0.
"""

from __future__ import annotations

import torch


def interpolate(
    start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """The state ``(1 - alpha) * start + alpha * end``; alpha 0 and 1 return copies of the ends.

    Raises:
        ValueError: the states do not have the same entries.
    """
    if start.keys() != end.keys():
        raise ValueError(f"states differ in {sorted(start.keys() ^ end.keys())[:3]}")
    out = {}
    for name, b in end.items():
        a = start[name].to(b.device)
        if alpha == 0.0:
            out[name] = a.clone()
        elif alpha == 1.0 or not b.is_floating_point():
            out[name] = b.clone()
        else:
            out[name] = torch.lerp(a.to(b.dtype), b, float(alpha))
    return out
