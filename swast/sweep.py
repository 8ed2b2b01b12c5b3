"""`swast sweep`: the paper's grids (method x coreset size x prune rate x seed) as one resumable command.

Every cell is an ordinary run, built by ``build_config`` and trained by ``swast.cli.execute``, in its own
folder under one sweep folder, so a cell's outputs are exactly those of ``swast run`` and ``swast report``
reads them the same way. A cell whose folder holds a complete ``summary.json`` is finished and skipped; a
cell that raises is recorded (``sweep.json`` and ``CELL/error.txt``) and the others go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from rich.progress import Progress

from swast import registry
from swast.config import SWEEP_SECTION, MethodName, RunConfig, build_config, dump_yaml, read_yaml
from swast.errors import UsageError
from swast.loggers import flatten
from swast.results import is_finished
from swast.trainer import Interrupted

# Sweep axis -> (the sweep flag, the run config key it sets).
AXES: dict[str, tuple[str, str]] = {
    "method": ("--method", "method"),
    "coreset": ("--coreset", "coreset.fraction"),
    "prune_rate": ("--prune-rate", "pruner.rate"),
    "seeds": ("--seeds", "seed"),
}
# Keys the sweep sets for every cell (a file's value is only the axis default); --set may not fix them.
SWEEP_OWNED_KEYS = {key for _, key in AXES.values()} | {"name", "output_dir"}
MANIFEST = "sweep.json"
ERROR_FILE = "error.txt"
LOCKS = ".locks"  # one lock file per cell, held while the cell trains
STATUSES = ("done", "skipped", "failed", "busy", "pending")


class SweepAxes(BaseModel):
    """The ``sweep:`` section of a config file, or the sweep flags: each axis a list (or a comma-separated
    string). An axis left out takes the single value of the run config."""

    model_config = ConfigDict(extra="forbid")

    method: list[MethodName] | None = None
    coreset: list[float] | None = None
    prune_rate: list[float] | None = None
    seeds: list[int] | None = None

    @field_validator("method", "coreset", "prune_rate", "seeds", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if value is not None and not isinstance(value, list):
            return [value]
        return value

    @field_validator("method", "coreset", "prune_rate", "seeds")
    @classmethod
    def _distinct(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None:
            if not value:
                raise ValueError("needs at least one value")
            if len(set(value)) != len(value):
                raise ValueError("lists a value twice")
        return value

    @field_validator("coreset")
    @classmethod
    def _fractions(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not all(0.0 < v <= 1.0 for v in value):
            raise ValueError("coreset fractions must lie in (0, 1]")
        return value

    @field_validator("prune_rate")
    @classmethod
    def _rates(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not all(0.0 <= v < 1.0 for v in value):
            raise ValueError("prune rates must lie in [0, 1)")
        return value


def read_axes(file: str | Path | None, flags: dict[str, str | None]) -> SweepAxes:
    """Axes from the file's ``sweep:`` section, each replaced by its flag when the flag is given."""
    section = read_yaml(file).get(SWEEP_SECTION) if file is not None else None
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise UsageError(f"{SWEEP_SECTION}: must be a mapping with the keys {', '.join(AXES)}, got {section!r}")
    merged = {**section, **{axis: value for axis, value in flags.items() if value is not None}}
    try:
        return SweepAxes.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            axis = str(error["loc"][0])
            where = f"{SWEEP_SECTION}.{axis} ({AXES[axis][0]})" if axis in AXES else f"{SWEEP_SECTION}.{axis}"
            if error["type"] == "extra_forbidden":
                hint = registry.closest(axis, list(AXES))
                lines.append(f"unknown key '{SWEEP_SECTION}.{axis}'" + (f"; did you mean '{SWEEP_SECTION}.{hint}'?" if hint else f"; valid keys: {', '.join(AXES)}"))
            else:
                lines.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}, got {error['input']!r}")
        raise UsageError("invalid sweep:\n  " + "\n  ".join(lines)) from None


