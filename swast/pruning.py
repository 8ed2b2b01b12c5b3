"""The pruner contract, the layer-wise sparsity plan (uniform or ERK) and density measurement.

A pruner receives per-layer target sparsities keyed by parameter name (trim and cut need different
targets for the FC and the backbone) and the run's real step count; it acts after every backward pass.
The plan is computed here, not inside an adapter, so every unstructured pruner shares it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from swast.models.classifier import prunable_weights
from swast.registry import register_pruner


@dataclass(frozen=True)
class PrunePlan:
    targets: dict[str, float]
    total_steps: int


class Pruner:
    """Base class for pruners; the defaults describe a dense model."""

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        pass

    def step(self) -> bool:
        """Called after ``loss.backward()``; returns whether the optimizer should step this iteration."""
        return True

    def masks(self) -> dict[str, Tensor]:
        """Boolean keep-masks of the pruned weights, by parameter name."""
        return {}

    def needs_dense_gradient(self) -> bool:
        """Whether the backward pass just taken had to compute a dense gradient (FLOPs accounting)."""
        return False

    def settings(self) -> dict[str, Any]:
        """Values the pruner derived from the run (logged with the config)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@register_pruner("none")
class NoPruner(Pruner):
    """Keeps the model dense."""


def _erk_score(shape: torch.Size) -> float:
    return sum(shape) / math.prod(shape)


def distribute_sparsity(
    shapes: dict[str, torch.Size],
    sparsity: float,
    distribution: str,
    fixed: dict[str, float] | None = None,
) -> dict[str, float]:
    """Per-layer sparsities whose weighted total over ``shapes`` equals ``sparsity``.

    Layers in ``fixed`` keep their given sparsity (e.g. a dense first layer) and the free layers make up
    for them, so the requested rate holds for the whole scope. ERK gives each free layer a density
    proportional to (sum of dims)/(product of dims) (Evci et al., 2020); layers that would exceed full
    density become dense and the rest are solved again, as in RigL's reference code.
    """
    fixed = dict(fixed or {})
    total = sum(math.prod(s) for s in shapes.values())
    while True:
        free = {name: shape for name, shape in shapes.items() if name not in fixed}
        if not free:
            return {n: fixed[n] for n in shapes}
        kept_needed = (1 - sparsity) * total - sum((1 - fixed[n]) * math.prod(shapes[n]) for n in fixed)
        if kept_needed < 0:
            raise ValueError(
                f"sparsity {sparsity} is unreachable: the layers kept at a fixed sparsity already hold more "
                "weights than the target allows (set pruner.dense_first_layer=false or lower the rate)"
            )
        score = {n: (_erk_score(s) if distribution == "erk" else 1.0) for n, s in free.items()}
        eps = kept_needed / sum(score[n] * math.prod(free[n]) for n in free)
        saturated = [n for n in free if eps * score[n] > 1.0]
        if not saturated:
            result = {**{n: 1.0 - eps * score[n] for n in free}, **fixed}
            return {n: min(max(result[n], 0.0), 1.0) for n in shapes}
        fixed.update({n: 0.0 for n in saturated})


def plan_targets(
    model: nn.Module,
    classifier: str,
    scope: str,
    rate: float,
    fc_sparsity: float,
    distribution: str,
    dense_first_layer: bool,
) -> dict[str, float]:
    """Target sparsity per weight for a method's pruning scope: trim prunes the FC at ``rate``; cut
    prunes the backbone at ``rate`` (a dense first layer is compensated) and holds the FC at
    ``fc_sparsity``."""
    if scope == "none":
        return {}
    weights = prunable_weights(model)
    fc = f"{classifier}.weight"
    if scope == "fc":
        return {fc: rate}
    backbone = {name: w.shape for name, w in weights.items() if name != fc}
    fixed = {next(iter(backbone)): 0.0} if dense_first_layer and len(backbone) > 1 else {}
    targets = distribute_sparsity(backbone, rate, distribution, fixed)
    targets[fc] = fc_sparsity
    return targets


def random_mask(weight: Tensor, sparsity: float, generator: torch.Generator | None = None) -> Tensor:
    """A keep-mask with exactly ``int(sparsity * numel)`` zeros at random positions."""
    n = weight.numel()
    drop = torch.randperm(n, generator=generator)[: int(sparsity * n)]
    mask = torch.ones(n, dtype=torch.bool)
    mask[drop] = False
    return mask.view_as(weight).to(weight.device)


@dataclass(frozen=True)
class Density:
    per_layer: dict[str, float]
    overall: float
    fc: float
    backbone: float


def measure_density(model: nn.Module, masks: dict[str, Tensor], classifier: str) -> Density:
    """Share of kept weights per prunable layer, overall, in the FC and in the backbone, read from the
    masks (RigL regrows weights at zero, so counting non-zeros would under-report)."""
    weights = prunable_weights(model)
    fc = f"{classifier}.weight"
    kept: dict[str, int] = {}
    for name, w in weights.items():
        mask = masks.get(name)
        kept[name] = int(mask.sum()) if mask is not None else w.numel()
    per_layer = {name: kept[name] / weights[name].numel() for name in weights}

    def share(names: list[str]) -> float:
        total = sum(weights[n].numel() for n in names)
        return sum(kept[n] for n in names) / total if total else 1.0

    backbone = [n for n in weights if n != fc]
    return Density(per_layer, share(list(weights)), share([fc]), share(backbone))
