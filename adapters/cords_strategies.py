"""CORDS' real selection strategies (Killamsetty et al.) behind swast's selector contract.

Every strategy goes through one path (``CordsSelector.select``): a CORDS-shaped view of the model,
sequential loaders, seeded global RNGs and an exact budget. CORDS 0.0.4 needs these things hidden from
users, all handled here:
- ``import cords.selectionstrategies.SL`` pulls in dataset helpers that import ``load_boston`` and
  ``torchtext`` (both gone); the strategy modules themselves need neither, so they are imported without
  running that package's ``__init__``.
- its helpers call ``np.seterr(all='raise')`` at import time for the whole process; the caller's numpy
  error state is restored.
- models must answer ``model(x, last=True, freeze=True) -> (logits, embedding)``
  (``features.ClassifierView``).
- strategies draw from numpy's and Python's global RNGs, and ``RandomStrategy`` reseeds numpy from OS
  entropy on every call; within a selection all of it comes from the run's generator.
- budgets come back rounded (per class and per batch up, RGreedy down) and CRAIG can name one sample
  twice; ``exact_budget`` turns any of that into exactly the budget.

Speed and one fix: labels and last-layer gradients come from one batched forward pass in closed form
(``Precomputed``) instead of CORDS' per-batch autograd and repeated ``torch.cat``; the values are
CORDS' own (see tests/test_cords_equivalence.py). CRAIG's scores are computed in the order CORDS maps
them back to sample ids (CORDS reads them through a ``SubsetRandomSampler``, which misaligns the two).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import random
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from swast.adapters.features import ClassifierView, ModelOutputs, batch_mean_features, gradient_features, model_outputs
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


class _PairView(Dataset):
    """(x, y) samples on the CPU, as CORDS' loaders expect; in-memory batches are fetched in one slice."""

    def __init__(self, dataset: IndexedDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y, _ = self.dataset[i]
        return x.cpu(), y.cpu()

    def __getitems__(self, ids: list[int]) -> list[tuple[Tensor, Tensor]]:
        if not self.dataset.in_memory:
            return [self[i] for i in ids]
        x, y = self.dataset.fetch(torch.as_tensor(ids))
        return list(zip(x.cpu(), y.cpu()))


def pair_loader(dataset: IndexedDataset, batch_size: int) -> DataLoader:
    """The sequential loader CORDS assumes (its PerBatch mode maps batch numbers back to sample ids)."""
    return DataLoader(_PairView(dataset), batch_size=batch_size, shuffle=False)


@contextlib.contextmanager
def seeded(rng: np.random.Generator) -> Iterator[None]:
    """Numpy's and Python's global RNGs seeded from the run's generator (argument-less
    ``np.random.seed()`` calls included), torch's CPU RNG untouched; all restored afterwards."""
    np_state, py_state = np.random.get_state(), random.getstate()
    reseed = np.random.seed

    def seed_from_run(seed: Any = None) -> None:
        reseed(int(rng.integers(2**31 - 1)) if seed is None else seed)

    seed_from_run()
    random.seed(int(rng.integers(2**31 - 1)))
    np.random.seed = seed_from_run  # type: ignore[assignment]
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.seed = reseed  # type: ignore[assignment]
        np.random.set_state(np_state)
        random.setstate(py_state)


def exact_budget(ids: Any, weights: Any, budget: int, n: int, rng: np.random.Generator) -> Coreset:
    """Exactly ``budget`` distinct ids from a CORDS answer. Repeated ids are merged (weights summed); a
    surplus (per-class or per-batch budgets rounded up) drops the lowest weights; a shortfall is topped
    up with random unselected samples of weight 1, as CORDS' GradMatch does itself."""
    index = np.asarray([int(i) for i in ids], dtype=np.int64)
    w = np.asarray(weights.detach().cpu() if isinstance(weights, Tensor) else weights, dtype=np.float64).reshape(-1)
    unique, first, inverse = np.unique(index, return_index=True, return_inverse=True)
    if len(unique) < len(index):
        _log.info("merged %d repeated ids in the strategy's answer", len(index) - len(unique))
    merged = np.zeros(len(unique))
    np.add.at(merged, inverse, w)
    order = np.argsort(first)  # keep the strategy's order
    index, w = unique[order], merged[order]
    if len(index) > budget:
        keep = np.sort(np.argsort(-w, kind="stable")[:budget])
        index, w = index[keep], w[keep]
    elif len(index) < budget:
        _log.info("topped up %d ids at random to reach the budget", budget - len(index))
        extra = rng.choice(np.setdiff1d(np.arange(n), index), size=budget - len(index), replace=False)
        index, w = np.concatenate([index, extra]), np.concatenate([w, np.ones(len(extra))])
    return Coreset(torch.from_numpy(index), torch.from_numpy(w.astype(np.float32)))


class Precomputed:
    """Mixin for a CORDS ``DataSelectionStrategy``: labels and last-layer gradients from one batched
    forward pass per split, in closed form, instead of CORDS' loader loops with per-batch autograd."""

    linear_layer: bool
    trainloader: DataLoader
    valloader: DataLoader
    pctrainloader: DataLoader
    pcvalloader: DataLoader

    def precompute(self, ctx: SelectionContext) -> None:
        self._ctx = ctx
        self._fc_mask = ctx.masks.get(f"{ctx.classifier}.weight")
        self._outputs: dict[str, tuple[ModelOutputs, Tensor]] = {}

    def outputs(self, split: str) -> tuple[ModelOutputs, Tensor]:
        """Outputs of the train or val split and their loss gradients, computed on first use."""
        if split not in self._outputs:
            out = model_outputs(self._ctx, self._ctx.dataset if split == "train" else self._ctx.val_dataset)
            self._outputs[split] = (out, out.loss_gradient())
        return self._outputs[split]

    def gradients(self, split: str, rows: Tensor | None, batch_size: int | None) -> Tensor:
        """Gradient features of ``rows`` (all when None), per sample or averaged per sequential batch."""
        out, l0 = self.outputs(split)
        emb = out.embedding
        if rows is not None:
            rows = rows.to(l0.device)
            l0, emb = l0[rows], emb[rows]
        if batch_size is not None:
            return batch_mean_features(l0, emb, batch_size, self.linear_layer, self._fc_mask)
        return gradient_features(l0, emb, self.linear_layer, self._fc_mask)

    def _loader_gradients(self, split: str, loader: DataLoader, per_batch: bool) -> Tensor:
        rows = getattr(loader.dataset, "indices", None)  # CORDS' per-class loaders are Subsets
        index = None if rows is None else torch.as_tensor(rows, dtype=torch.long)
        return self.gradients(split, index, loader.batch_size if per_batch else None)

    def get_labels(self, valid: bool = False) -> None:
        self.trn_lbls = self.outputs("train")[0].labels.cpu()
        if valid:
            self.val_lbls = self.outputs("val")[0].labels.cpu()

    def compute_gradients(self, valid: bool = False, perBatch: bool = False, perClass: bool = False) -> None:
        if perBatch and perClass:
            raise ValueError("batch and perClass are mutually exclusive. Only one of them can be true at a time")
        self.grads_per_elem = self._loader_gradients("train", self.pctrainloader if perClass else self.trainloader, perBatch)
        if valid:
            self.val_grads_per_elem = self._loader_gradients("val", self.pcvalloader if perClass else self.valloader, perBatch)


class OrderedScores(Precomputed):
    """CRAIG's similarity matrix built from rows in the order of ``idxs``, the order CORDS maps its picks
    back to sample ids with (CORDS 0.0.4 reads them through a ``SubsetRandomSampler`` instead)."""

    selection_type: str

    def compute_score(self, model_params: Any, idxs: Any) -> None:
        per_batch = self.trainloader.batch_size if self.selection_type == "PerBatch" else None
        g = self.gradients("train", torch.as_tensor(idxs, dtype=torch.long), per_batch)
        sq = (g * g).sum(dim=1)
        dist = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (g @ g.T)).clamp_min_(0.0)
        dist.fill_diagonal_(0.0)  # exact, as CORDS' difference-based distance has it: argmax finds the pick
        self.N = len(g)
        self.const = float(dist.max())
        self.dist_mat = (self.const - dist).cpu().numpy()


