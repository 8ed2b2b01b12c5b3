"""The SWaST loop (Algorithm 1): warm-up on the full data, then alternate coreset selection (every R
epochs, with state recording) and training on the coreset while the pruner acts every iteration.

Everything swappable comes from the registries; this module owns only the alternation, the loss
(weighted CE + lambda * KL) and the bookkeeping every number in the report comes from.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from swast import registry
from swast.config import RunConfig
from swast.data.indexed import DataSplits, IndexedDataset
from swast.data.loading import count_batches, iterate_batches
from swast.data.noise import apply_label_noise
from swast.data.splits import take_subset
from swast.errors import UsageError
from swast.flops import FlopsModel
from swast.loggers import RunLog
from swast.models.classifier import find_classifier
from swast.pruning import Density, NoPruner, PrunePlan, Pruner, measure_density, plan_targets
from swast.schedule import Schedule
from swast.selection import Coreset, SelectionContext, budget_for, to_coreset
from swast.state_preservation import StatePreservation

EpochCallback = Callable[[dict[str, Any]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device (--device): '{name}' was asked for but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("swast", "torch", "torchvision", "numpy", "cords", "rigl-torch", "wandb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def build_components(cfg: RunConfig) -> tuple[Any, Pruner]:
    """Resolve the selector and pruner names and options before any data is touched, so a typo fails fast."""
    selector = registry.selectors.create(
        cfg.coreset.selector, cfg.coreset.options, field="coreset.selector (--selector)", options_field="coreset.options"
    )
    pruner = registry.pruners.create(
        cfg.pruner.name, cfg.pruner.options, field="pruner.name (--pruner)", options_field="pruner.options"
    )
    if not hasattr(selector, "select"):
        raise UsageError(f"coreset.selector: '{cfg.coreset.selector}' is not a selector (it has no select(ctx) method)")
    return selector, pruner


def load_data(cfg: RunConfig) -> DataSplits:
    builder = registry.datasets.get(cfg.data.dataset, field="data.dataset (--dataset)")
    try:
        splits: DataSplits = builder(cfg.data.root, cfg.data.val_fraction, cfg.data.split_seed, **cfg.data.options)
    except TypeError as exc:
        raise UsageError(f"data.options: dataset '{cfg.data.dataset}' rejected its options: {exc}") from exc
    if cfg.data.subset is not None:
        splits.train = take_subset(splits.train, cfg.data.subset, cfg.data.split_seed)
    if cfg.data.label_noise > 0:
        generator = torch.Generator().manual_seed(cfg.seed)
        apply_label_noise(splits, cfg.data.noise_type, cfg.data.label_noise, generator)
    for split in (splits.train, splits.val, splits.test):
        if split is not None:
            split.num_workers = cfg.data.num_workers
    return splits


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, log: RunLog | None = None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.log = log
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.selector, pruner = build_components(cfg)
        self.method_prunes = cfg.pruner.scope != "none" and cfg.pruner.name != "none"
        self.pruner: Pruner = pruner if self.method_prunes else NoPruner()

        self.data = load_data(cfg)
        self.train_set: IndexedDataset = self.data.train.to(self.device)
        self.val_set = self.data.val.to(self.device) if self.data.val is not None else None
        self.test_set = self.data.test.to(self.device)
        n = len(self.train_set)

        model_builder = registry.models.get(cfg.model.name, field="model.name (--model)")
        try:
            model = model_builder(self.data.num_classes, self.data.input_shape, **cfg.model.options)
        except TypeError as exc:
            raise UsageError(f"model.options: model '{cfg.model.name}' rejected its options: {exc}") from exc
        self.model = model.to(self.device)
        self.classifier = find_classifier(self.model)

        t = cfg.train
        if t.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                self.model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0,
                weight_decay=t.weight_decay,
            )
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        # Created before the pruner: rigl-torch replaces optimizer.step, which LR schedulers wrap too.
        self.lr_schedule = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=t.epochs)
            if t.schedule == "cosine"
            else torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        )

        c = cfg.coreset
        self.schedule = Schedule(t.epochs, int(c.warmup or 0), c.interval, bool(c.enabled), c.warmup_mode, c.kappa)
        self.budget = budget_for(c.fraction, n)
        self.total_steps = self.schedule.total_steps(count_batches(n, t.batch_size), count_batches(self.budget, t.batch_size))
        p = cfg.pruner
        targets = (
            plan_targets(self.model, self.classifier, p.scope or "none", p.rate, p.fc_sparsity, p.distribution, p.dense_first_layer)
            if self.method_prunes
            else {}
        )
        self.pruner.attach(self.model, self.optimizer, PrunePlan(targets, max(self.total_steps, 1)))
        self.targets = targets

        sp = cfg.state_preservation
        self.sp = StatePreservation(sp.weight, sp.temperature, sp.scope, n, self.device) if sp.enabled else None
        self.flops = FlopsModel(self.model, self.data.input_shape, self.device)
        self.dense_reference_flops = 3.0 * self.flops.dense * n * t.epochs

        self.coreset: Coreset | None = None
        self.batch_generator = torch.Generator().manual_seed(cfg.seed)
        self.selection_rng = np.random.default_rng(cfg.seed)
        self.epoch = 0
        self.step = 0
        self.train_flops = 0.0
        self.selection_seconds = 0.0
        self.history: list[dict[str, Any]] = []

    # --- one selection round -------------------------------------------------------------------------
    def select(self, epoch: int) -> float:
        start = time.perf_counter()
        ctx = SelectionContext(
            model=self.model,
            dataset=self.train_set,
            budget=self.budget,
            num_classes=self.data.num_classes,
            device=self.device,
            epoch=epoch,
            total_epochs=self.cfg.train.epochs,
            batch_size=self.cfg.train.batch_size,
            classifier=self.classifier,
            rng=self.selection_rng,
            lr=self.optimizer.param_groups[0]["lr"],
            masks=self.pruner.masks(),
            val_dataset=self.val_set,
        )
        self.model.eval()
        try:
            result = self.selector.select(ctx)
        finally:
            self.model.train()
        self.coreset = to_coreset(self.cfg.coreset.selector, result, ctx)
        if not self.cfg.coreset.use_weights:
            self.coreset.weights = None
        sparse_forward = self.flops.forward(self.density().per_layer)
        passes = float(getattr(self.selector, "forward_passes", 1.0))
        self.train_flops += passes * len(self.train_set) * sparse_forward
        if self.sp is not None:
            self.sp.record(self.model, self.train_set, self.coreset.indices, self.cfg.train.batch_size, self.device)
            self.train_flops += len(self.coreset) * sparse_forward
        seconds = time.perf_counter() - start
        self.selection_seconds += seconds
        return seconds

    # --- one epoch of training -----------------------------------------------------------------------
    def loss(self, logits: Tensor, y: Tensor, ids: Tensor, weights: Tensor | None, use_sp: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Total loss, CE part, KL part. CE is weighted by the selector's per-sample weights (normalised
        per batch, as CORDS trains); the KL part is zero outside coreset training."""
        per_sample = F.cross_entropy(logits, y, reduction="none")
        ce = (per_sample * weights).sum() / weights.sum() if weights is not None else per_sample.mean()
        if use_sp and self.sp is not None and self.sp.active:
            kl = self.sp.kl(logits, ids)
            return ce + self.sp.weight * kl, ce, kl
        return ce, ce, torch.zeros((), device=logits.device)

    def train_one_epoch(self, phase: str) -> dict[str, float]:
        self.model.train()
        if phase == "coreset":
            assert self.coreset is not None
            ids, weights = self.coreset.indices, self.coreset.weights
        else:
            ids, weights = torch.arange(len(self.train_set)), None
        sums = torch.zeros(3, device=self.device)
        seen = 0
        sparse_forward = self.flops.forward(self.density().per_layer)
        for x, y, idx, w in iterate_batches(
            self.train_set, ids, self.cfg.train.batch_size, shuffle=True, augment=True, weights=weights,
            generator=self.batch_generator,
        ):
            x, y, idx = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), idx.to(self.device)
            w = w.to(self.device) if w is not None else None
            logits = self.model(x)
            total, ce, kl = self.loss(logits, y, idx, w, use_sp=phase == "coreset")
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            if self.pruner.step():
                self.optimizer.step()
            batch = x.shape[0]
            self.step += 1
            self.train_flops += 3.0 * batch * sparse_forward
            if self.pruner.needs_dense_gradient():
                self.train_flops += batch * (self.flops.dense - sparse_forward)
            sums += torch.stack([total.detach(), ce.detach(), kl.detach()]) * batch
            seen += batch
        means = (sums / max(seen, 1)).tolist()
        return {"train_loss": means[0], "train_ce": means[1], "train_kl": means[2], "samples": seen}

    @torch.no_grad()
    def per_sample(self, dataset: IndexedDataset) -> tuple[Tensor, Tensor]:
        """Eval-mode loss and correctness of every sample of ``dataset`` (w.r.t. the labels it trains on)."""
        self.model.eval()
        losses, correct = [], []
        for x, y, _, _ in iterate_batches(dataset, torch.arange(len(dataset)), 512, shuffle=False, augment=False):
            x, y = x.to(self.device), y.to(self.device)
            logits = self.model(x)
            losses.append(F.cross_entropy(logits, y, reduction="none"))
            correct.append(logits.argmax(1) == y)
        self.model.train()
        return torch.cat(losses), torch.cat(correct)

    def evaluate(self, dataset: IndexedDataset) -> tuple[float, float]:
        losses, correct = self.per_sample(dataset)
        return float(losses.mean()), float(correct.float().mean())

    def density(self) -> Density:
        return measure_density(self.model, self.pruner.masks(), self.classifier)

    # --- the run ---------------------------------------------------------------------------------------
    def fit(self, on_epoch: EpochCallback | None = None) -> dict[str, Any]:
        start = time.perf_counter()
        for epoch in range(self.epoch + 1, self.cfg.train.epochs + 1):
            epoch_start = time.perf_counter()
            self.epoch = epoch
            phase = self.schedule.phase(epoch)
            selection_seconds = self.select(epoch) if self.schedule.selects(epoch) else 0.0
            lr = self.optimizer.param_groups[0]["lr"]
            stats = self.train_one_epoch(phase) if phase != "skip" else {"train_loss": None, "train_ce": None, "train_kl": None, "samples": 0}
            self.lr_schedule.step()
            record = self.epoch_record(epoch, phase, lr, stats, selection_seconds, time.perf_counter() - epoch_start)
            self.history.append(record)
            if self.log is not None:
                self.log.log(record)
            if on_epoch is not None:
                on_epoch(record)
        return self.summary(time.perf_counter() - start)

    def epoch_record(self, epoch: int, phase: str, lr: float, stats: dict[str, Any], selection_seconds: float, seconds: float) -> dict[str, Any]:
        test_loss, test_acc = self.evaluate(self.test_set)
        val_loss, val_acc = self.evaluate(self.val_set) if self.val_set is not None else (None, None)
        density = self.density()
        record: dict[str, Any] = {
            "epoch": epoch,
            "phase": phase,
            "lr": lr,
            **{k: stats[k] for k in ("train_loss", "train_ce", "train_kl")},
            "test_acc": test_acc,
            "test_loss": test_loss,
            "val_acc": val_acc,
            "val_loss": val_loss,
            "density": density.overall,
            "density_fc": density.fc,
            "density_backbone": density.backbone,
            "density_layers": density.per_layer,
            "coreset_size": len(self.coreset) if phase == "coreset" and self.coreset is not None else stats["samples"],
            "samples_trained": stats["samples"],
            "selection_seconds": selection_seconds,
            "epoch_seconds": seconds,
            "train_flops": self.train_flops,
            "relative_flops": self.train_flops / self.dense_reference_flops,
            "step": self.step,
        }
        if self.cfg.data.label_noise > 0:
            # Fig. 5c: does the model memorise the flipped labels? Loss on noisy vs clean training samples.
            losses, _ = self.per_sample(self.train_set)
            noisy = self.train_set.noisy
            record["train_loss_noisy"] = float(losses[noisy].mean()) if bool(noisy.any()) else None
            record["train_loss_clean"] = float(losses[~noisy].mean())
            if phase == "coreset" and self.coreset is not None:
                record["noisy_share"] = float(noisy[self.coreset.indices.to(self.device)].float().mean())
        return record

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        last = self.history[-1]
        return {
            "name": self.cfg.name,
            "method": self.cfg.method,
            "selector": self.cfg.coreset.selector if self.cfg.coreset.enabled else None,
            "pruner": self.cfg.pruner.name if self.method_prunes else "none",
            "test_acc": last["test_acc"],
            "best_test_acc": max(r["test_acc"] for r in self.history),
            "val_acc": last["val_acc"],
            "density": last["density"],
            "density_fc": last["density_fc"],
            "density_backbone": last["density_backbone"],
            "coreset_size": self.budget if self.cfg.coreset.enabled else len(self.train_set),
            "train_size": len(self.train_set),
            "relative_flops": last["relative_flops"],
            "wall_seconds": wall_seconds,
            "selection_seconds": self.selection_seconds,
            "total_steps": self.step,
            "pruner_settings": self.pruner.settings(),
            "target_sparsity": self.targets,
            "noisy_train_samples": int(self.train_set.noisy.sum()),
            "device": str(self.device),
            "versions": versions(),
            "run_dir": str(self.run_dir),
        }

    def state_dict(self) -> dict[str, Any]:
        """The whole run in one checkpoint dict (torchvision-reference style)."""
        return {
            "config": self.cfg.model_dump(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "pruner": self.pruner.state_dict(),
            "coreset": None if self.coreset is None else {"indices": self.coreset.indices, "weights": self.coreset.weights},
            "state_preservation": self.sp.state_dict() if self.sp is not None else None,
            "train_flops": self.train_flops,
            "noisy_ids": torch.nonzero(self.train_set.noisy).flatten().cpu(),
        }
