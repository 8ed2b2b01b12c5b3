"""Checkpoints that survive crashes: written atomically, rotated, and read back with clear errors.

``checkpoint.pt`` in the run folder is always the newest complete state; with ``checkpoint.keep`` > 1
the previous ones are kept as ``checkpoint-epochNNNN.pt``. A write goes to a temporary file in the same
folder, is flushed to disk and then renamed over the old file, so a kill during a save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from swast.errors import UsageError

FORMAT = 1
LATEST = "checkpoint.pt"
_ROTATED = re.compile(r"checkpoint-epoch(\d+)\.pt$")


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rotated(run_dir: Path) -> list[Path]:
    """Older checkpoints, newest first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-epoch*.pt") if (m := _ROTATED.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save(run_dir: Path, state: dict[str, Any], keep: int, replaced_epoch: int | None) -> Path:
    """Write ``state`` as the newest checkpoint; ``replaced_epoch`` names the epoch of the checkpoint it
    replaces, under which that one is kept when ``keep`` > 1."""
    run_dir.mkdir(parents=True, exist_ok=True)
    latest = run_dir / LATEST
    tmp = run_dir / f".{LATEST}.tmp"
    with tmp.open("wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if keep > 1 and latest.exists() and replaced_epoch is not None:
        os.replace(latest, run_dir / f"checkpoint-epoch{replaced_epoch:04d}.pt")
    os.replace(tmp, latest)
    for old in rotated(run_dir)[max(keep - 1, 0) :]:
        old.unlink()
    return latest


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint file (or a run folder's newest), turning every failure into a usable message."""
    if not path.exists():
        raise UsageError(f"--resume: '{path}' does not exist; give a run folder (OUTPUT_DIR/NAME) or a checkpoint file")
    file = path / LATEST if path.is_dir() else path
    if not file.exists():
        where = f"run folder '{path}'" if path.is_dir() else f"'{path}'"
        raise UsageError(f"--resume: {where} holds no checkpoint ({LATEST}); the run stopped before its first checkpoint, start it again")
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        older = rotated(file.parent)
        hint = f" An older one may be intact: --resume {older[0]}." if older else " Start the run again with --overwrite."
        raise UsageError(f"--resume: checkpoint '{file}' cannot be read ({type(exc).__name__}: {exc}).{hint}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT or "config" not in state:
        raise UsageError(f"--resume: '{file}' is not a swast checkpoint of format {FORMAT}")
    return state