@functools.cache
def strategy_class(module: str, name: str, mixin: type | None) -> type:
    base = getattr(cords_module(module), name)
    return base if mixin is None else type(name, (mixin, base), {"__doc__": base.__doc__})


class CordsSelector(Selector):
    """The shared path of every CORDS strategy; subclasses say which class and how to build it."""

    module: ClassVar[str]
    class_name: ClassVar[str]
    mixin: ClassVar[type | None] = Precomputed
    needs_validation = False

    def check(self, ctx: SelectionContext) -> None:
        """Refuse, with the fix, inputs on which the CORDS code is known to fail."""

    def build(self, cls: type, view: ClassifierView, train: DataLoader, val: DataLoader, ctx: SelectionContext) -> Any:
        raise NotImplementedError

    def run(self, strategy: Any, view: ClassifierView, ctx: SelectionContext) -> tuple[Any, Any]:
        return strategy.select(ctx.budget, view.state_dict())

    def select(self, ctx: SelectionContext) -> Coreset:
        if self.needs_validation and ctx.val_dataset is None:
            raise UsageError(
                f"{type(self).__name__} needs a validation split; set data.val_fraction > 0 (e.g. --set data.val_fraction=0.1)"
            )
        self.check(ctx)
        view = ClassifierView(ctx.model, ctx.classifier)
        train = pair_loader(ctx.dataset, ctx.batch_size)
        val = pair_loader(ctx.val_dataset, ctx.batch_size) if self.needs_validation and ctx.val_dataset else train
        strategy = self.build(strategy_class(self.module, self.class_name, self.mixin), view, train, val, ctx)
        if isinstance(strategy, Precomputed):
            strategy.precompute(ctx)
        with view.capturing(), seeded(ctx.rng), warnings.catch_warnings():
            # CORDS builds its per-class loaders with pin_memory=True, which only warns on CPU-only hosts.
            warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
            ids, weights = self.run(strategy, view, ctx)
        return exact_budget(ids, weights, ctx.budget, len(ctx.dataset), ctx.rng)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{option} must be one of {', '.join(allowed)}; got '{value}'")
    return value


