"""Reading finished run folders (``config.yaml``, ``summary.json``, ``metrics.jsonl``) and aggregating
them over seeds: the one place that knows how a run's outputs map to a cell of the paper's tables."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from swast.config import METHODS
from swast.errors import UsageError


def is_finished(run_dir: Path) -> bool:
    """A finished run wrote a complete summary.json last (a crash mid-write leaves it unreadable)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and "test_acc" in summary


class CellKey(NamedTuple):
    """What a table cell is made of; seeds vary inside a cell. ``coreset`` is None for a method trained on
    all data, ``prune_rate`` None for a method that does not prune."""

    method: str
    dataset: str
    model: str
    coreset: float | None
    prune_rate: float | None


@dataclass(frozen=True)
class Run:
    folder: Path
    key: CellKey
    seed: int
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}

    def series(self, metric: str) -> list[float]:
        """Per-epoch values of ``metric`` (epochs that did not log it are left out)."""
        return [float(r[metric]) for r in self.metrics if r.get(metric) is not None]

    def rounds(self, metric: str) -> list[float]:
        """``metric`` at each selection round: the epochs in which a coreset was selected."""
        return [float(r[metric]) for r in self.metrics if r.get(metric) is not None and (r.get("selection_seconds") or 0) > 0]


def read_run(folder: Path) -> Run:
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    summary = json.loads((folder / "summary.json").read_text())
    metrics_path = folder / "metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()] if metrics_path.exists() else []
    key = CellKey(
        method=str(summary["method"]),
        dataset=str(config["data"]["dataset"]),
        model=str(config["model"]["name"]),
        # The summary names a selector only when coresets were used and a pruner only when it pruned.
        coreset=float(config["coreset"]["fraction"]) if summary.get("selector") is not None else None,
        prune_rate=float(config["pruner"]["rate"]) if summary.get("pruner", "none") != "none" else None,
    )
    return Run(folder, key, int(config["seed"]), config, summary, metrics)


def load_runs(folder: Path) -> tuple[list[Run], list[str]]:
    """Finished runs in the sub-folders of ``folder``, and a note for each sub-folder left out."""
    if not folder.is_dir():
        raise UsageError(f"SWEEP_DIR: '{folder}' is not a folder; give the folder `swast sweep` wrote (--sweep-dir)")
    runs, notes = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (sub / "config.yaml").exists():
            continue  # not a run folder (e.g. the report's own output)
        if not is_finished(sub):
            failed = " (failed: see its error.txt)" if (sub / "error.txt").exists() else ""
            notes.append(f"left out unfinished run folder {sub.name}{failed}")
            continue
        try:
            runs.append(read_run(sub))
        except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            notes.append(f"left out run folder {sub.name}: unreadable outputs ({type(exc).__name__}: {exc})")
    if not runs:
        raise UsageError(f"SWEEP_DIR: '{folder}' holds no finished run folders (config.yaml + summary.json)")
    return runs, notes


def by_cell(runs: list[Run]) -> dict[CellKey, list[Run]]:
    """Runs grouped by cell, each cell's runs sorted by seed; one seed twice in a cell would bias its mean."""
    cells: dict[CellKey, list[Run]] = defaultdict(list)
    for run in runs:
        twin = next((r for r in cells[run.key] if r.seed == run.seed), None)
        if twin is not None:
            raise UsageError(
                f"run folders '{twin.folder.name}' and '{run.folder.name}' are the same cell ({run.key.method}, seed {run.seed}); "
                "keep one of them in the folder you report on"
            )
        cells[run.key].append(run)
    return {key: sorted(group, key=lambda r: r.seed) for key, group in cells.items()}


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n - 1 in the denominator; None for a single run) over seeds."""

    mean: float
    std: float | None
    n: int


def stat(values: list[float]) -> Stat:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stat(mean, std, n)


def method_order(method: str) -> int:
    """The order methods are listed in (the presets' order; unknown methods last)."""
    names = list(METHODS)
    return names.index(method) if method in names else len(names)
