"""The selector contract: ``select(ctx)`` returns the chosen sample ids, optionally with weights.

Any class with that method, registered under a name, is a selector. The core validates what comes back
(exact budget, unique, in range) so a faulty selector is named instead of silently training on garbage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from swast.data.indexed import IndexedDataset
from swast.data.loading import iterate_batches
from swast.errors import SelectorError


@dataclass
class Coreset:
    indices: Tensor
    weights: Tensor | None = None

    def __len__(self) -> int:
        return int(self.indices.numel())


@dataclass
class SelectionContext:
    """What a selector may use. ``model`` is the current, masked model in eval mode; ``dataset`` is the
    full training split in its un-augmented view, with the labels training sees."""

    model: nn.Module
    dataset: IndexedDataset
    budget: int
    num_classes: int
    device: torch.device
    epoch: int
    total_epochs: int
    batch_size: int
    classifier: str
    rng: np.random.Generator
    lr: float
    masks: dict[str, Tensor] = field(default_factory=dict)
    val_dataset: IndexedDataset | None = None

    def batches(self, dataset: IndexedDataset | None = None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Sequential, un-augmented ``(x, y, ids)`` batches on the run's device."""
        ds = dataset if dataset is not None else self.dataset
        ids = torch.arange(len(ds))
        for x, y, idx, _ in iterate_batches(ds, ids, self.batch_size, shuffle=False, augment=False):
            yield x.to(self.device), y.to(self.device), idx.to(self.device)


class Selector:
    """Optional base class. ``forward_passes`` tells the FLOPs account how many forward passes over the
    full training set one selection costs (0 for selectors that never look at the model)."""

    forward_passes: float = 1.0

    def select(self, ctx: SelectionContext) -> Coreset | Tensor | Sequence[int] | tuple[object, object]:
        raise NotImplementedError


def to_coreset(name: str, result: object, ctx: SelectionContext) -> Coreset:
    """Normalise a selector's return value and check it is exactly ``ctx.budget`` distinct valid ids."""
    weights: object = None
    if isinstance(result, Coreset):
        ids, weights = result.indices, result.weights
    elif isinstance(result, tuple) and len(result) == 2:
        ids, weights = result
    else:
        ids = result
    try:
        index = torch.as_tensor(np.asarray(ids.cpu() if isinstance(ids, Tensor) else ids), dtype=torch.long).flatten()
    except (TypeError, ValueError) as exc:
        raise SelectorError(f"selector '{name}' returned ids that are not integers: {exc}") from exc
    n = len(ctx.dataset)
    if index.numel() != ctx.budget:
        raise SelectorError(f"selector '{name}' returned {index.numel()} ids but the budget is {ctx.budget}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
        raise SelectorError(f"selector '{name}' returned ids outside [0, {n})")
    if torch.unique(index).numel() != index.numel():
        raise SelectorError(f"selector '{name}' returned duplicate ids")
    weight_tensor = None
    if weights is not None:
        weight_tensor = torch.as_tensor(
            np.asarray(weights.detach().cpu() if isinstance(weights, Tensor) else weights), dtype=torch.float32
        ).flatten()
        if weight_tensor.numel() != index.numel():
            raise SelectorError(f"selector '{name}' returned {weight_tensor.numel()} weights for {index.numel()} ids")
        if not torch.isfinite(weight_tensor).all() or (weight_tensor < 0).any():
            raise SelectorError(f"selector '{name}' returned negative or non-finite weights")
    return Coreset(index, weight_tensor)


def budget_for(fraction: float, n: int) -> int:
    """round(fraction * n), but at least 2 (a training batch of one breaks BatchNorm) and at most n."""
    return min(n, max(2, round(fraction * n)))
