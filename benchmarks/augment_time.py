"""Time of the training augmentation on one batch: swast's batch CropFlip against torchvision's
RandomCrop + RandomHorizontalFlip called once per sample (the way to get independent crops with
torchvision alone). Median of interleaved repeats, 1 CPU thread (and the GPU when there is one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.transforms import v2

from swast.data.augment import CropFlip


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def measure(batch: int, size: int, device: torch.device, repeats: int) -> dict[str, float]:
    padding = size // 8
    x = torch.randn(batch, 3, size, size, device=device)
    ours = CropFlip(padding, torch.zeros(3))
    theirs = v2.Compose([v2.RandomCrop(size, padding=padding), v2.RandomHorizontalFlip()])
    ours(x), theirs(x[0])  # warm up
    a = median_ms(lambda: ours(x), repeats, device)
    b = median_ms(lambda: torch.stack([theirs(sample) for sample in x]), repeats, device)
    return {"batch": batch, "size": size, "device": str(device), "cropflip_ms": round(a, 3), "torchvision_per_sample_ms": round(b, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/results/augment_time.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [measure(batch, size, device, args.repeats) for device in devices for batch, size in ((128, 32), (256, 64))]
    load = [round(x, 1) for x in os.getloadavg()]  # a shared machine: say how busy it was
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average": load, "torch": torch.__version__,
              "threads": 1, "results": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