def _cross_entropy() -> nn.Module:
    return nn.CrossEntropyLoss(reduction="none")  # CORDS differentiates the per-sample losses' sum


@register_selector("cords.gradmatch")
class CordsGradMatch(CordsSelector):
    """GradMatch (Killamsetty et al., 2021) via CORDS' GradMatchStrategy: OMP gradient matching, weighted."""

    module, class_name = "gradmatchstrategy", "GradMatchStrategy"

    def __init__(
        self,
        selection_type: str = "PerBatch",
        lam: float = 0.0,
        eps: float = 1e-100,
        valid: bool = False,
        v1: bool = True,
        linear_layer: bool = True,
    ) -> None:
        self.selection_type = _choice("selection_type", selection_type, ("PerBatch", "PerClass", "PerClassPerGradient"))
        self.lam, self.eps, self.valid, self.v1, self.linear_layer = lam, eps, valid, v1, linear_layer
        self.needs_validation = valid

    def build(self, cls: type, view: ClassifierView, train: DataLoader, val: DataLoader, ctx: SelectionContext) -> Any:
        self.forward_passes = 1.0 + (len(val.dataset) / len(train.dataset) if self.valid else 0.0)
        return cls(
            train, val, view, _cross_entropy(), ctx.lr,
            ctx.device,  # a torch.device (not the string "cpu") selects CORDS' torch OMP solver, which honours lam and eps
            ctx.num_classes, self.linear_layer, self.selection_type, _log,
            valid=self.valid, v1=self.v1, lam=self.lam, eps=self.eps,
        )


CRAIG_OPTIMIZERS = ("lazy", "naive", "approximate-lazy", "two-stage", "stochastic", "sample", "greedi", "bidirectional", "modular", "random")
# CRAIG's Supervised mode builds dense N x N distance, index and sparse matrices (about 28 bytes per pair).
CRAIG_SUPERVISED_MAX_SAMPLES = 10_000


@functools.cache
def compile_apricot_gains_once() -> None:
    """apricot JIT-compiles its facility-location gain functions (numba) in every ``fit``, about 2 s
    each; CRAIG fits once per class per selection. Memoising apricot's factories compiles them once
    per process; the compiled functions are the same."""
    from apricot.functions import facilityLocation

    for name in ("calculate_gains", "calculate_gains_sparse", "calculate_gains_sieve"):
        setattr(facilityLocation, name, functools.cache(getattr(facilityLocation, name)))


@register_selector("cords.craig")
class CordsCraig(CordsSelector):
    """CRAIG (Mirzasoleiman et al., 2020) via CORDS' CRAIGStrategy: facility location on gradients (apricot)."""

    module, class_name, mixin = "craigstrategy", "CRAIGStrategy", OrderedScores

    def __init__(self, selection_type: str = "PerClass", linear_layer: bool = False, optimizer: str = "lazy") -> None:
        self.selection_type = _choice("selection_type", selection_type, ("PerClass", "PerBatch", "Supervised"))
        self.optimizer = _choice("optimizer", optimizer, CRAIG_OPTIMIZERS)
        self.linear_layer = linear_layer

    def check(self, ctx: SelectionContext) -> None:
        if self.selection_type == "Supervised" and len(ctx.dataset) > CRAIG_SUPERVISED_MAX_SAMPLES:
            raise UsageError(
                f"coreset.options.selection_type: CRAIG's Supervised mode builds dense {len(ctx.dataset)}^2 matrices "
                f"(limit {CRAIG_SUPERVISED_MAX_SAMPLES} samples); use selection_type PerClass or PerBatch"
            )

    def build(self, cls: type, view: ClassifierView, train: DataLoader, val: DataLoader, ctx: SelectionContext) -> Any:
        compile_apricot_gains_once()
        return cls(
            train, val, view, _cross_entropy(), ctx.device, ctx.num_classes, self.linear_layer,
            False,  # if_convex: the deep-network (gradient) variant
            self.selection_type, _log, optimizer=self.optimizer,
        )


