"""Pretraining losses as pure functions, so each can be tested on its own."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss (Chen et al. 2020, arXiv 2002.05709).

    Views ``z1[i]`` and ``z2[i]`` are positives; the other 2N-2 embeddings are negatives. Each of
    the 2N anchors gets a cross-entropy over its 2N-1 similarities (self excluded), averaged.
    With identical embeddings the loss is ln(2N-1).

    >>> round(float(nt_xent(torch.ones(4, 3), torch.ones(4, 3))), 3)
    1.946
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)
