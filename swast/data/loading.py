"""Minibatches over a set of sample ids. In-memory datasets are sliced directly (no per-sample Python
work, which keeps swast's epoch as fast as a hand-written loop); other datasets go through a DataLoader."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from swast.data.indexed import IndexedDataset

Batch = tuple[Tensor, Tensor, Tensor, Tensor | None]


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Split n positions into batches; a trailing batch of one is folded into the previous one because
    BatchNorm cannot train on a single sample."""
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def count_batches(n: int, batch_size: int) -> int:
    return len(batch_slices(n, batch_size)) if n > 0 else 0


class _Fetch(Dataset):
    """Samples of a file-backed split. Augmentation runs here, on a batch of one, so that it happens in
    the DataLoader workers alongside decoding instead of in the training process; labels are read from
    a CPU copy because workers cannot touch CUDA tensors."""

    def __init__(self, dataset: IndexedDataset, ids: Tensor, augment: bool) -> None:
        self.inputs, self.labels, self.ids = dataset.inputs, dataset.labels.cpu(), ids
        self.augment = dataset.augment if augment else None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, pos: int) -> tuple[Tensor, Tensor, int]:
        i = int(self.ids[pos])
        x = self.inputs[i]
        return (self.augment(x[None])[0] if self.augment is not None else x), self.labels[i], i


def iterate_batches(
    dataset: IndexedDataset,
    ids: Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    weights: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_workers: int | None = None,
    start_batch: int = 0,
) -> Iterator[Batch]:
    """Yield ``(x, y, ids, weights)`` batches covering ``ids`` once (shuffled when asked), from batch
    ``start_batch`` on (a resumed epoch replays the same order and skips what it already trained).
    File-backed splits are decoded by ``num_workers`` processes (default: the split's own)."""
    order = torch.randperm(len(ids), generator=generator) if shuffle else torch.arange(len(ids))
    ids = ids.cpu()[order]
    w = weights.cpu()[order] if weights is not None else None
    slices = batch_slices(len(ids), batch_size)[start_batch:]
    if dataset.in_memory:
        for s in slices:
            x, y = dataset.fetch(ids[s], augment=augment)
            batch_ids = ids[s].to(x.device)
            yield x, y, batch_ids, (w[s].to(x.device) if w is not None else None)
        return
    loader = DataLoader(
        _Fetch(dataset, ids, augment),
        batch_sampler=[list(range(s.start, s.stop)) for s in slices],
        num_workers=dataset.num_workers if num_workers is None else num_workers,
    )
    for s, (x, y, batch_ids) in zip(slices, loader):
        yield x, y, batch_ids, (w[s] if w is not None else None)
