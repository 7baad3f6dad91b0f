"""Images that do not fit in memory: decoded per item by DataLoader workers, pinned, on demand.

A domain built with ``data.in_memory=false`` holds :class:`StreamedImages` instead of a tensor.
They stand in for the tensor everywhere the suite touches images, through four helpers that
accept either kind:

- :func:`take` (a subset by index: a label budget, a class selection),
- :func:`concat` (train + unlabelled images, replay from earlier domains),
- :func:`chunks` (sequential batches for feature extraction and prediction),
- :func:`materialize` (the whole set as one tensor, for the pixel floor's full-batch probe).

Training batches come from :class:`lightning_modules.datamodules.RandomBatches`, which draws the
same index sequence either way and, for streamed images, hands it to a DataLoader as its batch
sampler (workers decode, memory is pinned when a GPU is present).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset


class TensorImages(Dataset):
    """An in-memory tensor as a dataset (to concatenate it with streamed images)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x.cpu()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], i


class Mapped(Dataset):
    """Items of ``inner`` with ``fn`` applied to each image (a picklable callable)."""

    def __init__(self, inner: Dataset, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.inner, self.fn = inner, fn

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, j = self.inner[i]
        return self.fn(image), j


class _Reindexed(Dataset):
    """A dataset whose items report their position in *this* dataset (for subsets and concats)."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.inner[i][0], i


class StreamedImages:
    """A lazily decoded image set with the parts of the tensor API the suite uses."""

    def __init__(self, dataset: Dataset, shape: tuple[int, ...], workers: int) -> None:
        self.dataset, self.shape, self.workers = dataset, shape, workers
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device: torch.device | str) -> StreamedImages:
        """Decoded batches will be moved to ``device`` (the set itself stays on disk)."""
        out = StreamedImages(self.dataset, self.shape, self.workers)
        out.device = torch.device(device)
        return out

    def loader(self, batch_sampler: Sequence[Sequence[int]] | None = None, batch_size: int = 256):
        """A DataLoader over the set: workers decode, pinned memory when a GPU is present."""
        kwargs = (
            {"batch_sampler": batch_sampler}
            if batch_sampler is not None
            else {"batch_size": batch_size, "shuffle": False}
        )
        return DataLoader(
            self.dataset,
            num_workers=self.workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
            **kwargs,
        )


Images = torch.Tensor | StreamedImages


def _like(x: StreamedImages, dataset: Dataset, count: int) -> StreamedImages:
    out = StreamedImages(dataset, (count, *x.shape[1:]), x.workers)
    out.device = x.device
    return out


def take(x: Images, idx: torch.Tensor) -> Images:
    """``x[idx]`` for either kind."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    rows = idx.tolist()
    return _like(x, _Reindexed(Subset(x.dataset, rows)), len(rows))


def concat(parts: Sequence[Images]) -> Images:
    """``torch.cat(parts)`` for either kind (streamed if any part is)."""
    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat(list(parts))
    streamed = next(p for p in parts if isinstance(p, StreamedImages))
    datasets = [p.dataset if isinstance(p, StreamedImages) else TensorImages(p) for p in parts]
    total = sum(len(p) for p in parts)
    return _like(streamed, _Reindexed(ConcatDataset(datasets)), total)


def mapped(
    x: StreamedImages, fn: Callable[[torch.Tensor], torch.Tensor], channels: int
) -> StreamedImages:
    """``x`` with ``fn`` applied to every image as it is decoded (shifts, channel conversion)."""
    out = StreamedImages(Mapped(x.dataset, fn), (len(x), channels, *x.shape[2:]), x.workers)
    out.device = x.device
    return out


def chunks(x: Images, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive batches, in order, on ``x``'s device."""
    if isinstance(x, torch.Tensor):
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size]
        return
    for images, _ in x.loader(batch_size=batch_size):
        yield images.to(x.device, non_blocking=True)


def materialize(x: Images) -> torch.Tensor:
    """The whole set as one tensor (only for what needs every image at once)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.cat(list(chunks(x, 512)))
