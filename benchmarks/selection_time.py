"""Selection-time benchmark, measured in one process so machine noise hits both sides alike.

1. swast's ``cords.gradmatch`` selection against CORDS' stock GradMatch path (benchmarks/cords_stock.py:
   a model with a native ``forward(x, last, freeze)``, tensor DataLoaders, ``GradMatchStrategy`` called as
   CORDS' ``GradMatchDataLoader`` calls it) on the same model, data and budget. Target: at most 1.0x.
   Stock runs twice: with the device string ``"cpu"`` that CORDS' configs pass (CORDS then takes its
   numpy OMP solver, which ignores ``lam`` and ``eps``) and with ``torch.device("cpu")`` (its torch OMP
   solver, the one swast uses). ``same_selection`` is the Jaccard overlap of the two coresets.
2. Every selector's selection time (``Trainer.select``: selection plus swast's checks) as a share of one
   swast training epoch on the full training split.

Runs are interleaved (A B A B ...) and the median of the per-pair ratios is reported. Both tables use a
model trained for one epoch first, so the gradients differ between samples as they do mid-run.

Data: digits (built in) and Fashion-MNIST read from its IDX files (/usr/share/datasets/fashion-mnist,
Debian package dataset-fashion-mnist); a stratified subset keeps the run short on a CPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch

from cords_stock import NativeCordsNet, StockGradMatch
from epoch_time import median_ratio, timed
from swast import registry
from swast.adapters.cords_strategies import cords_module, exact_budget
from swast.adapters.features import gradient_features, model_outputs
from swast.config import build_config
from swast.data.datasets import stratified_split
from swast.data.indexed import DataSplits, IndexedDataset
from swast.selection import SelectionContext
from swast.trainer import Trainer

FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAME = "benchmark.fashion-mnist-idx"  # registered in this process only

GRADMATCH_MODES = ("PerBatch", "PerClass", "PerClassPerGradient")
SELECTORS: list[tuple[str, dict[str, Any]]] = [
    *[("cords.gradmatch", {"selection_type": mode}) for mode in GRADMATCH_MODES],
    ("cords.craig", {}),
    ("cords.glister", {}),
    ("cords.random", {}),
    ("moderate", {}),
    ("moderate", {"class_balanced": True}),
    ("el2n", {}),
    ("random", {}),
]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): magic (0, 0, dtype, ndim), big-endian dims, then the data."""
    with gzip.open(path) as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data[4 : 4 + 4 * ndim], dtype=">u4")
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(tuple(int(d) for d in dims))


