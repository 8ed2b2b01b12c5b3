"""Static sparse training: one random mask at the planned per-layer sparsity, fixed for the whole run.

Sparse from scratch with no rewiring: the control that shows what RigL's drop/grow adds. The mask is drawn
once at attach with the run's seeded generator (``swast.pruning.random_mask``, the same draw RigL starts
from) and enforced by ``swast.masks.WeightMasks``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from swast.masks import WeightMasks
from swast.pruning import PrunePlan, Pruner, random_mask
from swast.registry import register_pruner


@register_pruner("static")
class StaticPruner(Pruner):
    """A fixed random mask at the planned per-layer sparsity (sparse from scratch, no rewiring)."""

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        self.weights = WeightMasks(model, optimizer)
        self.weights.set({name: random_mask(self.weights.params[name], s) for name, s in plan.targets.items() if s > 0})

    def masks(self) -> dict[str, Tensor]:
        return dict(self.weights.masks)

    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights.set(state["masks"])
