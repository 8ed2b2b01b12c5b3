"""The SWaST loop (Algorithm 1): warm-up on the full data, then alternate coreset selection (every R
epochs, with state recording) and training on the coreset while the pruner acts every iteration.

Everything swappable comes from the registries; this module owns only the alternation, the loss
(weighted CE + lambda * KL) and the bookkeeping every number in the report comes from.
"""

from __future__ import annotations

import dataclasses
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

from swast import checkpoint, registry
from swast.config import RunConfig
from swast.data.indexed import DataSplits, IndexedDataset
from swast.data.loading import count_batches, iterate_batches
from swast.data.noise import apply_label_noise
from swast.data.splits import take_subset
from swast.errors import UsageError
from swast.flops import FlopsModel
from swast.loggers import RunLog
from swast.models.classifier import find_classifier, prunable_weights
from swast.pruning import Density, NoPruner, PrunePlan, Pruner, count_parameters, measure_density, plan_targets
from swast.schedule import Schedule
from swast.selection import Coreset, SelectionContext, budget_for, to_coreset
from swast.state_preservation import StatePreservation
from swast.structure import StructureChange, remap_optimizer

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
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.selector, pruner = build_components(cfg)
        self.method_prunes = cfg.prunes
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
        self.warnings: list[str] = []
        self.budget = budget_for(c.fraction, n)
        if c.enabled and self.budget != round(c.fraction * n):
            self.warn(f"coreset.fraction {c.fraction} of {n} samples gives {round(c.fraction * n)}; using {self.budget} (BatchNorm needs at least 2 samples)")
        if c.enabled and self.budget < t.batch_size:
            self.warn(f"the coreset ({self.budget} samples) is smaller than one batch ({t.batch_size}): each coreset epoch is one step")
        self.total_steps = self.schedule.total_steps(count_batches(n, t.batch_size), count_batches(self.budget, t.batch_size))
        p = cfg.pruner
        targets = (
            plan_targets(
                self.model, self.classifier, p.scope or "none", p.rate, p.fc_sparsity, p.distribution,
                p.dense_first_layer, p.overrides,
            )
            if self.method_prunes and self.pruner.layer_targets
            else {}
        )
        # What density and parameter counts are measured against, also once structured pruning shrank the model.
        self.original_sizes = {name: w.numel() for name, w in prunable_weights(self.model).items()}
        self.original_params = sum(w.numel() for w in self.model.parameters())
        plan = PrunePlan(targets, max(self.total_steps, 1), p.rate, p.scope or "none", dict(p.overrides), self.data.input_shape)
        self.pruner.attach(self.model, self.optimizer, plan)
        self.targets = targets

        sp = cfg.state_preservation
        self.sp = StatePreservation(sp.weight, sp.temperature, sp.scope, n, self.device) if sp.enabled else None
        self.flops = FlopsModel(self.model, self.data.input_shape, self.device)
        self.dense_reference_flops = 3.0 * self.flops.dense * n * t.epochs
        self._forward_flops: float | None = None
        self.pruner.on_structure_change(self.follow_structure_change)

        self.coreset: Coreset | None = None
        self.selection_rng = np.random.default_rng(cfg.seed)
        self.epoch = 0  # epochs completed
        self.step = 0
        self.train_flops = 0.0
        self.selection_seconds = 0.0
        self.wall_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.progress: EpochProgress | None = None  # the epoch under way, when interrupted inside it
        self.stop_requested: str | None = None  # set by a signal handler; honoured at the next safe point
        self.checkpoint_epoch: int | None = None  # epoch of the newest checkpoint on disk

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
        sparse_forward = self.forward_flops()
        passes = float(getattr(self.selector, "forward_passes", 1.0))
        self.train_flops += passes * len(self.train_set) * sparse_forward
        if self.sp is not None:
            self.sp.record(self.model, self.train_set, self.coreset.indices, self.cfg.train.batch_size, self.device)
            self.train_flops += len(self.coreset) * sparse_forward
        seconds = time.perf_counter() - start
        self.selection_seconds += seconds
        return seconds

    def warn(self, message: str) -> None:
        """Something handled deliberately that the user should know about: kept in the summary."""
        if message not in self.warnings:
            self.warnings.append(message)

    def missing_classes(self) -> list[int]:
        """Classes with no sample in the current coreset: allowed (the selector's choice), but reported."""
        assert self.coreset is not None
        labels = self.train_set.labels[self.coreset.indices.to(self.device)]
        present = torch.bincount(labels, minlength=self.data.num_classes) > 0
        return torch.nonzero(~present).flatten().tolist()

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

    def epoch_order(self, epoch: int) -> torch.Generator:
        """The batch order of an epoch is a function of (seed, epoch), so a resumed epoch replays it."""
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)

    def train_batches(self, progress: EpochProgress) -> None:
        """Train the epoch's remaining batches, stopping cleanly between batches when asked to."""
        self.model.train()
        if progress.phase == "coreset":
            assert self.coreset is not None
            ids, weights = self.coreset.indices, self.coreset.weights
        else:
            ids, weights = torch.arange(len(self.train_set)), None
        self._forward_flops = None  # re-read the densities once per epoch (and on every reported change)
        batches = iterate_batches(
            self.train_set, ids, self.cfg.train.batch_size, shuffle=True, augment=True, weights=weights,
            generator=self.epoch_order(progress.epoch), start_batch=progress.batch,
        )
        sums = torch.tensor(progress.sums, device=self.device)
        skipping = self.cfg.train.nonfinite == "skip"
        for x, y, idx, w in batches:
            x, y, idx = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), idx.to(self.device)
            w = w.to(self.device) if w is not None else None
            # A skipped batch must leave no trace: its forward pass would still poison BatchNorm's running
            # statistics, so keep a copy of the buffers to put back (only when skipping is enabled).
            buffers = [b.clone() for b in self.model.buffers()] if skipping else []
            sparse_forward = self.forward_flops()  # of the model this batch runs through
            logits = self.model(x)
            total, ce, kl = self.loss(logits, y, idx, w, use_sp=progress.phase == "coreset")
            self.optimizer.zero_grad(set_to_none=True)
            progress.batch += 1
            if not bool(torch.isfinite(total)):
                if not skipping:
                    last = self.run_dir / checkpoint.LATEST if self.checkpoint_epoch is not None else None
                    raise NonFiniteLoss(progress.epoch, progress.batch, float(ce.detach()), float(kl.detach()), last)
                with torch.no_grad():
                    for buffer, saved in zip(self.model.buffers(), buffers):
                        buffer.copy_(saved)
                progress.skipped += 1
                continue
            total.backward()
            if self.pruner.step():
                self.optimizer.step()
            batch = x.shape[0]
            self.step += 1
            self.train_flops += 3.0 * batch * sparse_forward
            if self.pruner.needs_dense_gradient():
                self.train_flops += batch * (self.flops.dense - sparse_forward)
            sums += torch.stack([total.detach(), ce.detach(), kl.detach()]) * batch
            progress.seen += batch
            if self.stop_requested:
                progress.sums = sums.tolist()
                self.interrupt()
        progress.sums = sums.tolist()

    def train_one_epoch(self, phase: str) -> dict[str, float]:
        """One whole epoch on the full data or the current coreset (used by benchmarks and tests)."""
        progress = EpochProgress(epoch=self.epoch + 1, phase=phase)
        self.train_batches(progress)
        return progress.means()

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
        """Share of the original conv/linear weights kept (masked out or physically removed)."""
        return measure_density(self.model, self.pruner.masks(), self.classifier, self.original_sizes)

    def forward_flops(self) -> float:
        """Forward FLOPs of one sample with the current structure and masks."""
        if self._forward_flops is None:
            densities = measure_density(self.model, self.pruner.masks(), self.classifier).per_layer
            self._forward_flops = self.flops.forward(densities)
        return self._forward_flops

    def follow_structure_change(self, change: StructureChange) -> None:
        """The one place that follows a pruner's change of the model: the optimizer is pointed at replaced
        parameters (keeping LR and surviving momentum), FLOPs are measured on the new shapes."""
        if change.replaced:
            remap_optimizer(self.optimizer, change)
            self.flops = FlopsModel(self.model, self.data.input_shape, self.device)
        self._forward_flops = None

    # --- the run ---------------------------------------------------------------------------------------
    def fit(self, on_epoch: EpochCallback | None = None) -> dict[str, Any]:
        """Run the remaining epochs (all of them, or those left when resumed from a checkpoint)."""
        while self.epoch < self.cfg.train.epochs:
            started = time.perf_counter()
            if self.progress is None:
                self.progress = self.begin_epoch(self.epoch + 1)
            progress = self.progress
            if progress.phase != "skip":
                self.train_batches(progress)
            self.lr_schedule.step()
            progress.seconds += time.perf_counter() - started
            record = self.epoch_record(progress)
            self.history.append(record)
            self.epoch, self.progress = progress.epoch, None
            self.wall_seconds += progress.seconds
            if self.log is not None:
                self.log.log(record)
            interval = self.cfg.checkpoint.interval
            if interval and (self.epoch % interval == 0 or self.epoch == self.cfg.train.epochs):
                self.save_checkpoint()
            if on_epoch is not None:
                on_epoch(record)
        return self.summary()

    def begin_epoch(self, epoch: int) -> EpochProgress:
        progress = EpochProgress(epoch=epoch, phase=self.schedule.phase(epoch), lr=self.optimizer.param_groups[0]["lr"])
        if self.schedule.selects(epoch):
            started = time.perf_counter()
            progress.selection_seconds = self.select(epoch)
            progress.missing_classes = self.missing_classes()
            if progress.missing_classes:
                self.warn(f"some coresets miss whole classes (epoch {epoch}: classes {progress.missing_classes}); see coreset_missing_classes in metrics.jsonl")
            progress.seconds += time.perf_counter() - started
            if self.stop_requested:
                self.progress = progress
                self.interrupt()
        return progress

    def interrupt(self) -> None:
        """Save where we are (mid-epoch if need be) and stop; ``--resume`` continues from exactly here."""
        path = self.save_checkpoint()
        assert self.progress is not None
        raise Interrupted(str(self.stop_requested), self.progress.epoch, self.progress.batch, path)

    def evaluates(self, epoch: int) -> bool:
        """Evaluation passes (test, validation, noisy/clean losses) every ``logging.eval_every`` epochs
        and at the last: on large data they can cost more than a coreset epoch."""
        return epoch % self.cfg.logging.eval_every == 0 or epoch == self.cfg.train.epochs

    def epoch_record(self, progress: EpochProgress) -> dict[str, Any]:
        evaluate = self.evaluates(progress.epoch)
        test_loss, test_acc = self.evaluate(self.test_set) if evaluate else (None, None)
        val_loss, val_acc = self.evaluate(self.val_set) if evaluate and self.val_set is not None else (None, None)
        density = self.density()
        in_coreset = progress.phase == "coreset" and self.coreset is not None
        record: dict[str, Any] = {
            "epoch": progress.epoch,
            "phase": progress.phase,
            "lr": progress.lr,
            **progress.means(),
            "test_acc": test_acc,
            "test_loss": test_loss,
            "val_acc": val_acc,
            "val_loss": val_loss,
            "density": density.overall,
            "density_fc": density.fc,
            "density_backbone": density.backbone,
            "density_layers": density.per_layer,
            "coreset_size": len(self.coreset) if in_coreset and self.coreset is not None else progress.seen,
            "samples_trained": progress.seen,
            "selection_seconds": progress.selection_seconds,
            "epoch_seconds": progress.seconds,
            "train_flops": self.train_flops,
            "relative_flops": self.train_flops / self.dense_reference_flops,
            "step": self.step,
        }
        if progress.skipped:
            record["skipped_batches"] = progress.skipped
        if progress.missing_classes:
            record["coreset_missing_classes"] = progress.missing_classes
        if self.cfg.data.label_noise > 0:
            noisy = self.train_set.noisy
            if evaluate:
                # Fig. 5c: does the model memorise the flipped labels? Loss on noisy vs clean samples.
                losses, _ = self.per_sample(self.train_set)
                record["train_loss_noisy"] = float(losses[noisy].mean()) if bool(noisy.any()) else None
                record["train_loss_clean"] = float(losses[~noisy].mean())
            if in_coreset and self.coreset is not None:
                record["noisy_share"] = float(noisy[self.coreset.indices.to(self.device)].float().mean())
        return record

    def summary(self) -> dict[str, Any]:
        last = self.history[-1]
        return {
            "name": self.cfg.name,
            "method": self.cfg.method,
            "selector": self.cfg.coreset.selector if self.cfg.coreset.enabled else None,
            "pruner": self.cfg.pruner.name if self.method_prunes else "none",
            "test_acc": last["test_acc"],
            "best_test_acc": max(r["test_acc"] for r in self.history if r["test_acc"] is not None),
            "val_acc": last["val_acc"],
            "density": last["density"],
            "density_fc": last["density_fc"],
            "density_backbone": last["density_backbone"],
            # Table 1's "Params. After Pruning": every parameter minus the masked-out or removed ones.
            "params_kept": count_parameters(self.model, self.pruner.masks()),
            "params_total": self.original_params,
            "coreset_size": self.budget if self.cfg.coreset.enabled else len(self.train_set),
            "train_size": len(self.train_set),
            "relative_flops": last["relative_flops"],
            "wall_seconds": self.wall_seconds,
            "selection_seconds": self.selection_seconds,
            "total_steps": self.step,
            "skipped_batches": sum(r.get("skipped_batches", 0) for r in self.history),
            "pruner_settings": self.pruner.settings(),
            "target_sparsity": self.targets,
            "noisy_train_samples": int(self.train_set.noisy.sum()),
            "warnings": self.warnings,
            "device": str(self.device),
            "versions": versions(),
            "run_dir": str(self.run_dir),
        }

    # --- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole run in one dict: enough to continue exactly where it stopped."""
        return {
            "config": self.cfg.model_dump(),
            "epoch": self.epoch,
            "progress": None if self.progress is None else dataclasses.asdict(self.progress),
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "pruner": self.pruner.state_dict(),
            "coreset": None if self.coreset is None else {"indices": self.coreset.indices, "weights": self.coreset.weights},
            "state_preservation": self.sp.state_dict() if self.sp is not None else None,
            "selection_rng": self.selection_rng.bit_generator.state,
            "rng": checkpoint.capture_rng(),
            "train_flops": self.train_flops,
            "selection_seconds": self.selection_seconds,
            "wall_seconds": self.wall_seconds,
            "history": self.history,
            "warnings": self.warnings,
            "noisy_ids": torch.nonzero(self.train_set.noisy).flatten().cpu(),
            "versions": versions(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        noisy = torch.nonzero(self.train_set.noisy).flatten().cpu()
        if not torch.equal(noisy, state["noisy_ids"]):
            raise UsageError("--resume: the checkpoint's noisy-label ids differ from those this configuration produces (data or library changed)")
        try:
            # The pruner first: a structured pruner's state shrinks the fresh model to the saved shapes.
            self.pruner.load_state_dict(state["pruner"])
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UsageError(f"--resume: the checkpoint does not match the model and optimizer its configuration builds: {exc}") from exc
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        coreset = state["coreset"]
        self.coreset = None if coreset is None else Coreset(coreset["indices"], coreset["weights"])
        if self.sp is not None and state["state_preservation"] is not None:
            self.sp.load_state_dict(state["state_preservation"])
        self.selection_rng.bit_generator.state = state["selection_rng"]
        self.epoch, self.step = state["epoch"], state["step"]
        self.progress = None if state["progress"] is None else EpochProgress(**state["progress"])
        self.train_flops, self.selection_seconds = state["train_flops"], state["selection_seconds"]
        self.wall_seconds, self.history, self.warnings = state["wall_seconds"], state["history"], state["warnings"]
        self.checkpoint_epoch = state["epoch"]
        checkpoint.restore_rng(state["rng"])

    def save_checkpoint(self) -> Path:
        path = checkpoint.save(self.run_dir, self.state_dict(), self.cfg.checkpoint.keep, self.checkpoint_epoch)
        self.checkpoint_epoch = self.epoch
        return path


@dataclasses.dataclass
class EpochProgress:
    """An epoch under way: what a mid-epoch checkpoint must remember to finish it identically."""

    epoch: int
    phase: str
    lr: float = 0.0
    batch: int = 0
    seen: int = 0
    skipped: int = 0
    sums: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    selection_seconds: float = 0.0
    seconds: float = 0.0
    missing_classes: list[int] = dataclasses.field(default_factory=list)

    def means(self) -> dict[str, float | None]:
        if self.seen == 0:
            return {"train_loss": None, "train_ce": None, "train_kl": None}
        loss, ce, kl = (v / self.seen for v in self.sums)
        return {"train_loss": loss, "train_ce": ce, "train_kl": kl}


class Interrupted(Exception):
    def __init__(self, signal_name: str, epoch: int, batch: int, path: Path) -> None:
        super().__init__(f"{signal_name} at epoch {epoch}, after batch {batch}")
        self.signal_name, self.epoch, self.batch, self.path = signal_name, epoch, batch, path

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries (sweep workers)
        return Interrupted, (self.signal_name, self.epoch, self.batch, self.path)


class NonFiniteLoss(Exception):
    def __init__(self, epoch: int, batch: int, ce: float, kl: float, last_checkpoint: Path | None) -> None:
        super().__init__(f"non-finite loss at epoch {epoch}, batch {batch} (CE {ce}, KL {kl})")
        self.epoch, self.batch, self.last_checkpoint = epoch, batch, last_checkpoint
        self.ce, self.kl = ce, kl

    def __reduce__(self) -> tuple[Any, ...]:
        return NonFiniteLoss, (self.epoch, self.batch, self.ce, self.kl, self.last_checkpoint)
