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


PAPER = {  # preset: (dataset, model, selector, T, batch, R) from the paper's appendix
    "paper-cifar10-resnet18.yaml": ("cifar10", "resnet18", "cords.gradmatch", 300, 128, 20),
    "paper-cifar10-resnet101.yaml": ("cifar10", "resnet101", "cords.gradmatch", 300, 128, 20),
    "paper-cifar100-resnet18.yaml": ("cifar100", "resnet18", "cords.gradmatch", 300, 128, 20),
    "paper-cifar100-resnet101.yaml": ("cifar100", "resnet101", "cords.gradmatch", 300, 128, 20),
    "paper-tinyimagenet-resnet101.yaml": ("tinyimagenet", "resnet101", "moderate", 300, 256, 20),
    "paper-imagenet-resnet101.yaml": ("imagenet", "resnet101", "el2n", 90, 512, 5),
}


@pytest.mark.parametrize("name", sorted(PAPER))
@pytest.mark.parametrize("noise", [None, 0.1, 0.2])
def test_paper_presets_hold_the_appendix_settings_and_take_the_noisy_overrides(name, noise):
    cfg = build_config(Path(__file__).parents[1] / "configs" / name, {"data.label_noise": noise})
    dataset, model, selector, epochs, batch, interval = PAPER[name]
    assert (cfg.data.dataset, cfg.model.name, cfg.coreset.selector) == (dataset, model, selector)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.coreset.interval) == (epochs, batch, interval)
    assert cfg.coreset.warmup == {300: 15, 90: 5}[epochs] and cfg.coreset.fraction == 0.1
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.schedule, cfg.state_preservation.weight) == ("sgd", 0.05, "cosine", 0.1)
    assert cfg.method == "swast-cut" and cfg.pruner.fc_sparsity == 0.9 and cfg.pruner.name == "rigl"
    assert cfg.data.label_noise == (noise or 0.0) and cfg.data.noise_type == "symmetric"


@pytest.mark.parametrize("name", ["cpu-digits.yaml", "cpu-fashion-mnist.yaml"])
def test_cpu_presets_keep_the_paper_ratios_of_warmup_and_interval_to_epochs(name):
    cfg = build_config(Path(__file__).parents[1] / "configs" / name)
    paper = build_config(Path(__file__).parents[1] / "configs" / "paper-cifar10-resnet18.yaml")
    assert cfg.coreset.warmup / cfg.train.epochs == paper.coreset.warmup / paper.train.epochs
    assert cfg.coreset.interval / cfg.train.epochs == paper.coreset.interval / paper.train.epochs
    assert (cfg.method, cfg.coreset.selector, cfg.coreset.fraction, cfg.pruner.rate) == (
        paper.method, paper.coreset.selector, paper.coreset.fraction, paper.pruner.rate)
    assert cfg.coreset.options == paper.coreset.options
