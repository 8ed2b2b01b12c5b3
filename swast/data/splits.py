"""From a dataset's training pool and test set to the run's splits: the class-stratified validation
hold-out (``data.val_fraction``, ``data.split_seed``), normalisation with statistics of the training
split, the training augmentation, and the quick-run subset (``data.subset``). Every dataset goes through
these, so every dataset splits, normalises and subsets the same way."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torchvision.transforms import v2

from swast.data.augment import CropFlip
from swast.data.files import ImageFiles, Sample
from swast.data.indexed import DataSplits, IndexedDataset
from swast.errors import UsageError

STATS_SAMPLE = 500  # images decoded to estimate a file-backed dataset's channel mean and std


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with ``fraction`` held out, class-stratified and reproducible."""
    ids = np.arange(len(labels))
    if fraction <= 0:
        return ids, ids[:0]
    try:
        kept, held = train_test_split(ids, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise UsageError(
            f"data.val_fraction: cannot hold out a class-stratified {fraction} of {len(ids)} training samples "
            f"({exc}); use a larger fraction, or 0 for no validation split"
        ) from exc
    return np.sort(kept), np.sort(held)


def take_subset(dataset: IndexedDataset, size: int | float, seed: int) -> IndexedDataset:
    """A class-stratified, seeded sample of the training split: ``size`` samples (an int) or that share
    of them (a float in (0, 1])."""
    n = len(dataset)
    count = size if isinstance(size, int) else round(size * n)
    if count >= n:
        if isinstance(size, int) and size > n:
            raise UsageError(f"data.subset (--subset): {size} samples asked for, but the training split holds only {n}")
        return dataset
    labels = dataset.labels.cpu().numpy()
    try:
        kept, _ = train_test_split(np.arange(n), train_size=count, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise UsageError(f"data.subset (--subset): cannot draw a class-stratified {size} of {n} samples ({exc})") from exc
    return dataset.subset(torch.from_numpy(np.sort(kept)))


def make_splits(pool: IndexedDataset, train: np.ndarray, val: np.ndarray, test: IndexedDataset, input_shape: tuple[int, ...],
                class_flips: dict[int, int] | None) -> DataSplits:
    """Cut the training pool into the train and validation splits; validation is never augmented."""
    classes = pool.classes or []
    return DataSplits(
        train=pool.subset(torch.from_numpy(train)),
        val=pool.subset(torch.from_numpy(val), augment=False) if len(val) else None,
        test=test,
        num_classes=len(classes),
        input_shape=input_shape,
        class_flips=class_flips,
    )


def tensor_splits(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    classes: list[str],
    val_fraction: float,
    split_seed: int,
    *,
    padding: int | None,
    class_flips: dict[int, int] | None = None,
) -> DataSplits:
    """Splits of an in-memory dataset. ``images`` are (N, C, H, W) floats in [0, 1]; they are normalised
    per channel with the training split's statistics and kept as one tensor (the fast batch path).
    ``padding`` turns on the crop-and-flip training augmentation."""
    train, val = stratified_split(labels.numpy(), val_fraction, split_seed)
    chosen = images[torch.from_numpy(train)]
    mean, std = chosen.mean(dim=(0, 2, 3)), chosen.std(dim=(0, 2, 3), correction=0)
    del chosen

    def normalise(x: Tensor) -> Tensor:
        return ((x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous()

    augment = CropFlip(padding, -mean / std) if padding else None
    pool = IndexedDataset(normalise(images), labels, augment=augment, classes=classes)
    test = IndexedDataset(normalise(test_images), test_labels, classes=classes)
    return make_splits(pool, train, val, test, tuple(images.shape[1:]), class_flips)


def file_splits(
    train_samples: list[Sample],
    test_samples: list[Sample],
    classes: list[str],
    val_fraction: float,
    split_seed: int,
    *,
    image_size: int,
    channels: int,
    augment: bool,
    class_flips: dict[int, int] | None = None,
) -> DataSplits:
    """Splits of a dataset read from image files on access (through the DataLoader path). Images are
    resized and centre-cropped to ``image_size``; the normalisation is estimated on up to 500 training
    images chosen with ``split_seed``; the augmentation shifts by up to ``image_size // 8`` pixels."""
    labels = np.array([label for _, label in train_samples], dtype=np.int64)
    train, val = stratified_split(labels, val_fraction, split_seed)
    inputs = ImageFiles([path for path, _ in train_samples], image_size, channels)
    probe = np.random.default_rng(split_seed).permutation(train)[:STATS_SAMPLE]
    mean, std = inputs.channel_stats(probe.tolist())
    normalize = v2.Normalize(mean.tolist(), std.tolist())
    inputs.normalize = normalize
    test_inputs = ImageFiles([path for path, _ in test_samples], image_size, channels, normalize)
    crop_flip = CropFlip(max(image_size // 8, 1), -mean / std) if augment else None
    pool = IndexedDataset(inputs, torch.from_numpy(labels), augment=crop_flip, classes=classes)
    test_labels = torch.tensor([label for _, label in test_samples], dtype=torch.long)
    test = IndexedDataset(test_inputs, test_labels, classes=classes)
    return make_splits(pool, train, val, test, (channels, image_size, image_size), class_flips)
