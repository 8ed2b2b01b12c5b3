"""Epoch-time benchmark, measured in one process so machine noise hits both sides alike.

1. swast's training epoch (method `full`, no pruner) against a plain hand-written PyTorch loop on the
   same model, data, batch size and optimizer. Target: at most 1.05x.
2. swast's epoch on a 10% coreset against its epoch on the full set. Target: at most 0.15x.
3. For information: a SWaST-cut epoch (RigL + state preservation) against the plain loop.

Runs are interleaved (A B A B ...) and the median of the per-pair ratios is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from swast.config import build_config
from swast.trainer import Trainer


def trainer_for(method: str, dataset: str, batch_size: int, out: Path, **extra: Any) -> Trainer:
    flags = {"method": method, "data.dataset": dataset, "train.batch_size": batch_size, "train.epochs": 10,
             "coreset.fraction": 0.1, "coreset.warmup": 1, "device": "cpu", "logging.progress": False,
             "output_dir": str(out), **extra}
    cfg = build_config(None, flags)
    return Trainer(cfg, out / str(cfg.name))


def plain_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """The loop a PyTorch user writes by hand for an in-memory dataset."""
    model.train()
    perm = torch.randperm(len(y))
    for i in range(0, len(y), batch_size):
        idx = perm[i : i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ratio(a: Any, b: Any, repeats: int) -> dict[str, float]:
    a(), b()  # warm-up: allocator, kernels, first-touch
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return {
        "ratio": statistics.median(ta / tb for ta, tb in zip(times_a, times_b)),
        "a_seconds": statistics.median(times_a),
        "b_seconds": statistics.median(times_b),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps the two sides comparable)")
    parser.add_argument("--out", default="benchmarks/results/epoch_time.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scratch = Path("benchmarks/results/scratch")

    full = trainer_for("full", args.dataset, args.batch_size, scratch)
    x, y = full.train_set.inputs, full.train_set.labels
    plain_model = trainer_for("full", args.dataset, args.batch_size, scratch).model
    t = full.cfg.train
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov, weight_decay=t.weight_decay)
    vs_plain = median_ratio(lambda: full.train_one_epoch("full"), lambda: plain_epoch(plain_model, plain_opt, x, y, args.batch_size), args.repeats)

    coreset = trainer_for("coreset-only", args.dataset, args.batch_size, scratch, **{"coreset.selector": "random"})
    coreset.select(epoch=2)
    core_vs_full = median_ratio(lambda: coreset.train_one_epoch("coreset"), lambda: coreset.train_one_epoch("full"), args.repeats)

    cut = trainer_for("swast-cut", args.dataset, args.batch_size, scratch, **{"coreset.selector": "random", "coreset.fraction": 1.0})
    cut.select(epoch=2)
    cut_vs_plain = median_ratio(lambda: cut.train_one_epoch("coreset"), lambda: plain_epoch(plain_model, plain_opt, x, y, args.batch_size), args.repeats)

    result = {
        "dataset": args.dataset,
        "train_samples": len(y),
        "batch_size": args.batch_size,
        "model": full.cfg.model.name,
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "swast_full_vs_plain_loop": {**vs_plain, "target": "<= 1.05"},
        "coreset10_vs_full_epoch": {**core_vs_full, "target": "<= 0.15"},
        "swast_cut_all_data_vs_plain_loop": {**cut_vs_plain, "target": "informative (RigL + KL term)"},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
