"""Locate the classifier (FC) layer and the prunable weights of an arbitrary torchvision-style model.

SWaST-trim prunes only the FC and SWaST-cut fixes it at 90% sparsity, so the core must know which layer
that is without the user annotating the model: it is the last ``nn.Linear`` registered in the module
tree, which holds for torchvision's classifiers and for plain ``Sequential`` nets.
"""

from __future__ import annotations

from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def find_classifier(model: nn.Module) -> str:
    """Module name of the final Linear layer."""
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to act as the classifier (FC)")
    return linears[-1]


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weights of convolutions and linear layers, keyed by parameter name (``layer.weight``)."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_TYPES)
    }
