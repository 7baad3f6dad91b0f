"""In-memory batches for Lightning: index selections of a tensor, no DataLoader workers.

The digits domains are a few hundred kilobytes; a DataLoader would spend more time collating
than the model spends training. ``RandomBatches`` draws ``steps`` batches with replacement
from tensors that already live on the training device, so training length is set in optimiser
steps whatever the budget (a 1-shot run still takes ``steps`` steps).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

from lightning_modules.streaming import Images, StreamedImages, concat


class RandomBatches:
    """``steps`` batches sampled with replacement; an iterable Lightning accepts as a loader.

    Args:
        x: inputs on the training device, or :class:`StreamedImages` (decoded by DataLoader
            workers from the same index sequence).
        y: labels, or None for unlabelled (self-supervised) data.
        batch_size: examples per batch.
        steps: number of batches (= optimiser steps of one epoch).
        seed: seeds the sampling generator; the same seed gives the same batches.

    ``start`` (0 unless a fit resumes from a checkpoint at that step) skips the first batches:
    they are still drawn, so batch k is the same whether or not the fit was interrupted.
    """

    start = 0

    def __init__(
        self, x: Images, y: torch.Tensor | None, batch_size: int, steps: int, seed: int
    ) -> None:
        self.x, self.y = x, y
        self.batch_size, self.steps, self.seed = batch_size, steps, seed

    def __len__(self) -> int:
        return self.steps

    def _indices(self) -> Iterator[torch.Tensor]:
        """The rows of every batch (on the CPU), drawn from one seeded generator."""
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        n = self.x.shape[0]
        rank, world = _rank_and_world()
        for _ in range(self.steps):
            idx = torch.randint(0, n, (self.batch_size,), generator=gen)
            # Under DDP every rank draws the same global batch and keeps its own slice, so the
            # global batch (and what one step sees) is the configured one at any device count.
            yield idx[rank::world]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.x.device
        indices = itertools.islice(self._indices(), self.start, None)
        if isinstance(self.x, StreamedImages):
            sampler = [idx.tolist() for idx in indices]
            for images, idx in self.x.loader(batch_sampler=sampler):
                idx = idx.to(device)
                yield images.to(device, non_blocking=True), self._labels(idx)
            return
        for idx in indices:
            idx = idx.to(device)
            yield self.x[idx], self._labels(idx)

    def _labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.y[idx] if self.y is not None else idx


class ReplayBatches(RandomBatches):
    """Unlabelled batches of a new domain with a ``fraction`` of each drawn from earlier ones.

    The replayed share is fixed per batch (round(fraction x batch_size) images drawn uniformly
    from ``x_old``), so "5% replay" means the same thing at every step; the SimCLR placeholder
    label is the row index in the concatenation.
    """

    def __init__(
        self,
        x_new: Images,
        x_old: Images | None,
        fraction: float,
        batch_size: int,
        steps: int,
        seed: int,
    ) -> None:
        self.n_new, self.n_old = x_new.shape[0], 0 if x_old is None else x_old.shape[0]
        self.k_old = round(fraction * batch_size) if self.n_old else 0
        x = concat([x_new, x_old]) if self.k_old and x_old is not None else x_new
        super().__init__(x, None, batch_size, steps, seed)

    def _indices(self) -> Iterator[torch.Tensor]:
        if self.k_old == 0:  # no replay: exactly the batches of plain RandomBatches on x_new
            yield from super()._indices()
            return
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        rank, world = _rank_and_world()
        for _ in range(self.steps):
            new = torch.randint(0, self.n_new, (self.batch_size - self.k_old,), generator=gen)
            old = self.n_new + torch.randint(0, self.n_old, (self.k_old,), generator=gen)
            yield torch.cat([new, old])[rank::world]


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside distributed training)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