@dataclass(frozen=True)
class Cell:
    """One run of the grid. ``coreset``/``prune_rate`` are None for a method that uses no coreset / does
    not prune: such a method is not repeated over that axis."""

    method: str
    coreset: float | None
    prune_rate: float | None
    seed: int

    @property
    def name(self) -> str:
        parts = [self.method]
        if self.coreset is not None:
            parts.append(f"c{self.coreset:g}")
        if self.prune_rate is not None:
            parts.append(f"p{self.prune_rate:g}")
        parts.append(f"s{self.seed}")
        return "-".join(parts)

    def flags(self) -> dict[str, Any]:
        values = {"method": self.method, "coreset.fraction": self.coreset, "pruner.rate": self.prune_rate, "seed": self.seed}
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class CellResult:
    name: str
    status: str  # one of STATUSES
    error: str | None = None
    seconds: float | None = None


@dataclass
class Sweep:
    """A validated grid: every cell's resolved configuration, built before any training starts."""

    directory: Path
    axes: dict[str, list[Any]]
    configs: dict[Cell, RunConfig]
    plugins: list[str]
    progress: bool
    results: dict[str, CellResult] = field(default_factory=dict)


def plan(
    file: str | Path | None,
    axis_flags: dict[str, str | None],
    flags: dict[str, Any],
    sets: list[str],
    directory: str | Path | None,
    plugins: Iterable[str] = (),
) -> Sweep:
    """Validate the axes and every cell's configuration, and check names, before anything is trained."""
    for item in sets:
        key = item.split("=", 1)[0].strip()
        if key == SWEEP_SECTION or key.startswith(SWEEP_SECTION + "."):
            raise UsageError(f"--set '{item}': give sweep axes with {', '.join(flag for flag, _ in AXES.values())}, not --set")
        if key in SWEEP_OWNED_KEYS:
            raise UsageError(f"--set '{item}': '{key}' is set by the sweep for each cell; {_owned_hint(key)}")
    axes = read_axes(file, axis_flags)
    base = build_config(file, flags, sets)
    values = {
        "method": axes.method or [base.method],
        "coreset": axes.coreset or [base.coreset.fraction],
        "prune_rate": axes.prune_rate or [base.pruner.rate],
        "seeds": axes.seeds or [base.seed],
    }
    folder = Path(directory) if directory is not None else Path("sweeps") / (Path(file).stem if file is not None else "default")
    fixed = {**flags, "output_dir": str(folder), "logging.progress": False}
    configs: dict[Cell, RunConfig] = {}
    for method in values["method"]:
        probe = build_config(file, {**fixed, "method": method}, sets)
        check_names(probe)
        coresets = values["coreset"] if probe.coreset.enabled else [None]
        rates = values["prune_rate"] if probe.prunes else [None]
        for coreset in coresets:
            for rate in rates:
                for seed in values["seeds"]:
                    cell = Cell(method, coreset, rate, seed)
                    configs[cell] = build_config(file, {**fixed, **cell.flags(), "name": cell.name}, sets)
    return Sweep(folder, values, configs, list(plugins), base.logging.progress)


def _owned_hint(key: str) -> str:
    for axis, (flag, owned) in AXES.items():
        if owned == key:
            return f"give it as a sweep axis with {flag} or {SWEEP_SECTION}.{axis}"
    return "the sweep folder (--sweep-dir) and the cell names decide it"


def check_names(cfg: RunConfig) -> None:
    """Resolve selector, pruner, dataset and model names once, so a typo stops the sweep before any cell."""
    from swast.trainer import build_components

    build_components(cfg)
    registry.datasets.get(cfg.data.dataset, field="data.dataset (--dataset)")
    registry.models.get(cfg.model.name, field="model.name (--model)")


# --- finished cells ------------------------------------------------------------------------------------
def _comparable(tree: dict[str, Any]) -> dict[str, Any]:
    """Settings that can change a cell's numbers (where it is written and how it logs cannot)."""
    return {key: value for key, value in tree.items() if key not in ("name", "output_dir", "logging")}


