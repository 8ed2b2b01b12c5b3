"""RigL through rigl-torch's ``RigLScheduler``, fed swast's per-layer targets.

rigl-torch only knows one uniform sparsity; its constructor also accepts a saved state, which is the
documented way to give it arbitrary per-layer sparsities and initial masks. The step schedule (T_end,
update interval) is derived from the run's real number of optimizer steps, which shrinks once training
moves to coresets, unless ``end_step`` gives T_end in absolute steps.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from swast.pruning import PrunePlan, Pruner, random_mask, resolve_window
from swast.registry import register_pruner


def auto_update_interval(t_end: int) -> int:
    """RigL's 100 steps when the run is long enough; otherwise about 20 updates before T_end."""
    return max(2, min(100, t_end // 20))


@register_pruner("rigl")
class RigL(Pruner):
    """RigL (Evci et al., 2020) via rigl-torch: drop by magnitude, grow by dense gradient, cosine drop decay."""

    def __init__(
        self,
        update_interval: int | None = None,
        drop_fraction: float = 0.3,
        end_fraction: float = 0.75,
        static_topology: bool = False,
        end_step: int | None = None,
    ) -> None:
        if update_interval is not None and update_interval < 2:
            raise ValueError("update_interval must be at least 2 steps")
        if not 0.0 < drop_fraction < 1.0:
            raise ValueError("drop_fraction must be in (0, 1)")
        if not 0.0 < end_fraction <= 1.0:
            raise ValueError("end_fraction must be in (0, 1]")
        self.update_interval = update_interval
        self.drop_fraction = drop_fraction
        self.end_fraction = end_fraction
        self.end_step = end_step
        self.static_topology = static_topology
        self.scheduler: Any = None
        self.names: list[str] = []
        self._dense_gradient = False

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: PrunePlan) -> None:
        from rigl_torch.RigL import RigLScheduler
        from rigl_torch.util import get_W

        weights, linear_mask = get_W(model, return_linear_layers_mask=True)
        name_of = {id(p): name for name, p in model.named_parameters()}
        self.names = [name_of[id(w)] for w in weights]
        missing = sorted(set(plan.targets) - set(self.names))
        if missing:
            raise ValueError(f"rigl-torch does not manage these layers, so it cannot prune them: {missing}")
        sparsity = [float(plan.targets.get(name, 0.0)) for name in self.names]
        masks = [random_mask(w, s) if s > 0 else None for w, s in zip(weights, sparsity)]
        _, t_end = resolve_window(plan.total_steps, 0.0, self.end_fraction, end_step=self.end_step)
        delta = self.update_interval or auto_update_interval(t_end)
        kept = sum(int(m.sum()) if m is not None else w.numel() for w, m in zip(weights, masks))
        state = {
            "dense_allocation": kept / sum(w.numel() for w in weights),
            "S": sparsity,
            "N": [w.numel() for w in weights],
            "hyperparams": {
                "delta_T": delta,
                "alpha": self.drop_fraction,
                "T_end": t_end,
                "ignore_linear_layers": False,
                "static_topo": self.static_topology,
                "sparsity_distribution": "uniform",
                "grad_accumulation_n": 1,
            },
            "step": 0,
            "rigl_steps": 0,
            "backward_masks": masks,
            "_linear_layers_mask": linear_mask,
        }
        self.scheduler = RigLScheduler(model, optimizer, state_dict=state)
        # rigl-torch wraps optimizer.step after the LR scheduler did (the order it requires); the
        # scheduler's resulting warning is about that wrapper, not about a real ordering mistake.
        warnings.filterwarnings("ignore", message=r"Seems like `optimizer.step\(\)` has been overridden", category=UserWarning)

    def step(self) -> bool:
        self._dense_gradient = self.scheduler.check_if_backward_hook_should_accumulate_grad()
        return bool(self.scheduler())

    def needs_dense_gradient(self) -> bool:
        return self._dense_gradient

    def masks(self) -> dict[str, Tensor]:
        return {
            name: mask
            for name, mask, s in zip(self.names, self.scheduler.backward_masks, self.scheduler.S)
            if s > 0 and mask is not None
        }

    def settings(self) -> dict[str, Any]:
        s = self.scheduler
        return {"update_interval": s.delta_T, "t_end": s.T_end, "drop_fraction": s.alpha, "updates_done": s.rigl_steps}

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
        self.scheduler.apply_mask_to_weights()
