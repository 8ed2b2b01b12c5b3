"""Index-aware datasets: selectors, stored logits and noise bookkeeping all address samples by id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

BatchTransform = Callable[[Tensor], Tensor]


class IndexedDataset(Dataset):
    """A split whose sample i yields ``(x, label, i)``.

    ``inputs`` is either one tensor holding every sample (kept in memory, sliced a batch at a time: the
    fast path for digits, Fashion-MNIST and CIFAR) or a map-style dataset returning one input tensor per
    index (image folders). ``labels`` are the labels training sees (noisy where noise was applied);
    ``clean_labels`` keep the truth so reports can say which samples are noisy.
    ``augment`` is applied to training batches only; selection, state recording and evaluation see the
    plain view.
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
