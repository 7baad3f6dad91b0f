"""In-memory batches for Lightning: index selections of a tensor, no DataLoader workers.

The digits domains are a few hundred kilobytes; a DataLoader would spend more time collating
than the model spends training. ``RandomBatches`` draws ``steps`` batches with replacement
from tensors that already live on the training device, so training length is set in optimiser
steps whatever the budget (a 1-shot run still takes ``steps`` steps).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

# Inputs are standardised with fixed constants (the digits pixel mean/std at 16x16), not with
# statistics of the labelled subset, so every budget and regime sees the same input scale.
PIXEL_MEAN = 0.30
PIXEL_STD = 0.40


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] pixels to roughly zero mean, unit variance."""
    return (x - PIXEL_MEAN) / PIXEL_STD


class RandomBatches:
    """``steps`` batches sampled with replacement; an iterable Lightning accepts as a loader.

    Args:
        x: inputs, already normalised and on the training device.
        y: labels, or None for unlabelled (self-supervised) data.
        batch_size: examples per batch.
        steps: number of batches (= optimiser steps of one epoch).
        seed: seeds the sampling generator; the same seed gives the same batches.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int, steps: int, seed: int
    ) -> None:
        self.x, self.y = x, y
        self.batch_size, self.steps, self.seed = batch_size, steps, seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        n = self.x.shape[0]
        rank, world = _rank_and_world()
        for _ in range(self.steps):
            idx = torch.randint(0, n, (self.batch_size,), generator=gen)
            # Under DDP every rank draws the same global batch and keeps its own slice, so the
            # global batch (and what one step sees) is the configured one at any device count.
            idx = idx[rank::world].to(self.x.device)
            y = self.y[idx] if self.y is not None else idx
            yield self.x[idx], y


class ReplayBatches(RandomBatches):
    """Unlabelled batches of a new domain with a ``fraction`` of each drawn from earlier ones.

    The replayed share is fixed per batch (round(fraction x batch_size) images drawn uniformly
    from ``x_old``), so "5% replay" means the same thing at every step; the SimCLR placeholder
    label is the row index in the concatenation.
    """

    def __init__(
        self,
        x_new: torch.Tensor,
        x_old: torch.Tensor,
        fraction: float,
        batch_size: int,
        steps: int,
        seed: int,
    ) -> None:
        self.n_new, self.n_old = x_new.shape[0], x_old.shape[0]
        self.k_old = round(fraction * batch_size) if self.n_old else 0
        x = torch.cat([x_new, x_old]) if self.k_old else x_new
        super().__init__(x, None, batch_size, steps, seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.k_old == 0:  # no replay: exactly the batches of plain RandomBatches on x_new
            yield from super().__iter__()
            return
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        rank, world = _rank_and_world()
        for _ in range(self.steps):
            new = torch.randint(0, self.n_new, (self.batch_size - self.k_old,), generator=gen)
            old = self.n_new + torch.randint(0, self.n_old, (self.k_old,), generator=gen)
            idx = torch.cat([new, old])[rank::world].to(self.x.device)
            yield self.x[idx], idx


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside distributed training)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
