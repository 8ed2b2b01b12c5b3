"""``swast export RUN_DIR``: the trained model in its smallest real form, and what that form costs.

The run's ``checkpoint.pt`` (``Trainer.state_dict()``, config included) is restored on a freshly built
trainer (pruner state first, so a structured run's shrunk shapes are replayed, then the weights). Then:

- if pruning physically shrank the model, the shrunk ``nn.Module`` itself is saved (its shapes no longer
  match what the model registry builds); load it with ``load_exported`` or
  ``torch.load(path, weights_only=False)["module"]``;
- otherwise (masked pruners, dense runs) the state dict is saved with every masked weight as its kept
  values plus a bit-packed mask: 1 bit per position and 4 bytes per kept weight, smaller than the dense
  tensor at any density below about 97% (torch's COO and CSR formats spend 8 to 32 bytes of indices per
  kept weight and only pay off below 10-30% density); ``load_exported`` rebuilds the registry model
  from the stored config and fills it.

Parameters, MACs and CPU latency are measured on the dense model the run started from and on the exported
model loaded back from disk, whose test accuracy is checked against the restored run's.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table
from torch import Tensor, nn

from swast import registry
from swast.config import RunConfig
from swast.data.indexed import IndexedDataset
from swast.data.loading import iterate_batches
from swast.errors import UsageError
from swast.flops import FlopsModel
from swast.pruning import count_parameters
from swast.trainer import Trainer

FORMAT = "swast-export-1"


@dataclass(frozen=True)
class Footprint:
    params: int
    macs: float  # conv + linear multiply-accumulates per sample, as executed
    file_bytes: int
    latency_ms: float


@dataclass(frozen=True)
class ExportReport:
    path: Path
    kind: str  # "module" (physically shrunk) or "masked_state_dict"
    before: Footprint
    after: Footprint
    kept_macs: float  # MACs of the kept weights only (differs from ``after.macs`` for masked models)
    test_acc: float  # the exported model, loaded back from disk
    run_test_acc: float  # the restored run's model
    batch_size: int
    repeats: int
    threads: int


def build_model(cfg: RunConfig, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return registry.models.get(cfg.model.name, field="model.name")(num_classes, input_shape, **cfg.model.options)


def restore(run_dir: Path) -> tuple[Trainer, dict[str, Any]]:
    """A trainer on the CPU holding the run's final model and pruner state."""
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        raise UsageError(f"RUN_DIR: '{path}' does not exist; `swast run` writes it when a run finishes")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    cfg = RunConfig.model_validate({**checkpoint["config"], "device": "cpu"})
    trainer = Trainer(cfg, run_dir)
    trainer.pruner.load_state_dict(checkpoint["pruner"])  # first: a structured run replays its shrinking
    trainer.model.load_state_dict(checkpoint["model"])
    return trainer, checkpoint


def pack(weight: Tensor, mask: Tensor) -> dict[str, Any]:
    bits = np.packbits(mask.detach().cpu().flatten().numpy())
    return {"shape": list(weight.shape), "bits": torch.from_numpy(bits), "values": weight.detach().cpu()[mask.cpu()]}


def unpack(entry: dict[str, Any]) -> Tensor:
    numel = math.prod(entry["shape"])
    mask = torch.from_numpy(np.unpackbits(entry["bits"].numpy(), count=numel).astype(bool))
    dense = torch.zeros(numel, dtype=entry["values"].dtype)
    dense[mask] = entry["values"]
    return dense.view(entry["shape"])


def masked_state_dict(model: nn.Module, masks: dict[str, Tensor]) -> dict[str, Any]:
    """The state dict with each masked weight packed (see the module docstring)."""
    return {name: pack(value, masks[name]) if name in masks else value for name, value in model.state_dict().items()}


def load_exported(path: str | Path) -> nn.Module:
    """The exported model, ready for inference (eval mode, CPU)."""
    data = torch.load(path, map_location="cpu", weights_only=False)
    if data.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not a file written by `swast export`")
    if data["kind"] == "module":
        return data["module"].eval()
    cfg = RunConfig.model_validate(data["config"])
    model = build_model(cfg, data["num_classes"], tuple(data["input_shape"]))
    model.load_state_dict({k: unpack(v) if isinstance(v, dict) else v for k, v in data["state_dict"].items()})
    return model.eval()


