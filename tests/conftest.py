from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swast.config import RunConfig, build_config
from swast.trainer import Trainer



def quick_config(tmp_path: Path, sets: list[str] | None = None, **flags: Any) -> RunConfig:
    """A short digits run (8 epochs, warm-up 2, selection every 2) with progress bars off."""
    base = {"train.epochs": 8, "coreset.warmup": 2, "coreset.interval": 2, "logging.progress": False, "output_dir": str(tmp_path)}
    base.update(flags)
    return build_config(None, base, sets)


@pytest.fixture
def make_trainer(tmp_path: Path):
    def make(sets: list[str] | None = None, **flags: Any) -> Trainer:
        cfg = quick_config(tmp_path, sets, **flags)
        return Trainer(cfg, tmp_path / str(cfg.name))

    return make
