"""What a pruner reports when it changed the model under the trainer's feet, and how the optimizer follows.

Structured pruning replaces parameters by physically smaller ones (Torch-Pruning builds new
``nn.Parameter`` objects), so everything that holds parameter references must be pointed at the new ones.
In swast that is the optimizer alone (the model object itself stays the same); the trainer handles a
change in one place and also re-measures FLOPs, which a masked pruner's density change needs too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Replacement:
    """``positions[i]`` is the flat index in ``old`` of the i-th element of ``new`` (row-major); ``None``
    when it is unknown, in which case the optimizer's per-element state for this parameter restarts."""

    old: nn.Parameter
    new: nn.Parameter
    positions: Tensor | None


@dataclass(frozen=True)
class StructureChange:
    """The model changed: ``replaced`` lists parameters swapped for smaller ones, by name. An empty change
    means only the masks' densities moved (the FLOPs account must be re-read, nothing else)."""

    replaced: dict[str, Replacement] = field(default_factory=dict)


def replaced_parameters(before: dict[str, nn.Parameter], after: dict[str, nn.Parameter]) -> list[str]:
    """Names whose parameter object differs between two ``dict(model.named_parameters())`` snapshots."""
    return [name for name, p in after.items() if before.get(name) is not p]


@torch.no_grad()
def remap_optimizer(optimizer: torch.optim.Optimizer, change: StructureChange) -> None:
    """Point ``optimizer`` at the new parameters, keeping their param group (so LR, weight decay and the
    LR scheduler carry on) and the state of the surviving elements (momentum, Adam moments)."""
    new_for = {id(r.old): r.new for r in change.replaced.values()}
    for group in optimizer.param_groups:
        group["params"] = [new_for.get(id(p), p) for p in group["params"]]
    for r in change.replaced.values():
        state = optimizer.state.pop(r.old, None)
        if not state or r.positions is None:
            continue
        optimizer.state[r.new] = {
            key: value.flatten()[r.positions].view_as(r.new).clone()
            if isinstance(value, Tensor) and value.shape == r.old.shape
            else value
            for key, value in state.items()
        }
