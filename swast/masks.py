"""Keeping pruned weights at zero for the masked pruners swast implements itself (magnitude, static).

torch.nn.utils.prune was considered and does not fit a training loop that prunes online: it renames each
pruned weight to ``weight_orig`` plus a ``weight_mask`` buffer (breaking name-keyed masks, the FC lookup
and the checkpoint format), multiplies weight and mask in every forward, and leaves the optimizer's
momentum at pruned positions alive, so the hidden ``weight_orig`` keeps moving. Here, as in rigl-torch,
the weights themselves hold the zeros: the gradient is masked by a tensor hook, the optimizer state is
zeroed where a weight is pruned, and the mask is re-applied after every optimizer step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WeightMasks:
    """Boolean keep-masks on named weights, enforced on the weights, their gradients and optimizer state."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.params = dict(model.named_parameters())
        self.optimizer = optimizer
        self.masks: dict[str, Tensor] = {}
        self._hooked: set[str] = set()
        # Re-applying after the step covers optimizers whose update is not zero for a zero gradient and
        # zero state (e.g. decoupled terms); for SGD and Adam it is a cheap no-op.
        optimizer.register_step_post_hook(lambda *_: self.apply())

    @torch.no_grad()
    def set(self, masks: dict[str, Tensor]) -> None:
        """Install or replace masks; newly pruned weights, their gradient and optimizer state become zero."""
        for name, mask in masks.items():
            param = self.params[name]
            mask = mask.to(device=param.device, dtype=torch.bool)
            self.masks[name] = mask
            if name not in self._hooked:
                param.register_hook(lambda grad, name=name: grad * self.masks[name])
                self._hooked.add(name)
            if param.grad is not None:  # pruning between backward and optimizer step: this step's gradient too
                param.grad.mul_(mask)
            for value in self.optimizer.state.get(param, {}).values():
                if isinstance(value, Tensor) and value.shape == param.shape:
                    value.mul_(mask)
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for name, mask in self.masks.items():
            self.params[name].mul_(mask)
