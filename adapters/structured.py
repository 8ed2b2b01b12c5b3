"""Structured (channel) pruning with Torch-Pruning: the model physically shrinks while it trains.

Torch-Pruning traces the model once into a dependency graph, so coupled channels (a residual stream, a
conv and its BatchNorm, the FC's inputs) are removed together; the FC keeps its outputs (the classes).
At each pruning event of the Zhu & Gupta cubic schedule (``swast.pruning.GradualSchedule``) its
``BasePruner`` removes the least important channels of every layer until the channel ratio the schedule
asks for is reached; after the last event the conv and linear weights hold about ``1 - pruner.rate`` of
their original elements, so ``--prune-rate`` means the same share of weights removed as for the
unstructured pruners (the channel ratio that gets there is solved from the graph at attach).

Torch-Pruning builds new, smaller ``nn.Parameter`` objects and slices their gradients. To carry the
optimizer's momentum over, each parameter's gradient is temporarily replaced by the positions of its
elements, which the library slices exactly like the weights; the trainer remaps the optimizer state with
them (``swast.structure.remap_optimizer``). A resumed run replays Torch-Pruning's pruning history on the
freshly built model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from swast.errors import UsageError
from swast.models.classifier import PRUNABLE_TYPES, find_classifier, prunable_weights
from swast.pruning import GradualSchedule, PrunePlan, Pruner
from swast.registry import register_pruner
from swast.structure import Replacement, StructureChange, replaced_parameters

IMPORTANCE = ("magnitude", "taylor", "random")


def _importance(name: str) -> Any:
    import torch_pruning as tp

    if name == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.RandomImportance()


def channel_ratio_for_density(graph: Any, model: nn.Module, ignored: list[nn.Module], density: float) -> tuple[float, float]:
    """The smallest channel ratio after which the prunable weights keep at most ``density`` of their
    elements, and the density it gives. Torch-Pruning keeps ``int(C * (1 - ratio))`` of a group's C
    channels; a weight loses that share along each of its pruned dimensions (out and/or in)."""
    dims: dict[nn.Module, list[int]] = {}
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=list(PRUNABLE_TYPES)):
        channels = graph.get_out_channels(group[0].dep.target.module)
        for dep, _ in group:
            if isinstance(dep.target.module, PRUNABLE_TYPES):
                dims.setdefault(dep.target.module, []).append(channels)
    total = sum(w.numel() for w in prunable_weights(model).values())

    def kept(ratio: float) -> float:
        pruned = 0.0
        for module, channel_counts in dims.items():
            share = 1.0
            for c in channel_counts:
                share *= int(c * (1 - ratio)) / c
            pruned += module.weight.numel() * (1 - share)
        return 1 - pruned / total

    low, high = 0.0, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if kept(mid) > density else (low, mid)
    return high, kept(high)


@register_pruner("structured")
class StructuredPruner(Pruner):
    """Channel pruning with Torch-Pruning on a cubic schedule; the model really shrinks (FC outputs kept)."""

    layer_targets = False

    def __init__(
        self,
        importance: str = "magnitude",
        start_fraction: float = 0.0,
        end_fraction: float = 0.75,
        start_step: int | None = None,
        end_step: int | None = None,
        frequency: int | None = None,
    ) -> None:
        if importance not in IMPORTANCE:
            raise ValueError(f"importance must be one of {', '.join(IMPORTANCE)}, got '{importance}'")
        if not 0.0 <= start_fraction < 1.0:
            raise ValueError("start_fraction must be in [0, 1)")
        if not 0.0 < end_fraction <= 1.0:
            raise ValueError("end_fraction must be in (0, 1]")
        if frequency is not None and frequency < 1:
            raise ValueError("frequency must be at least 1 step")
        self.importance = importance
        self.start_fraction, self.end_fraction = start_fraction, end_fraction
        self.start_step, self.end_step, self.frequency = start_step, end_step, frequency
        self.steps_taken = 0

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        import torch_pruning as tp

        if plan.overrides:
            raise UsageError(
                "pruner.overrides: per-layer sparsities apply to unstructured pruners; the structured pruner "
                "removes coupled channels at one ratio derived from pruner.rate. Remove the overrides"
            )
        if plan.scope != "backbone":
            raise UsageError(
                f"pruner.scope: the structured pruner removes channels of the backbone (the FC keeps its outputs, "
                f"its inputs shrink with the last convolution) and cannot prune scope '{plan.scope}'; use "
                "--method prune-only or swast-cut, or --set pruner.scope=backbone"
            )
        self.model = model
        self.schedule = GradualSchedule.build(
            plan.total_steps, 5, self.start_fraction, self.end_fraction, self.start_step, self.end_step, self.frequency
        )
        self.events = self.schedule.events()
        ignored = [model.get_submodule(find_classifier(model))]
        example = torch.zeros(1, *plan.input_shape, device=next(model.parameters()).device)
        was_training = model.training
        model.eval()  # tracing runs a forward pass: BatchNorm statistics must not move
        try:
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
            self.target_density = 1.0 - plan.rate
            self.channel_ratio, self.planned_density = channel_ratio_for_density(graph, model, ignored, self.target_density)
            steps = [self.schedule.start, *self.events]
            self.torch_pruner = tp.pruner.BasePruner(
                model,
                example,
                importance=_importance(self.importance),
                pruning_ratio=self.channel_ratio,
                iterative_steps=len(self.events),
                iterative_pruning_ratio_scheduler=lambda ratio, _: [ratio * self.schedule.progress(t) for t in steps],
                ignored_layers=ignored,
                root_module_types=list(PRUNABLE_TYPES),
            )
        finally:
            model.train(was_training)

    def step(self) -> bool:
        self.steps_taken += 1
        if self.steps_taken in self.events:
            self.structure_changed(self.prune())
        return True

    @torch.no_grad()
    def prune(self) -> StructureChange:
        """One pruning event, after the backward pass: importance is computed with the real gradients
        (Taylor needs them), then each gradient is swapped for its element positions while Torch-Pruning
        slices, and finally rebuilt from the real gradient at the surviving positions."""
        before = dict(self.model.named_parameters())
        grads = {name: p.grad for name, p in before.items()}
        trackable = [n for n, p in before.items() if p.numel() <= 2 / torch.finfo(p.dtype).eps]  # exact integers
        groups = self.torch_pruner.step(interactive=True)  # computes every group's importance on the first draw
        for i, group in enumerate(groups):
            if i == 0:
                for name in trackable:
                    p = before[name]
                    p.grad = torch.arange(p.numel(), dtype=p.dtype, device=p.device).view_as(p)
            group.prune()
        after = dict(self.model.named_parameters())
        replaced = set(replaced_parameters(before, after))
        change: dict[str, Replacement] = {}
        for name, p in after.items():
            positions: Tensor | None = None
            if name in trackable:
                if name in replaced:
                    positions = p.grad.flatten().long() if p.grad is not None else None
                    grad = grads[name]
                    p.grad = grad.flatten()[positions].view_as(p) if grad is not None and positions is not None else None
                else:
                    p.grad = grads[name]
            if name in replaced:
                change[name] = Replacement(before[name], p, positions)
        return StructureChange(change)

    def settings(self) -> dict[str, Any]:
        return {
            "importance": self.importance,
            "channel_ratio": self.channel_ratio,
            "target_density": self.target_density,
            "planned_density": self.planned_density,
            "start_step": self.schedule.start,
            "end_step": self.schedule.end,
            "frequency": self.schedule.frequency,
            "events": len(self.events),
            "events_done": self.torch_pruner.current_step,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps_taken": self.steps_taken,
            "events_done": self.torch_pruner.current_step,
            "history": [list(entry) for entry in self.torch_pruner.pruning_history()],
            # Torch-Pruning records each layer's channel count at its first pruning and prunes later
            # events relative to it; a replayed model must not take its shrunk width as the start.
            "initial_channels": dict(self.torch_pruner._scope_initial_channels),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replays the recorded channel removals on this (freshly built, unpruned) model, so that the
        checkpoint's model and optimizer state fit it; load this before the model and the optimizer."""
        if self.torch_pruner.current_step:
            raise RuntimeError("StructuredPruner.load_state_dict needs a freshly attached pruner (nothing pruned yet)")
        before = dict(self.model.named_parameters())
        self.torch_pruner.load_pruning_history([list(entry) for entry in state["history"]])
        self.torch_pruner.current_step = int(state["events_done"])
        self.torch_pruner._scope_initial_channels.update(state["initial_channels"])
        self.steps_taken = int(state["steps_taken"])
        after = dict(self.model.named_parameters())
        self.structure_changed(
            StructureChange({n: Replacement(before[n], after[n], None) for n in replaced_parameters(before, after)})
        )
