"""Training FLOPs in the RigL convention: a training step costs 3x the forward FLOPs of the (sparse)
model per sample, layer FLOPs scaled by layer density; a RigL step's dense gradient, selection passes and
state recording are added. Reported relative to dense training on the full data for all epochs.

Per-layer forward FLOPs are measured once with torch's own ``FlopCounterMode``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from swast.models.classifier import prunable_weights


class FlopsModel:
    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> None:
        was_training = model.training
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
        model.train(was_training)
        counts = counter.get_flop_counts()
        root = type(model).__name__
        self.layer: dict[str, float] = {}
        for name in prunable_weights(model):
            module = name.removesuffix(".weight")
            self.layer[name] = float(sum(counts.get(f"{root}.{module}", {}).values()))
        total = float(sum(counts.get("Global", {}).values()))
        self.other = max(total - sum(self.layer.values()), 0.0)
        self.dense = total

    def forward(self, density: dict[str, float]) -> float:
        """Forward FLOPs of one sample with the given per-layer densities."""
        return self.other + sum(f * density.get(name, 1.0) for name, f in self.layer.items())
