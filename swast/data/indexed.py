"""Index-aware datasets: selectors, stored logits and noise bookkeeping all address samples by id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

BatchTransform = Callable[[Tensor], Tensor]


class IndexedDataset(Dataset):
    """A split whose sample i yields ``(x, label, i)``.

    ``inputs`` is either one tensor holding every sample (kept in memory, sliced a batch at a time: the
    fast path for digits, Fashion-MNIST and CIFAR) or a map-style dataset returning one input tensor per
    index (image folders). ``labels`` are the labels training sees (noisy where noise was applied);
    ``clean_labels`` keep the truth so reports can say which samples are noisy.
    ``augment`` is applied to training batches only; selection, state recording and evaluation see the
    plain view. ``num_workers`` is how many DataLoader processes decode a file-backed split, in every
    pass over it (training, selection, state recording, evaluation).
    """

    def __init__(
        self,
        inputs: Tensor | Dataset,
        labels: Tensor,
        *,
        augment: BatchTransform | None = None,
        classes: list[str] | None = None,
    ) -> None:
        self.inputs = inputs
        self.labels = labels.long()
        self.clean_labels = self.labels.clone()
        self.augment = augment
        self.classes = classes
        self.num_workers = 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        return self.inputs[i], self.labels[i], i

    @property
    def in_memory(self) -> bool:
        return isinstance(self.inputs, Tensor)

    @property
    def noisy(self) -> Tensor:
        """Boolean mask of samples whose training label differs from the true one."""
        return self.labels != self.clean_labels

    def fetch(self, ids: Tensor, *, augment: bool = False) -> tuple[Tensor, Tensor]:
        """Inputs and labels of ``ids`` as one batch (in-memory datasets only)."""
        assert isinstance(self.inputs, Tensor)
        x = self.inputs.index_select(0, ids.to(self.inputs.device))
        if augment and self.augment is not None:
            x = self.augment(x)
        return x, self.labels.index_select(0, ids.to(self.labels.device))

    def subset(self, ids: Tensor, *, augment: bool = True) -> IndexedDataset:
        """The samples ``ids`` as a split of their own, numbered 0..len(ids)-1 (how validation splits and
        quick-run subsets are cut; files are shared, in-memory inputs copied)."""
        ids = ids.long().cpu()
        inputs = self.inputs.index_select(0, ids.to(self.inputs.device)) if isinstance(self.inputs, Tensor) else Subset(self.inputs, ids.tolist())
        part = IndexedDataset(inputs, self.labels.cpu()[ids], augment=self.augment if augment else None, classes=self.classes)
        part.clean_labels = self.clean_labels.cpu()[ids]
        return part

    def to(self, device: torch.device) -> IndexedDataset:
        """Move in-memory inputs and labels to ``device`` once, so batches need no copies."""
        if isinstance(self.inputs, Tensor):
            self.inputs = self.inputs.to(device)
        self.labels = self.labels.to(device)
        self.clean_labels = self.clean_labels.to(device)
        return self


@dataclass
class DataSplits:
    train: IndexedDataset
    val: IndexedDataset | None
    test: IndexedDataset
    num_classes: int
    input_shape: tuple[int, ...]
    class_flips: dict[int, int] | None = None  # the dataset's asymmetric-noise mapping (see noise.py)