def serialized_bytes(obj: Any) -> int:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


@torch.inference_mode()
def cpu_latency_ms(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, repeats: int) -> float:
    """Median wall time of one eval-mode forward pass over a batch, after three warm-up passes."""
    model.eval()
    x = torch.randn(batch_size, *input_shape)
    for _ in range(3):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@torch.no_grad()
def accuracy(model: nn.Module, dataset: IndexedDataset) -> float:
    model.eval()
    correct = 0
    for x, y, _, _ in iterate_batches(dataset, torch.arange(len(dataset)), 512, shuffle=False, augment=False):
        correct += int((model(x).argmax(1) == y).sum())
    return correct / len(dataset)


def export_run(run_dir: Path, output: Path | None = None, batch_size: int = 32, repeats: int = 20) -> ExportReport:
    trainer, checkpoint = restore(run_dir)
    shape = trainer.data.input_shape
    model, masks = trainer.model.eval(), trainer.pruner.masks()
    dense = build_model(trainer.cfg, trainer.data.num_classes, shape)
    shrunk = any(p.shape != q.shape for p, q in zip(model.parameters(), dense.parameters()))
    if shrunk:
        data: dict[str, Any] = {"format": FORMAT, "kind": "module", "module": model, "config": checkpoint["config"]}
    else:
        data = {
            "format": FORMAT,
            "kind": "masked_state_dict",
            "state_dict": masked_state_dict(model, masks),
            "config": checkpoint["config"],
            "num_classes": trainer.data.num_classes,
            "input_shape": list(shape),
        }
    path = output or run_dir / "export" / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    exported = load_exported(path)

    def footprint(m: nn.Module, params: int, file_bytes: int) -> Footprint:
        macs = FlopsModel(m, shape, torch.device("cpu")).dense / 2
        return Footprint(params, macs, file_bytes, cpu_latency_ms(m, shape, batch_size, repeats))

    before = footprint(dense, sum(p.numel() for p in dense.parameters()), serialized_bytes(dense.state_dict()))
    after = footprint(exported, count_parameters(model, masks), path.stat().st_size)
    return ExportReport(
        path=path,
        kind=data["kind"],
        before=before,
        after=after,
        kept_macs=trainer.forward_flops() / 2,
        test_acc=accuracy(exported, trainer.test_set),
        run_test_acc=trainer.evaluate(trainer.test_set)[1],
        batch_size=batch_size,
        repeats=repeats,
        threads=torch.get_num_threads(),
    )


def report_table(r: ExportReport) -> Table:
    table = Table(title=f"swast export: {r.path}", title_justify="left")
    for column in ("", "dense model (before)", "exported model (after)", "after / before"):
        table.add_column(column)

    def row(label: str, a: float, b: float, fmt: str) -> None:
        table.add_row(label, format(a, fmt), format(b, fmt), f"{b / a:.3f}x")

    row("parameters" + (" (non-zero kept)" if r.kind == "masked_state_dict" else ""), r.before.params, r.after.params, ",.0f")
    row("MACs per sample, executed (conv + linear)", r.before.macs, r.after.macs, ",.0f")
    if r.kind == "masked_state_dict":
        row("MACs per sample of the kept weights only", r.before.macs, r.kept_macs, ",.0f")
    row("file size (bytes)", r.before.file_bytes, r.after.file_bytes, ",.0f")
    label = f"CPU latency, ms (forward, batch {r.batch_size}, median of {r.repeats}, {r.threads} threads)"
    row(label, r.before.latency_ms, r.after.latency_ms, ".2f")
    table.add_row("test accuracy", "", f"{100 * r.test_acc:.2f}% (run: {100 * r.run_test_acc:.2f}%)", "")
    if r.kind == "masked_state_dict":
        table.caption = "Masked weights are zeros in dense kernels: the file shrinks, latency does not."
    return table
