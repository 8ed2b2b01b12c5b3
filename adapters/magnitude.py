"""Gradual magnitude pruning (Zhu & Gupta, 2017): the pruning-only baseline SWaST is compared against.

Starting dense, at each pruning event every planned layer drops its smallest-magnitude weights until it
holds the sparsity the cubic schedule asks for at that step; at the end step each layer sits at its
planned sparsity (uniform, ERK or overridden; swast's layer-wise plan). Pruned weights stay pruned. The
selection rule is torch.nn.utils.prune's ``L1Unstructured``; the masks are enforced by
``swast.masks.WeightMasks`` (why not torch's reparametrisation: see there).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from swast.masks import WeightMasks
from swast.pruning import GradualSchedule, PrunePlan, Pruner
from swast.registry import register_pruner
from swast.structure import StructureChange


@register_pruner("magnitude")
class MagnitudePruner(Pruner):
    """Gradual magnitude pruning (Zhu & Gupta, 2017), cubic schedule, to swast's per-layer plan."""

    def __init__(
        self,
        start_fraction: float = 0.0,
        end_fraction: float = 0.75,
        start_step: int | None = None,
        end_step: int | None = None,
        frequency: int | None = None,
    ) -> None:
        if not 0.0 <= start_fraction < 1.0:
            raise ValueError("start_fraction must be in [0, 1)")
        if not 0.0 < end_fraction <= 1.0:
            raise ValueError("end_fraction must be in (0, 1]")
        if frequency is not None and frequency < 1:
            raise ValueError("frequency must be at least 1 step")
        self.start_fraction, self.end_fraction = start_fraction, end_fraction
        self.start_step, self.end_step, self.frequency = start_step, end_step, frequency
        self.schedule: GradualSchedule | None = None
        self.targets: dict[str, float] = {}
        self.steps_taken = 0

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        self.schedule = GradualSchedule.build(
            plan.total_steps, 20, self.start_fraction, self.end_fraction, self.start_step, self.end_step, self.frequency
        )
        self.targets = {name: s for name, s in plan.targets.items() if s > 0}
        self.weights = WeightMasks(model, optimizer)
        self.weights.set({name: torch.ones_like(self.weights.params[name], dtype=torch.bool) for name in self.targets})
        self.events = set(self.schedule.events())

    def step(self) -> bool:
        self.steps_taken += 1
        if self.steps_taken in self.events:
            self.prune_to(self.steps_taken)
            self.structure_changed(StructureChange())
        return True

    @torch.no_grad()
    def prune_to(self, step: int) -> None:
        assert self.schedule is not None
        share = self.schedule.progress(step)
        masks = {}
        for name, target in self.targets.items():
            weight = self.weights.params[name]
            scores = weight.abs() * self.weights.masks[name]  # pruned weights score 0 and stay pruned
            method = prune.L1Unstructured(amount=int(share * target * weight.numel()))
            masks[name] = method.compute_mask(scores, torch.ones_like(weight)).bool()
        self.weights.set(masks)

    def masks(self) -> dict[str, Tensor]:
        return dict(self.weights.masks)

    def settings(self) -> dict[str, Any]:
        assert self.schedule is not None
        return {"start_step": self.schedule.start, "end_step": self.schedule.end, "frequency": self.schedule.frequency,
                "events": len(self.events)}

    def state_dict(self) -> dict[str, Any]:
        return {"steps_taken": self.steps_taken, "masks": self.masks()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_taken = int(state["steps_taken"])
        self.weights.set(state["masks"])
        self.structure_changed(StructureChange())