@register_selector("cords.glister")
class CordsGlister(CordsSelector):
    """GLISTER-online (Killamsetty et al., 2021) via CORDS' GLISTERStrategy: greedy on validation-loss gain."""

    module, class_name = "glisterstrategy", "GLISTERStrategy"
    needs_validation = True

    def __init__(
        self, selection_type: str = "Supervised", greedy: str = "Stochastic", linear_layer: bool = False, r: int = 15
    ) -> None:
        self.selection_type = _choice("selection_type", selection_type, ("Supervised", "PerClass", "PerBatch"))
        self.greedy = _choice("greedy", greedy, ("Stochastic", "RGreedy", "Naive"))
        if r < 1:
            raise ValueError("r (RGreedy rounds) must be at least 1")
        self.linear_layer, self.r = linear_layer, r

    def problems(self, ctx: SelectionContext) -> list[tuple[int, int]]:
        """(candidates, picks) of each greedy problem CORDS will solve, with CORDS' rounding."""
        n, b, budget = len(ctx.dataset), ctx.batch_size, ctx.budget
        if self.selection_type == "PerBatch":
            return [(math.ceil(n / b), math.ceil(budget / b))]
        if self.selection_type == "PerClass":
            counts = torch.bincount(ctx.dataset.labels.cpu(), minlength=ctx.num_classes).tolist()
            return [(c, math.ceil(budget * c / n)) for c in counts if c > 0]
        return [(n, budget)]

    def check(self, ctx: SelectionContext) -> None:
        assert ctx.val_dataset is not None
        if self.selection_type == "PerBatch" and len(ctx.val_dataset) < ctx.batch_size:
            raise UsageError(
                f"coreset.options.selection_type: GLISTER PerBatch needs at least one full validation batch "
                f"({ctx.batch_size} samples, the split has {len(ctx.val_dataset)}); raise data.val_fraction or use Supervised"
            )
        if self.selection_type == "PerClass":
            present = torch.bincount(ctx.val_dataset.labels.cpu(), minlength=ctx.num_classes) > 0
            if not bool(present.all()):
                missing = torch.nonzero(~present).flatten().tolist()
                raise UsageError(
                    f"coreset.options.selection_type: GLISTER PerClass needs validation samples of every class; "
                    f"classes {missing} have none. Raise data.val_fraction or use Supervised"
                )

    def greedy_settings(self, ctx: SelectionContext) -> tuple[str, int]:
        """CORDS' greedy loops fail on small problems: RGreedy picks picks // r per round and never ends
        when that is 0; Stochastic draws n / picks * ln(100) candidates per step and fails once that
        exceeds what is left. Documented fallbacks: r is lowered to the smallest pick count, and
        Stochastic becomes Naive (the exact greedy it approximates)."""
        problems = self.problems(ctx)
        greedy, r = self.greedy, self.r
        if greedy == "RGreedy" and min(k for _, k in problems) < r:
            r = max(1, min(k for _, k in problems))
            _log.warning("GLISTER RGreedy: r lowered from %d to %d (a problem selects only %d)", self.r, r, r)
        if greedy == "Stochastic" and any(int(n / k * math.log(100)) > n - k + 1 for n, k in problems):
            greedy = "Naive"
            _log.warning("GLISTER: budget too small for stochastic greedy's candidate sample; using Naive greedy")
        return greedy, r

    def build(self, cls: type, view: ClassifierView, train: DataLoader, val: DataLoader, ctx: SelectionContext) -> Any:
        greedy, r = self.greedy_settings(ctx)
        self.forward_passes = 1.0 + len(val.dataset) / len(train.dataset)
        return cls(
            train, val, view, _cross_entropy(), ctx.lr, ctx.device, ctx.num_classes, self.linear_layer,
            self.selection_type, greedy, _log, r=r,
        )

    def run(self, strategy: Any, view: ClassifierView, ctx: SelectionContext) -> tuple[Any, Any]:
        # GLISTER weighs every pick 1 but answers ``budget`` weights even when RGreedy rounds its ids up.
        ids, _ = strategy.select(ctx.budget, view.state_dict())
        return ids, np.ones(len(ids))


@register_selector("cords.random")
class CordsRandom(CordsSelector):
    """CORDS' RandomStrategy in online mode: a fresh uniform subset each round, seeded by the run."""

    module, class_name, mixin = "randomstrategy", "RandomStrategy", None
    forward_passes = 0.0

    def build(self, cls: type, view: ClassifierView, train: DataLoader, val: DataLoader, ctx: SelectionContext) -> Any:
        return cls(train, online=True)

    def run(self, strategy: Any, view: ClassifierView, ctx: SelectionContext) -> tuple[Any, Any]:
        return strategy.select(ctx.budget)
