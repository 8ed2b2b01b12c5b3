"""Models adapt to the data; FLOPs are measured per layer; W&B never stops a run."""

from __future__ import annotations

import json

import pytest
import torch

from swast.flops import FlopsModel
from swast.models.classifier import find_classifier
from swast.models.zoo import resnet18, resnet101, small_cnn


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28), (3, 96, 96)])
def test_models_adapt_to_channels_size_and_classes(shape):
    for build in (small_cnn, resnet18):
        model = build(7, shape).eval()
        assert model(torch.zeros(2, *shape)).shape == (2, 7)


def test_resnet_stems_and_classifier():
    assert isinstance(resnet18(10, (3, 32, 32)).maxpool, torch.nn.Identity)  # CIFAR stem for small inputs
    assert not isinstance(resnet18(10, (3, 224, 224)).maxpool, torch.nn.Identity)
    assert find_classifier(resnet101(100, (3, 32, 32))) == "fc"
    assert find_classifier(small_cnn(10, (1, 8, 8))) == "12"


def test_flops_per_layer_match_the_convolution_arithmetic():
    model = small_cnn(10, (1, 8, 8), width=4)
    flops = FlopsModel(model, (1, 8, 8), torch.device("cpu"))
    # conv 1->4 on 8x8: 2 * 64 positions * 4 out * 1*3*3 MACs
    assert flops.layer["0.weight"] == 2 * 64 * 4 * 9
    assert flops.layer["12.weight"] == 2 * 16 * 10
    half = {name: 0.5 for name in flops.layer}
    assert flops.forward(half) == pytest.approx(flops.other + 0.5 * sum(flops.layer.values()))


def test_wandb_offline_run_logs_locally(make_trainer, tmp_path, monkeypatch):
    from swast.cli import execute

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    trainer = make_trainer(**{"logging.wandb": True, "train.epochs": 3, "coreset.warmup": 1})
    summary = execute(trainer.cfg, trainer.run_dir)
    offline_runs = list((trainer.run_dir / "wandb").glob("offline-run-*"))
    assert offline_runs and list(offline_runs[0].glob("*.wandb"))
    assert summary["test_acc"] > 0


def test_wandb_failure_warns_once_and_the_run_goes_on(make_trainer, monkeypatch):
    from swast.cli import execute

    monkeypatch.setenv("WANDB_MODE", "no-such-mode")
    trainer = make_trainer(**{"logging.wandb": True, "train.epochs": 3, "coreset.warmup": 1})
    with pytest.warns(UserWarning, match="W&B logging disabled") as record:
        execute(trainer.cfg, trainer.run_dir)
    assert len([w for w in record if "W&B" in str(w.message)]) == 1
    lines = (trainer.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["epoch"] == 3
