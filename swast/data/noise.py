"""Label noise for the paper's noisy experiments: every flipped label is a different class, so the noisy
ids recorded here are exactly the samples whose training label is wrong.

Two kinds, chosen by ``data.noise_type``:

- ``symmetric``: round(rate * N) random samples get a uniformly drawn other class (the paper's
  "labels replaced at random").
- ``asymmetric`` (class flip): in every source class c, round(rate * N_c) random samples get the label
  ``flips[c]``. A dataset documents its own mapping (CIFAR-10: the standard pairs truck -> automobile,
  bird -> airplane, deer -> horse, cat <-> dog); every other dataset uses c -> c + 1 mod C. Only source
  classes are flipped, so the overall noisy share is rate times the share of samples in source classes.
"""

from __future__ import annotations

from typing import Literal

import torch

from swast.data.indexed import DataSplits, IndexedDataset

NoiseType = Literal["symmetric", "asymmetric"]


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


def class_flips(num_classes: int, flips: dict[int, int] | None = None) -> dict[int, int]:
    """The asymmetric-noise mapping: the dataset's own, or c -> c + 1 mod C."""
    return dict(flips) if flips is not None else {c: (c + 1) % num_classes for c in range(num_classes)}


def apply_class_flip_noise(dataset: IndexedDataset, flips: dict[int, int], rate: float, generator: torch.Generator) -> int:
    """In every source class c, relabel round(rate * N_c) random samples as ``flips[c]``."""
    clean = dataset.clean_labels.cpu()
    labels = clean.clone()
    count = 0
    for source, target in sorted(flips.items()):
        if source == target:
            continue
        members = torch.nonzero(clean == source).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[: round(rate * len(members))]]
        labels[chosen] = target
        count += len(chosen)
    dataset.labels = labels.to(dataset.labels.device)
    return count


def apply_label_noise(splits: DataSplits, noise_type: NoiseType, rate: float, generator: torch.Generator) -> int:
    """Flip training labels only: validation and test labels stay clean. Returns how many were flipped."""
    if noise_type == "symmetric":
        return apply_symmetric_noise(splits.train, splits.num_classes, rate, generator)
    return apply_class_flip_noise(splits.train, class_flips(splits.num_classes, splits.class_flips), rate, generator)
