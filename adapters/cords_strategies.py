"""CORDS' real selection strategies (Killamsetty et al.) behind swast's selector contract.

CORDS 0.0.4 needs three things hidden from users, all handled here:
- ``import cords.selectionstrategies.SL`` pulls in dataset helpers that import ``load_boston`` and
  ``torchtext`` (both gone); the strategy modules themselves need neither, so they are imported without
  running that package's ``__init__``.
- its helpers call ``np.seterr(all='raise')`` at import time for the whole process; the caller's numpy
  error state is restored.
- models must answer ``model(x, last=True, freeze=True) -> (logits, embedding)``; ``_CordsModel`` gives
  any classifier that contract by reading the input of its final Linear layer.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from swast.data.indexed import IndexedDataset
from swast.errors import UsageError
from swast.registry import register_selector
from swast.selection import Coreset, SelectionContext, Selector

INSTALL_HINT = "install it with: pip install --no-deps -r requirements/cords.txt (cords==0.0.4 apricot-select==0.6.1)"
_log = logging.getLogger("swast.cords")


@functools.cache
def cords_module(name: str) -> types.ModuleType:
    """Import ``cords.selectionstrategies.SL.<name>`` without CORDS' import-time side effects."""
    try:
        strategies = importlib.import_module("cords.selectionstrategies")
    except ModuleNotFoundError as exc:
        raise UsageError(f"CORDS is not installed; {INSTALL_HINT}") from exc
    package = "cords.selectionstrategies.SL"
    if package not in sys.modules:
        sl = types.ModuleType(package)
        sl.__path__ = [str(Path(strategies.__file__).parent / "SL")]
        sys.modules[package] = sl
        strategies.SL = sl  # type: ignore[attr-defined]
    error_state = np.geterr()
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as exc:
        raise UsageError(f"CORDS could not import '{exc.name}' ({exc}); {INSTALL_HINT}") from exc
    finally:
        np.seterr(**error_state)


class _CordsModel(nn.Module):
    """CORDS' forward contract for any model: the embedding is the input of the classifier layer."""

    def __init__(self, model: nn.Module, classifier: str) -> None:
        super().__init__()
        self.model = model
        self._fc = (model.get_submodule(classifier),)  # a tuple: not registered twice in state_dict
        self._embedding: Tensor | None = None

    def get_embedding_dim(self) -> int:
        return int(self._fc[0].in_features)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            self._embedding = inputs[0]

        handle = self._fc[0].register_forward_pre_hook(hook)
        try:
            yield
        finally:
            handle.remove()
            self._embedding = None

    def forward(self, x: Tensor, last: bool = False, freeze: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not last:
            return self.model(x)
        if freeze:
            # CORDS only differentiates w.r.t. the logits; the backbone needs no graph.
            with torch.no_grad():
                out = self.model(x)
            out = out.detach().requires_grad_()
        else:
            out = self.model(x)
        assert self._embedding is not None, "forward(last=True) needs the capturing() context"
        return out, self._embedding.detach() if freeze else self._embedding


class _PairView(Dataset):
    """(x, y) samples on the CPU, as CORDS' loaders expect; whole batches in one slice when in memory."""

    def __init__(self, dataset: IndexedDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y, _ = self.dataset[i]
        return x.cpu(), y.cpu()

    def __getitems__(self, ids: list[int]) -> Any:
        if not self.dataset.in_memory:
            return [self[i] for i in ids]
        x, y = self.dataset.fetch(torch.as_tensor(ids))
        return x.cpu(), y.cpu()


def _collate(batch: Any) -> Any:
    return batch if isinstance(batch, tuple) else default_collate(batch)


def pair_loader(dataset: IndexedDataset, batch_size: int) -> DataLoader:
    return DataLoader(_PairView(dataset), batch_size=batch_size, shuffle=False, collate_fn=_collate)


@contextlib.contextmanager
def numpy_seeded(rng: np.random.Generator) -> Iterator[None]:
    """CORDS draws from numpy's global RNG; seed it from the run's generator and restore it after."""
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2**31 - 1)))
    try:
        yield
    finally:
        np.random.set_state(state)


def top_weighted(ids: Any, weights: Any, budget: int) -> Coreset:
    """Exactly ``budget`` samples: CORDS rounds per class or per batch up, so drop the lowest weights."""
    index = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if index.numel() > budget:
        keep = torch.sort(torch.argsort(w, descending=True, stable=True)[:budget]).values
        index, w = index[keep], w[keep]
    return Coreset(index, w)


@functools.cache
def _masked_gradmatch() -> type:
    base = cords_module("gradmatchstrategy").GradMatchStrategy

    class MaskedGradMatch(base):  # type: ignore[misc, valid-type]
        """GradMatch whose last-layer gradient features ignore pruned FC weights: a pruned weight
        receives no update, so matching its gradient would steer the selection by a phantom."""

        fc_mask: Tensor | None = None

        def compute_gradients(self, valid: bool = False, perBatch: bool = False, perClass: bool = False) -> None:
            super().compute_gradients(valid, perBatch, perClass)
            if self.fc_mask is None or not self.linear_layer:
                return
            keep = self.fc_mask.flatten().to(self.grads_per_elem.device, self.grads_per_elem.dtype)
            self.grads_per_elem[:, self.num_classes :] *= keep
            if valid and self.val_grads_per_elem is not None:
                self.val_grads_per_elem[:, self.num_classes :] *= keep

    return MaskedGradMatch


@register_selector("cords.gradmatch")
class CordsGradMatch(Selector):
    """GradMatch (Killamsetty et al., 2021) via CORDS' GradMatchStrategy: OMP gradient matching, weighted."""

    def __init__(
        self,
        selection_type: str = "PerBatch",
        lam: float = 0.0,
        eps: float = 1e-100,
        valid: bool = False,
        v1: bool = True,
        linear_layer: bool = True,
    ) -> None:
        if selection_type not in ("PerBatch", "PerClass", "PerClassPerGradient"):
            raise ValueError(f"selection_type must be PerBatch, PerClass or PerClassPerGradient, got '{selection_type}'")
        self.selection_type = selection_type
        self.lam, self.eps, self.valid, self.v1, self.linear_layer = lam, eps, valid, v1, linear_layer

    def select(self, ctx: SelectionContext) -> Coreset:
        model = _CordsModel(ctx.model, ctx.classifier)
        train_loader = pair_loader(ctx.dataset, ctx.batch_size)
        use_val = self.valid and ctx.val_dataset is not None
        val_loader = pair_loader(ctx.val_dataset, ctx.batch_size) if use_val else train_loader
        strategy = _masked_gradmatch()(
            train_loader,
            val_loader,
            model,
            nn.CrossEntropyLoss(reduction="none"),
            ctx.lr,
            ctx.device,  # a torch.device (not the string "cpu") selects CORDS' torch OMP solver everywhere
            ctx.num_classes,
            self.linear_layer,
            self.selection_type,
            _log,
            valid=use_val,
            v1=self.v1,
            lam=self.lam,
            eps=self.eps,
        )
        strategy.fc_mask = ctx.masks.get(f"{ctx.classifier}.weight")
        with model.capturing(), numpy_seeded(ctx.rng), warnings.catch_warnings():
            # CORDS builds its per-class loaders with pin_memory=True, which only warns on CPU-only hosts.
            warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
            ids, gammas = strategy.select(ctx.budget, model.state_dict())
        return top_weighted(ids, gammas, ctx.budget)
