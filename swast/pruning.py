"""The pruner contract, the layer-wise sparsity plan (uniform, ERK, per-layer overrides), the gradual
pruning schedule and density measurement.

A pruner receives per-layer target sparsities keyed by parameter name (trim and cut need different
targets for the FC and the backbone) and the run's real step count; it acts after every backward pass.
The plan is computed here, not inside an adapter, so every unstructured pruner shares it.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from swast.errors import UsageError
from swast.models.classifier import prunable_weights
from swast.registry import register_pruner
from swast.structure import StructureChange


@dataclass(frozen=True)
class PrunePlan:
    """What a run asks of its pruner. ``targets`` is the per-weight sparsity plan unstructured pruners
    follow; ``rate``, ``scope`` and ``overrides`` are the user's request behind it (a structured pruner
    works from the rate); ``input_shape`` is one sample's shape, for pruners that trace the model."""

    targets: dict[str, float]
    total_steps: int
    rate: float = 0.0
    scope: str = "none"
    overrides: dict[str, float] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()


StructureListener = Callable[[StructureChange], None]


class Pruner:
    """Base class for pruners; the defaults describe a dense model.

    ``layer_targets`` says whether the pruner follows the per-layer plan (unstructured pruners) or only
    the scope's rate. A pruner that replaces parameters or changes its masks' densities during a step or in
    ``load_state_dict`` reports it through ``structure_changed``, so the trainer can follow.
    """

    layer_targets: ClassVar[bool] = True
    _structure_listener: StructureListener | None = None

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        pass

    def on_structure_change(self, listener: StructureListener) -> None:
        """Set by the trainer: ``listener`` runs right after every change, before the optimizer steps."""
        self._structure_listener = listener

    def structure_changed(self, change: StructureChange) -> None:
        if self._structure_listener is not None:
            self._structure_listener(change)

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


def match_overrides(overrides: dict[str, float], names: list[str]) -> dict[str, float]:
    """Per-weight sparsities from glob patterns; a pattern matches a weight's parameter name
    (``layer1.0.conv1.weight``) or its module name (``layer1.0.conv1``)."""
    matched: dict[str, tuple[str, float]] = {}
    for pattern, sparsity in overrides.items():
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n.removesuffix(".weight"), pattern)]
        if not hits:
            raise UsageError(
                f"pruner.overrides: pattern '{pattern}' matches no prunable weight. Prunable weights are "
                f"{', '.join(names[:4])}{', ...' if len(names) > 4 else ''} ({len(names)} in all); patterns are globs "
                "on these names or their module names, e.g. 'layer1.*'"
            )
        for name in hits:
            earlier = matched.get(name)
            if earlier is not None and earlier[1] != sparsity:
                raise UsageError(
                    f"pruner.overrides: '{name}' matches both '{earlier[0]}' ({earlier[1]}) and '{pattern}' "
                    f"({sparsity}); make the patterns disjoint"
                )
            matched[name] = (pattern, sparsity)
    return {name: sparsity for name, (_, sparsity) in matched.items()}


def plan_targets(
    model: nn.Module,
    classifier: str,
    scope: str,
    rate: float,
    fc_sparsity: float,
    distribution: str,
    dense_first_layer: bool,
    overrides: dict[str, float] | None = None,
) -> dict[str, float]:
    """Target sparsity per weight for a method's pruning scope: trim prunes the FC at ``rate``; cut
    prunes the backbone at ``rate`` (a dense first layer is compensated) and holds the FC at
    ``fc_sparsity``. Overridden weights keep their given sparsity; inside the scope the other weights
    make up for them so the scope's rate still holds, outside it they are simply pruned as given."""
    if scope == "none":
        return {}
    weights = prunable_weights(model)
    fixed = match_overrides(overrides or {}, list(weights))
    fc = f"{classifier}.weight"
    in_scope = {name: w.shape for name, w in weights.items() if (name == fc) == (scope == "fc")}
    held = {name: s for name, s in fixed.items() if name in in_scope}
    first = next(iter(in_scope))
    if scope == "backbone" and dense_first_layer and len(in_scope) > 1 and first not in held:
        held[first] = 0.0
    try:
        targets = distribute_sparsity(in_scope, rate, distribution, held)
    except ValueError as exc:
        raise UsageError(f"pruner.rate / pruner.overrides: {exc}") from None
    reached = sum(targets[n] * math.prod(s) for n, s in in_scope.items()) / sum(math.prod(s) for s in in_scope.values())
    if not math.isclose(reached, rate, abs_tol=1e-9):
        raise UsageError(
            f"pruner.overrides: with the overridden layers held as given, the other layers of the pruned scope "
            f"({scope}) cannot make pruner.rate={rate} hold: the scope would be at sparsity {reached:.4f}. "
            "Override fewer layers, lower their sparsity or change the rate"
        )
    if scope == "backbone":
        targets[fc] = fc_sparsity
    return {**targets, **fixed}


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


