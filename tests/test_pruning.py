"""Layer-wise targets, measured densities and the RigL adapter."""

from __future__ import annotations

import math

import pytest
import torch

from swast.models.classifier import find_classifier, prunable_weights
from swast.models.zoo import resnet18, small_cnn
from swast.pruning import distribute_sparsity, plan_targets


def weighted_sparsity(targets, shapes):
    total = sum(math.prod(s) for s in shapes.values())
    return sum(targets[n] * math.prod(shapes[n]) for n in shapes) / total


@pytest.mark.parametrize("distribution", ["erk", "uniform"])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_distribution_hits_the_target_over_the_scope(distribution, rate):
    model = resnet18(10, (3, 32, 32))
    shapes = {n: w.shape for n, w in prunable_weights(model).items() if n != "fc.weight"}
    first = next(iter(shapes))
    targets = distribute_sparsity(shapes, rate, distribution, {first: 0.0})
    assert targets[first] == 0.0
    assert weighted_sparsity(targets, shapes) == pytest.approx(rate, abs=1e-9)
    assert all(0.0 <= s <= 1.0 for s in targets.values())
    if distribution == "erk":
        # ERK keeps small layers denser than big ones.
        assert targets["layer1.0.conv1.weight"] < targets["layer4.1.conv2.weight"]


def test_erk_saturated_layers_become_dense_and_the_rest_compensate():
    shapes = {"tiny": torch.Size([2, 2]), "big": torch.Size([512, 512])}
    targets = distribute_sparsity(shapes, 0.5, "erk")
    assert targets["tiny"] == 0.0
    assert weighted_sparsity(targets, shapes) == pytest.approx(0.5)


def test_trim_prunes_only_the_fc_and_cut_fixes_the_fc():
    model = small_cnn(10, (1, 8, 8))
    fc = find_classifier(model) + ".weight"
    assert plan_targets(model, find_classifier(model), "fc", 0.7, 0.9, "erk", True) == {fc: 0.7}
    cut = plan_targets(model, find_classifier(model), "backbone", 0.7, 0.9, "erk", True)
    assert cut[fc] == 0.9
    assert set(cut) == set(prunable_weights(model))


@pytest.mark.parametrize("rate", [0.3, 0.7])
def test_measured_densities_match_the_request(make_trainer, rate):
    trim = make_trainer(method="swast-trim", **{"pruner.rate": rate})
    trim.fit()
    d = trim.density()
    assert d.fc == pytest.approx(1 - rate, abs=0.01)
    assert d.backbone == 1.0

    cut = make_trainer(method="swast-cut", **{"pruner.rate": rate})
    cut.fit()
    d = cut.density()
    assert d.backbone == pytest.approx(1 - rate, abs=0.01)
    assert d.fc == pytest.approx(0.1, abs=0.01)
    # The masks really are applied to the weights: no pruned weight holds a value.
    for name, mask in cut.pruner.masks().items():
        weight = dict(cut.model.named_parameters())[name]
        assert torch.count_nonzero(weight[~mask]) == 0


def test_rigl_rewires_on_the_real_step_schedule(make_trainer):
    trainer = make_trainer(method="swast-cut")
    before = {n: m.clone() for n, m in trainer.pruner.masks().items()}
    trainer.fit()
    settings = trainer.pruner.settings()
    assert settings["t_end"] == int(0.75 * trainer.total_steps)
    assert settings["updates_done"] == (settings["t_end"] - 1) // settings["update_interval"]
    after = trainer.pruner.masks()
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert changed, "RigL drop/grow should have moved some connections"
    assert all(int(before[n].sum()) == int(after[n].sum()) for n in before), "RigL keeps each layer's density"


def test_rigl_options_come_from_config(make_trainer):
    trainer = make_trainer(method="prune-only", sets=["pruner.options.update_interval=5", "pruner.options.end_fraction=0.5"])
    assert trainer.pruner.settings()["update_interval"] == 5
    assert trainer.pruner.settings()["t_end"] == int(0.5 * trainer.total_steps)


@pytest.mark.parametrize("distribution", ["erk", "uniform"])
@pytest.mark.parametrize("rate", [0.5, 0.8])
def test_overrides_are_held_and_the_other_layers_compensate(distribution, rate):
    model = resnet18(10, (3, 32, 32))
    overrides = {"layer1.*": 0.3, "layer4.1.conv2": 0.95, "fc.weight": 0.5}
    targets = plan_targets(model, "fc", "backbone", rate, 0.9, distribution, True, overrides)
    shapes = {n: w.shape for n, w in prunable_weights(model).items() if n != "fc.weight"}
    layer1 = [n for n in shapes if n.startswith("layer1.")]
    assert len(layer1) == 4 and all(targets[n] == 0.3 for n in layer1)
    assert targets["layer4.1.conv2.weight"] == 0.95
    assert targets["fc.weight"] == 0.5  # an override replaces fc_sparsity
    assert targets["conv1.weight"] == 0.0  # the dense first layer still holds
    assert weighted_sparsity(targets, shapes) == pytest.approx(rate, abs=1e-9)


def test_overrides_outside_the_scope_are_pruned_as_given():
    model = small_cnn(10, (1, 8, 8))
    targets = plan_targets(model, "12", "fc", 0.7, 0.9, "erk", True, {"7": 0.5})
    assert targets == {"12.weight": 0.7, "7.weight": 0.5}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layer9.*": 0.5}, "pattern 'layer9.*' matches no prunable weight"),
        ({"bn1.weight": 0.5}, "matches no prunable weight"),
        ({"layer1.*": 0.5, "layer1.0.conv1": 0.7}, "matches both"),
        ({"layer4.*": 0.99}, "cannot make pruner.rate=0.5 hold"),
        ({"layer4.*": 0.0}, "unreachable"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    from swast.errors import UsageError

    with pytest.raises(UsageError, match="pruner.overrides") as info:
        plan_targets(resnet18(10, (3, 32, 32)), "fc", "backbone", 0.5, 0.9, "erk", True, overrides)
    assert message in str(info.value)
