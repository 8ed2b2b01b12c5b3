"""Built-in datasets, registered by name. A dataset builder returns train/val/test splits whose samples
carry their ids; label noise is applied by the run, not here, so every dataset gets it the same way."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from swast.data.indexed import DataSplits, IndexedDataset
from swast.registry import datasets


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with ``fraction`` held out, class-stratified and reproducible."""
    ids = np.arange(len(labels))
    if fraction <= 0:
        return ids, ids[:0]
    kept, held = train_test_split(ids, test_size=fraction, random_state=seed, stratify=labels)
    return np.sort(kept), np.sort(held)


@datasets.register("digits")
def build_digits(root: str | None, val_fraction: float, split_seed: int, test_fraction: float = 0.2) -> DataSplits:
    """scikit-learn's 1,797 real 8x8 handwritten digits (ships with scikit-learn: no download)."""
    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None] / 16.0
    labels = bunch.target.astype(np.int64)
    rest, test = stratified_split(labels, test_fraction, split_seed)
    train_pos, val_pos = stratified_split(labels[rest], val_fraction, split_seed)
    train, val = rest[train_pos], rest[val_pos]
    mean, std = images[train].mean(), images[train].std()
    x = torch.from_numpy((images - mean) / std)
    y = torch.from_numpy(labels)

    def split(ids: np.ndarray) -> IndexedDataset:
        index = torch.from_numpy(ids)
        return IndexedDataset(x[index].contiguous(), y[index], classes=[str(c) for c in range(10)])

    return DataSplits(
        train=split(train),
        val=split(val) if len(val) else None,
        test=split(test),
        num_classes=10,
        input_shape=(1, 8, 8),
    )
