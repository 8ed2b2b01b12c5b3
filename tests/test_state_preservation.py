"""State preservation: the KL term is zero for the recorded model and grows when weights move."""

from __future__ import annotations

import torch

from swast.data.datasets import build_digits
from swast.models.zoo import small_cnn
from swast.state_preservation import StatePreservation


def recorded():
    torch.manual_seed(0)
    splits = build_digits(None, 0.1, 0)
    model = small_cnn(10, (1, 8, 8))
    ids = torch.arange(0, 200, 3)
    sp = StatePreservation(weight=0.1, temperature=1.0, scope="all", num_samples=len(splits.train), device=torch.device("cpu"))
    sp.record(model, splits.train, ids, batch_size=32, device=torch.device("cpu"))
    return splits, model, sp, ids


def kl_now(model, splits, sp, ids):
    model.eval()
    with torch.no_grad():
        x, _ = splits.train.fetch(ids)
        return float(sp.kl(model(x), ids))


def test_kl_is_zero_for_the_recorded_model_on_the_recorded_inputs():
    splits, model, sp, ids = recorded()
    assert abs(kl_now(model, splits, sp, ids)) < 1e-6


def test_kl_grows_with_the_size_of_the_weight_change():
    splits, model, sp, ids = recorded()
    values = []
    for scale in (0.01, 0.1):
        torch.manual_seed(1)
        perturbed = small_cnn(10, (1, 8, 8))
        perturbed.load_state_dict(model.state_dict())
        with torch.no_grad():
            for p in perturbed.parameters():
                p.add_(scale * torch.randn_like(p))
        values.append(kl_now(perturbed, splits, sp, ids))
    assert 1e-6 < values[0] < values[1]


def test_samples_without_a_record_add_nothing():
    splits, model, sp, ids = recorded()
    others = torch.arange(1, 200, 3)  # disjoint from the recorded ids
    model.eval()
    with torch.no_grad():
        x, _ = splits.train.fetch(others)
        assert float(sp.kl(model(x) + 5.0 * torch.randn(len(others), 10), others)) == 0.0


def test_selective_scope_only_keeps_correctly_classified_samples():
    splits = build_digits(None, 0.1, 0)
    model = small_cnn(10, (1, 8, 8))
    ids = torch.arange(100)
    sp = StatePreservation(0.1, 1.0, "correct", len(splits.train), torch.device("cpu"))
    sp.record(model, splits.train, ids, 32, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        predicted = model(splits.train.fetch(ids)[0]).argmax(1)
    assert torch.equal(sp.keep, predicted == splits.train.labels[ids])
