"""CORDS' own GradMatch path, run the way CORDS' training code runs it: the reference that swast's
``cords.gradmatch`` is timed against (benchmarks/selection_time.py) and checked against
(tests/test_cords_equivalence.py).

Stock means: a model that implements CORDS' ``forward(x, last, freeze)`` and ``get_embedding_dim``
natively, sequential ``DataLoader``s over in-memory tensors, ``GradMatchStrategy`` holding a deep copy
of the model, and each selection as ``GradMatchDataLoader._resample_subset_indices`` does it (two deep
copies of the state dict, ``select``, restore).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from swast.adapters.cords_strategies import cords_module


class NativeCordsNet(nn.Module):
    """A CORDS-style model around the layers of a swast ``Sequential`` classifier (shared, not copied,
    so both paths see the same weights): backbone under ``no_grad`` when ``freeze``, as CORDS' models."""

    def __init__(self, model: nn.Sequential) -> None:
        super().__init__()
        self.backbone = model[:-1]
        self.fc = model[-1]
        self.embDim = self.fc.in_features

    def forward(self, x: Tensor, last: bool = False, freeze: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if freeze:
            with torch.no_grad():
                e = self.backbone(x)
        else:
            e = self.backbone(x)
        out = self.fc(e)
        return (out, e) if last else out

    def get_embedding_dim(self) -> int:
        return self.embDim


class StockGradMatch:
    """CORDS' ``GradMatchStrategy`` as ``GradMatchDataLoader`` builds and calls it."""

    def __init__(
        self,
        model: nn.Module,
        train: tuple[Tensor, Tensor],
        val: tuple[Tensor, Tensor],
        *,
        batch_size: int,
        lr: float,
        device: str | torch.device,
        num_classes: int,
        selection_type: str,
        linear_layer: bool = True,
        valid: bool = False,
        v1: bool = True,
        lam: float = 0.0,
        eps: float = 1e-100,
    ) -> None:
        self.train_model = model
        train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=False)
        val_loader = DataLoader(TensorDataset(*val), batch_size=batch_size, shuffle=False)
        cls = cords_module("gradmatchstrategy").GradMatchStrategy
        self.strategy = cls(
            train_loader, val_loader, copy.deepcopy(model), nn.CrossEntropyLoss(reduction="none"), lr, device,
            num_classes, linear_layer, selection_type, logging.getLogger("cords.stock"), valid, v1, lam, eps,
        )

    def select(self, budget: int, seed: int) -> tuple[Any, Any]:
        np.random.seed(seed)  # CORDS' training scripts seed numpy once; a fixed seed per call keeps repeats equal
        cached = copy.deepcopy(self.train_model.state_dict())
        clone = copy.deepcopy(self.train_model.state_dict())
        ids, gammas = self.strategy.select(budget, clone)
        self.train_model.load_state_dict(cached)
        return ids, gammas