def measure_density(
    model: nn.Module, masks: dict[str, Tensor], classifier: str, original: dict[str, int] | None = None
) -> Density:
    """Share of kept weights per prunable layer, overall, in the FC and in the backbone, read from the
    masks (RigL regrows weights at zero, so counting non-zeros would under-report).

    Kept counts are taken relative to ``original`` element counts when given (structured pruning shrinks
    the weights themselves: density is then the share of the original weights that still exist),
    otherwise relative to the current shapes (what the FLOPs model needs)."""
    weights = prunable_weights(model)
    fc = f"{classifier}.weight"
    size = original if original is not None else {name: w.numel() for name, w in weights.items()}
    kept: dict[str, int] = {}
    for name, w in weights.items():
        mask = masks.get(name)
        kept[name] = int(mask.sum()) if mask is not None else w.numel()
    per_layer = {name: kept[name] / size[name] for name in weights}

    def share(names: list[str]) -> float:
        total = sum(size[n] for n in names)
        return sum(kept[n] for n in names) / total if total else 1.0

    backbone = [n for n in weights if n != fc]
    return Density(per_layer, share(list(weights)), share([fc]), share(backbone))


def count_parameters(model: nn.Module, masks: dict[str, Tensor]) -> int:
    """All parameters of the model (biases and norms included) minus the masked-out weights."""
    params = dict(model.named_parameters())
    return sum(p.numel() for p in params.values()) - sum(int((~m).sum()) for n, m in masks.items() if n in params)


def resolve_window(
    total_steps: int,
    start_fraction: float,
    end_fraction: float,
    start_step: int | None = None,
    end_step: int | None = None,
) -> tuple[int, int]:
    """The optimizer-step window ``(start, end]`` a pruner acts in: absolute steps where given, otherwise
    fractions of the run's real step count (which shrinks once training moves to coresets)."""
    start = start_step if start_step is not None else int(start_fraction * total_steps)
    end = end_step if end_step is not None else max(1, int(end_fraction * total_steps))
    if end > total_steps:
        raise UsageError(
            f"pruner.options.end_step: {end} is beyond the run's last step ({total_steps} optimizer steps); "
            "lower it or use end_fraction"
        )
    if not 0 <= start < end:
        raise UsageError(
            f"pruner.options: the pruning window must satisfy 0 <= start < end, got start {start}, end {end} "
            f"(of {total_steps} steps); check start_step/start_fraction and end_step/end_fraction"
        )
    return start, end


@dataclass(frozen=True)
class GradualSchedule:
    """Zhu & Gupta (2017) gradual pruning: at pruning events every ``frequency`` steps after ``start``
    (and always at ``end``) the sparsity becomes s_f * (1 - (1 - (t - start) / (end - start))^3), so it
    rises fast while the network is plastic and levels off at the target s_f at step ``end``."""

    start: int
    end: int
    frequency: int

    @classmethod
    def build(
        cls,
        total_steps: int,
        events: int,
        start_fraction: float,
        end_fraction: float,
        start_step: int | None,
        end_step: int | None,
        frequency: int | None,
    ) -> GradualSchedule:
        """``frequency`` defaults to a spacing that gives about ``events`` pruning events."""
        start, end = resolve_window(total_steps, start_fraction, end_fraction, start_step, end_step)
        return cls(start, end, frequency or max(1, (end - start) // events))

    def events(self) -> list[int]:
        return [*range(self.start + self.frequency, self.end, self.frequency), self.end]

    def progress(self, step: int) -> float:
        """Share of the final sparsity reached at ``step`` (0 before start, 1 from end on)."""
        t = min(max(step - self.start, 0) / (self.end - self.start), 1.0)
        return 1.0 - (1.0 - t) ** 3
