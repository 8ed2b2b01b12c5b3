"""Presets in configs/ validate, and the default preset is exactly what `swast run` does with no flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from swast.config import RunConfig, build_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_preset_validates(path):
    cfg = build_config(path)
    assert cfg.coreset.warmup is not None and cfg.pruner.scope is not None


def test_default_preset_matches_the_embedded_default():
    preset = build_config(Path(__file__).parents[1] / "configs" / "digits-swast-cut.yaml").model_dump()
    default = RunConfig().resolved().model_dump()
    preset.pop("name"), default.pop("name")
    assert preset == default