def build_fashion(root: str | None, val_fraction: float, split_seed: int, train_samples: int = 60000) -> DataSplits:
    """Fashion-MNIST from its IDX files: a stratified subset of ``train_samples`` training images (and a
    validation split of it), the 10,000 test images; standardised with the training statistics."""
    images = read_idx(FASHION / "train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz").astype(np.int64)
    if train_samples < len(labels):
        _, subset = stratified_split(labels, train_samples / len(labels), split_seed)
        images, labels = images[subset], labels[subset]
    train, val = stratified_split(labels, val_fraction, split_seed)
    mean, std = images[train].mean(), images[train].std()
    test_images = read_idx(FASHION / "t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
    test_labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz").astype(np.int64)

    def split(x: np.ndarray, y: np.ndarray) -> IndexedDataset:
        return IndexedDataset(torch.from_numpy((x - mean) / std).contiguous(), torch.from_numpy(y))

    return DataSplits(
        train=split(images[train], labels[train]), val=split(images[val], labels[val]),
        test=split(test_images, test_labels), num_classes=10, input_shape=(1, 28, 28),
    )


def warmed_trainer(dataset: str, args: argparse.Namespace, out: Path) -> Trainer:
    flags = {
        "method": "coreset-only", "data.dataset": dataset, "train.batch_size": args.batch_size, "train.epochs": 10,
        "coreset.fraction": args.fraction, "coreset.warmup": 1, "device": "cpu", "logging.progress": False,
        "output_dir": str(out), "model.options": {"width": args.width},
    }
    if dataset == FASHION_NAME:
        flags["data.options"] = {"train_samples": args.fashion_samples}
    trainer = Trainer(build_config(None, flags), out / dataset)
    trainer.train_one_epoch("full")
    return trainer


def use_selector(trainer: Trainer, name: str, options: dict[str, Any]) -> None:
    trainer.selector = registry.selectors.create(name, options, field="selector", options_field="options")
    trainer.cfg.coreset.selector = name


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / len(sa | sb)


def gradmatch_vs_stock(trainer: Trainer, mode: str, repeats: int) -> dict[str, Any]:
    use_selector(trainer, "cords.gradmatch", {"selection_type": mode})
    model, train, val = trainer.model, trainer.train_set, trainer.val_set
    assert val is not None
    seed = int(np.random.default_rng(0).integers(2**31 - 1))  # the numpy seed swast derives from a fresh rng
    row: dict[str, Any] = {"selection_type": mode, "budget": trainer.budget}
    for label, device in (("stock_cords_cpu_string", "cpu"), ("stock_torch_device", torch.device("cpu"))):
        model.eval()  # CORDS selects with a deep copy of the model in the mode it had when the strategy was built
        stock = StockGradMatch(
            NativeCordsNet(model), (train.inputs, train.labels), (val.inputs, val.labels), batch_size=trainer.cfg.train.batch_size,
            lr=trainer.cfg.train.lr, device=device, num_classes=trainer.data.num_classes, selection_type=mode,
        )
        timing = median_ratio(lambda: trainer.select(epoch=2), lambda: stock.select(trainer.budget, seed), repeats)
        trainer.selection_rng = np.random.default_rng(0)
        trainer.select(epoch=2)
        theirs = exact_budget(*stock.select(trainer.budget, seed), trainer.budget, len(train), np.random.default_rng(1))
        assert trainer.coreset is not None
        row[label] = {
            "swast_vs_stock": timing["ratio"], "swast_seconds": timing["a_seconds"], "stock_seconds": timing["b_seconds"],
            "same_selection": jaccard(trainer.coreset.indices, theirs.indices),
        }
    return row


def omp_solvers(trainer: Trainer, repeats: int) -> dict[str, Any]:
    """CORDS' two OMP solvers on one real problem: class 0's per-sample gradient features (PerClass).
    CORDS takes the numpy one when given the device string "cpu", the torch one for a torch.device."""
    helpers = cords_module("gradmatchstrategy")
    trainer.model.eval()
    ctx = SelectionContext(
        model=trainer.model, dataset=trainer.train_set, budget=trainer.budget, num_classes=trainer.data.num_classes,
        device=trainer.device, epoch=2, total_epochs=10, batch_size=trainer.cfg.train.batch_size,
        classifier=trainer.classifier, rng=np.random.default_rng(0), lr=trainer.cfg.train.lr,
    )
    out = model_outputs(ctx)
    rows = torch.nonzero(out.labels == 0).flatten()
    a = gradient_features(out.loss_gradient()[rows], out.embedding[rows], linear_layer=True).T.contiguous()
    b = a.sum(dim=1)
    nnz = math.ceil(trainer.budget * len(rows) / len(trainer.train_set))
    picks: dict[str, int] = {}

    def numpy_solver() -> None:
        picks["numpy"] = int(np.count_nonzero(helpers.OrthogonalMP_REG(a.numpy(), b.numpy(), nnz=nnz, positive=True, lam=0)))

    def torch_solver() -> None:
        x = helpers.OrthogonalMP_REG_Parallel_V1(a, b, nnz=nnz, positive=True, lam=0.0, tol=1e-100, device=trainer.device)
        picks["torch"] = int(torch.count_nonzero(x))

    trainer.model.train()
    timing = median_ratio(torch_solver, numpy_solver, repeats)
    return {
        "problem": f"{a.shape[0]} gradient dims x {a.shape[1]} samples, {nnz} picks requested",
        "torch_vs_numpy": timing["ratio"], "torch_seconds": timing["a_seconds"], "numpy_seconds": timing["b_seconds"],
        "picks_returned": picks,
    }


def selection_shares(trainer: Trainer, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, options in SELECTORS:
        use_selector(trainer, name, options)
        first = timed(lambda: trainer.select(epoch=2))  # CRAIG's first call also compiles apricot's numba kernels
        timing = median_ratio(lambda: trainer.select(epoch=2), lambda: trainer.train_one_epoch("full"), repeats)
        rows.append({
            "selector": name, "options": options, "share_of_epoch": timing["ratio"], "selection_seconds": timing["a_seconds"],
            "epoch_seconds": timing["b_seconds"], "first_call_seconds": first,
        })
        print(f"  {name} {options}: {timing['a_seconds']:.3f} s = {timing['ratio']:.3f} epochs", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"], choices=["digits", "fashion-mnist"])
    parser.add_argument("--fashion-samples", type=int, default=20000, help="Fashion-MNIST training images used (of 60,000)")
    parser.add_argument("--width", type=int, default=16, help="small_cnn width (32 is the built-in default)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fraction", type=float, default=0.1, help="coreset budget as a fraction of the training split")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch and numba CPU threads (1 keeps the two sides comparable)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/selection_time_<datasets>.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))  # apricot's parallel kernels (CRAIG)
    registry.datasets.add(FASHION_NAME, build_fashion, description="Fashion-MNIST from IDX files (benchmark only)")
    scratch = Path("benchmarks/results/scratch")

    result: dict[str, Any] = {
        "batch_size": args.batch_size, "fraction": args.fraction, "model": f"small_cnn(width={args.width})",
        "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "datasets": {},
    }
    for dataset in args.datasets:
        start = time.perf_counter()
        trainer = warmed_trainer(FASHION_NAME if dataset == "fashion-mnist" else dataset, args, scratch)
        print(f"{dataset}: {len(trainer.train_set)} training samples, budget {trainer.budget}", flush=True)
        solvers = omp_solvers(trainer, args.repeats)
        print(f"  omp solvers {json.dumps(solvers)}", flush=True)
        gradmatch = []
        for mode in GRADMATCH_MODES:
            gradmatch.append(gradmatch_vs_stock(trainer, mode, args.repeats))
            print(f"  gradmatch {json.dumps(gradmatch[-1])}", flush=True)
        result["datasets"][dataset] = {
            "train_samples": len(trainer.train_set), "val_samples": len(trainer.val_set or []), "budget": trainer.budget,
            "gradmatch_vs_stock": gradmatch, "target": "swast_vs_stock <= 1.0", "cords_omp_solvers": solvers,
            "selection_share_of_epoch": selection_shares(trainer, args.repeats),
            "benchmark_seconds": time.perf_counter() - start,
        }
    out = Path(args.out or f"benchmarks/results/selection_time_{'_'.join(args.datasets)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