def stale_cells(sweep: Sweep) -> dict[str, list[str]]:
    """Finished cells whose recorded configuration differs from what this sweep would run, with the
    differing keys: skipping them would mix two experiments in one table."""
    stale = {}
    for cell, cfg in sweep.configs.items():
        run_dir = sweep.directory / cell.name
        if is_finished(run_dir):
            try:
                recorded = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
            except (OSError, yaml.YAMLError):
                recorded = {}
            old, new = flatten(_comparable(recorded)), flatten(_comparable(yaml.safe_load(dump_yaml(cfg))))
            differing = sorted(key.replace("/", ".") for key in old.keys() | new.keys() if old.get(key) != new.get(key))
            if differing:
                stale[cell.name] = differing
    return stale


# --- running -------------------------------------------------------------------------------------------
def run_cell(config: dict[str, Any], run_dir: str) -> CellResult:
    """Train one cell with the ordinary run path; any exception becomes a failed result, never a crash of
    the sweep. Runs in a worker process or in the sweep's own process."""
    from swast.cli import execute

    start = time.perf_counter()
    folder = Path(run_dir)
    cfg = RunConfig.model_validate(config)
    with cell_lock(folder) as ours:
        if not ours:
            return CellResult(str(cfg.name), "busy", "another process is training this cell", 0.0)
        if is_finished(folder):  # finished by another process since this sweep planned its work
            return CellResult(str(cfg.name), "skipped")
        state = resumable_state(folder, cfg)
        if state is None and folder.exists():
            shutil.rmtree(folder)  # leftovers of a failed attempt, or of one with another config
        try:
            execute(cfg, folder, state)
        except Interrupted:
            raise  # the user stopped the sweep: not a failed cell
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the others
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ERROR_FILE).write_text(traceback.format_exc())
            return CellResult(str(cfg.name), "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return CellResult(str(cfg.name), "done", None, time.perf_counter() - start)


@contextlib.contextmanager
def cell_lock(folder: Path) -> Iterator[bool]:
    """Yields whether this process may train the cell. Two sweeps over one folder (a second terminal, an
    array job) then share out the cells instead of both training one into the same files. The lock file
    lies outside the cell folder, which a fresh attempt deletes, and the OS releases it when its process
    dies, so a killed sweep never leaves a cell locked."""
    path = folder.parent / LOCKS / f"{folder.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def run_cell_in_worker(config: dict[str, Any], run_dir: str) -> CellResult:
    """``run_cell`` in a worker process, which stops taking cells once one of them was interrupted."""
    global _worker_stopping, _worker_busy
    if _worker_stopping:
        raise KeyboardInterrupt  # the sweep is stopping: this cell is left for the next run of the command
    _worker_busy = True
    try:
        return run_cell(config, run_dir)
    except Interrupted:
        _worker_stopping = True
        raise
    finally:
        _worker_busy = False


def resumable_state(folder: Path, cfg: RunConfig) -> dict[str, Any] | None:
    """The checkpoint of an interrupted cell with this very config, to continue instead of restarting."""
    from swast import checkpoint

    if not (folder / checkpoint.LATEST).exists():
        return None
    try:
        state = checkpoint.load(folder)
    except UsageError:
        return None
    return state if state["config"] == cfg.model_dump() else None


# Set in a worker process once it was told to stop: it then takes no further cell. ProcessPoolExecutor may
# already have handed it the next one, which would otherwise train to the end while the sweep waits.
_worker_stopping = False
_worker_busy = False  # a cell is training in this worker


def _stop_taking_cells(_signum: int, _frame: Any) -> None:
    global _worker_stopping
    _worker_stopping = True


def _watch_the_sweep(sweep_pid: int) -> None:
    """A worker's daemon thread. When the sweep's process dies (even by kill -9), ask the cell in progress to
    checkpoint and stop, then exit: an orphan would otherwise train on into the sweep folder, racing the next
    run of the command for the same cells, or wait for work forever."""
    while os.getppid() == sweep_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    while _worker_busy:  # the cell saves its checkpoint and stops
        time.sleep(0.1)
    os._exit(128 + signal.SIGTERM)


def _init_worker(plugins: list[str], threads: int) -> None:
    import torch

    signal.signal(signal.SIGTERM, _stop_taking_cells)  # between cells; a cell's own handler saves a checkpoint
    threading.Thread(target=_watch_the_sweep, args=(os.getppid(),), daemon=True).start()
    torch.set_num_threads(threads)
    for plugin in plugins:
        registry.load_plugin(plugin)


def threads_per_worker(workers: int) -> int:
    """CPU threads each worker's torch may use: OMP_NUM_THREADS when set, else the cores shared out, so
    N workers do not oversubscribe them."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else max(1, (os.cpu_count() or 1) // workers)


def execute_cells(sweep: Sweep, todo: list[Cell], workers: int) -> Iterator[CellResult]:
    """Yield each cell's result as it finishes (in order of finishing when workers > 1)."""
    jobs = [(sweep.configs[cell].model_dump(), str(sweep.directory / cell.name)) for cell in todo]
    if not jobs:
        return
    if workers == 1:
        for config, run_dir in jobs:
            yield run_cell(config, run_dir)
        return
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=get_context("spawn"),  # fork would copy torch's thread pools and CUDA state
        initializer=_init_worker,
        initargs=(sweep.plugins, threads_per_worker(workers)),
    )
    try:
        futures = {pool.submit(run_cell_in_worker, config, run_dir): Path(run_dir).name for config, run_dir in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Interrupted:
                raise
            except Exception as exc:  # noqa: BLE001 - the worker process itself died (e.g. out of memory)
                yield CellResult(futures[future], "failed", f"worker process failed: {type(exc).__name__}: {exc}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_manifest(sweep: Sweep, workers: int) -> None:
    """sweep.json: the grid, every cell's status and the error of each failed cell (written atomically
    after every cell, so an interrupted sweep leaves a readable record)."""
    cells = []
    for cell in sweep.configs:
        result = sweep.results.get(cell.name, CellResult(cell.name, "pending"))
        cells.append({**asdict(cell), **asdict(result)})
    counts = count_statuses(c["status"] for c in cells)
    manifest = {"axes": sweep.axes, "workers": workers, "threads_per_worker": threads_per_worker(workers) if workers > 1 else None,
                "plugins": sweep.plugins, "counts": counts, "cells": cells}
    sweep.directory.mkdir(parents=True, exist_ok=True)
    tmp = sweep.directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, sweep.directory / MANIFEST)


def run(sweep: Sweep, workers: int, progress: Progress) -> dict[str, int]:
    """Skip finished cells, run the rest (``workers`` processes), record every outcome; returns counts."""
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    stale = stale_cells(sweep)
    if stale:
        listing = "; ".join(f"{name} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})" for name, keys in stale.items())
        raise UsageError(
            f"sweep folder '{sweep.directory}' holds finished cells run with a different configuration: {listing}. "
            "Choose another --sweep-dir, or delete those cell folders to run them again."
        )
    todo = []
    for cell in sweep.configs:
        if is_finished(sweep.directory / cell.name):
            sweep.results[cell.name] = CellResult(cell.name, "skipped")
        else:
            todo.append(cell)
    write_manifest(sweep, workers)
    with progress:
        task = progress.add_task(f"sweep {sweep.directory}", total=len(todo), status="")
        for result in execute_cells(sweep, todo, workers):
            sweep.results[result.name] = result
            write_manifest(sweep, workers)
            if result.status == "failed":
                progress.console.print(f"[bold red]failed[/] {result.name}: {result.error}", highlight=False, soft_wrap=True)
            progress.update(task, advance=1, status=f"{result.status} {result.name}")
    return count_statuses(r.status for r in sweep.results.values())


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    seen = list(statuses)
    return {status: seen.count(status) for status in STATUSES}
