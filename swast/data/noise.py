"""Label noise for the paper's noisy experiments: every flipped label is a different class, so the noisy
ids recorded here are exactly the samples whose training label is wrong."""

from __future__ import annotations

import torch

from swast.data.indexed import IndexedDataset


def apply_symmetric_noise(dataset: IndexedDataset, num_classes: int, rate: float, generator: torch.Generator) -> int:
    """Replace the labels of round(rate * N) random samples by a uniformly drawn other class."""
    n = len(dataset)
    count = round(rate * n)
    if count == 0 or num_classes < 2:
        return 0
    ids = torch.randperm(n, generator=generator)[:count]
    shift = torch.randint(1, num_classes, (count,), generator=generator)
    labels = dataset.clean_labels.cpu().clone()
    labels[ids] = (labels[ids] + shift) % num_classes
    dataset.labels = labels.to(dataset.labels.device)
    return count
