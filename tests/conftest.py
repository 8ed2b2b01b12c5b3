from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from swast import registry
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


@pytest.fixture(autouse=True)
def isolated_registries(tmp_path_factory: pytest.TempPathFactory):
    """Registrations made by one test (plugins, decorators) must not leak into the next; plugin modules
    are forgotten too, so the next test's --plugin imports (and registers) them afresh. Only modules from
    tests/ and pytest's own temporary folders: forgetting a library (a checkout under /tmp holds its
    virtual environment there too) would import it twice, and numba's two type systems then disagree."""
    registry._load_builtins()
    saved = {kind: dict(reg._entries) for kind, reg in registry.ALL.items()}
    modules_before = set(sys.modules)
    yield
    for kind, reg in registry.ALL.items():
        reg._entries = saved[kind]
    tests_dir = str(Path(__file__).parent)
    for name in set(sys.modules) - modules_before:
        path = getattr(sys.modules[name], "__file__", None) or ""
        if path.startswith((tests_dir, str(tmp_path_factory.getbasetemp()))):
            del sys.modules[name]
