"""Structured pruning's real speed-up: forward and training-step time of a model before and after the
``structured`` pruner removed channels, measured in one process with interleaved repeats (median of
the per-pair ratios, as in epoch_time.py).

The pruned model is the dense one after swast's StructuredPruner ran its whole schedule (one event
here, magnitude importance) at each rate; ``--prune-rate`` means the share of conv/linear weights
removed, as in a run. For comparison, the same dense model trained with swast's ``static`` masked
pruner at the same rate (every conv/linear weight masked uniformly): its zeros go through the same dense
kernels. Inputs are random tensors of the data set's shape (timing does not depend on the values).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from epoch_time import median_ratio

from swast import registry
from swast.flops import FlopsModel
from swast.models.classifier import prunable_weights
from swast.pruning import PrunePlan

SETTINGS = {
    "small_cnn": (1, 28, 28),  # Fashion-MNIST shape, the CPU benchmark set
    "resnet18": (3, 32, 32),  # CIFAR shape, CIFAR stem
}


def optimizer_for(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The run's default SGD settings."""
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


def with_pruner(model: torch.nn.Module, name: str, plan: PrunePlan) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    model = copy.deepcopy(model)
    optimizer = optimizer_for(model)
    pruner = registry.pruners.create(name, {"end_step": 1} if name == "structured" else {}, field="pruner", options_field="options")
    pruner.attach(model, optimizer, plan)
    pruner.step()  # the structured pruner's one event; the static mask is already in place
    return model, optimizer_for(model) if name == "structured" else optimizer, pruner


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    model.train()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@torch.inference_mode()
def forward(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.eval()
    model(x)


def measure(name: str, rate: float, batch_size: int, repeats: int) -> dict[str, Any]:
    shape = SETTINGS[name]
    torch.manual_seed(0)
    dense = registry.models.get(name)(10, shape)
    dense_opt = optimizer_for(dense)
    pruned, pruned_opt, structured = with_pruner(dense, "structured", PrunePlan({}, 1, rate, "backbone", {}, shape))
    uniform = {n: rate for n in prunable_weights(dense)}
    masked, masked_opt, _ = with_pruner(dense, "static", PrunePlan(uniform, 1))
    x, y = torch.randn(batch_size, *shape), torch.randint(0, 10, (batch_size,))
    cpu = torch.device("cpu")
    return {
        "model": name,
        "input_shape": list(shape),
        "prune_rate": rate,
        "channel_ratio": structured.settings()["channel_ratio"],
        "params_dense_structured": [sum(p.numel() for p in m.parameters()) for m in (dense, pruned)],
        "forward_flops_dense_structured": [FlopsModel(m, shape, cpu).dense for m in (dense, pruned)],
        "forward_structured_vs_dense": median_ratio(lambda: forward(pruned, x), lambda: forward(dense, x), repeats),
        "train_step_structured_vs_dense": median_ratio(
            lambda: train_step(pruned, pruned_opt, x, y), lambda: train_step(dense, dense_opt, x, y), repeats
        ),
        "forward_masked_vs_dense": median_ratio(lambda: forward(masked, x), lambda: forward(dense, x), repeats),
        "train_step_masked_vs_dense": median_ratio(
            lambda: train_step(masked, masked_opt, x, y), lambda: train_step(dense, dense_opt, x, y), repeats
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rates", nargs="+", type=float, default=[0.5, 0.8])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps the two sides comparable)")
    parser.add_argument("--out", default="benchmarks/results/structured_speedup.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [measure(name, rate, args.batch_size, args.repeats) for name in args.models for rate in args.rates]
    report = {
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "note": "ratios are pruned (or masked) time / dense time, lower is faster; a_seconds and b_seconds are the medians",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
