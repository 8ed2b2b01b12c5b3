"""Moderate coreset: distances to the class median of the penultimate features, the band around the
median distance, and per-class budgets when class-balanced."""

from __future__ import annotations

import numpy as np
import torch

from swast.adapters.moderate import Moderate, distances_to_class_median, middle_band, proportional_budgets
from swast.data.datasets import build_digits
from swast.models.zoo import small_cnn
from swast.selection import SelectionContext, to_coreset


def test_distances_match_numpy_medians():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(41, 5, generator=gen)
    labels = torch.randint(0, 3, (41,), generator=gen)
    got = distances_to_class_median(features, labels, 3)
    f, y = features.numpy(), labels.numpy()
    for c in range(3):
        rows = f[y == c]
        expected = np.linalg.norm(rows - np.median(rows, axis=0), axis=1)
        np.testing.assert_allclose(got[labels == c].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_band_is_centred_on_the_median_rank():
    scores = torch.tensor([9.0, 0.0, 7.0, 2.0, 5.0, 1.0, 8.0, 4.0, 3.0, 6.0])
    assert sorted(scores[middle_band(scores, 4)].tolist()) == [3.0, 4.0, 5.0, 6.0]
    assert sorted(scores[middle_band(scores, 3)].tolist()) == [3.0, 4.0, 5.0]


def test_per_class_budgets_are_proportional_and_exact():
    assert proportional_budgets(torch.tensor([5, 3, 2]), 5).tolist() == [3, 1, 1]
    budgets = proportional_budgets(torch.tensor([130, 128, 131, 125, 129]), 64)
    assert int(budgets.sum()) == 64 and budgets.max() - budgets.min() <= 1


def test_moderate_selects_from_the_classifier_input_features():
    torch.manual_seed(0)
    splits = build_digits(None, 0.1, 0)
    model = small_cnn(10, (1, 8, 8)).eval()
    x, y = splits.train.inputs, splits.train.labels
    with torch.no_grad():
        features = model[:-1](x)  # the input of the final Linear layer, computed independently
    distances = distances_to_class_median(features, y, 10)
    for class_balanced in (False, True):
        ctx = SelectionContext(
            model=model, dataset=splits.train, budget=100, num_classes=10, device=torch.device("cpu"), epoch=3,
            total_epochs=10, batch_size=32, classifier="12", rng=np.random.default_rng(0), lr=0.05,
        )
        coreset = to_coreset("moderate", Moderate(class_balanced=class_balanced).select(ctx), ctx)
        assert len(coreset) == 100 and coreset.weights is None
        chosen = torch.zeros(len(y), dtype=torch.bool)
        chosen[coreset.indices] = True
        if class_balanced:
            expected = proportional_budgets(torch.bincount(y, minlength=10), 100)
            assert torch.bincount(y[chosen], minlength=10).tolist() == expected.tolist()
            for c in range(10):
                d = distances[y == c]
                picked = d[chosen[y == c]]
                # the picks are a contiguous band of the class's sorted distances around its median
                ranks = torch.searchsorted(d.sort().values, picked)
                assert ranks.max() - ranks.min() == len(picked) - 1
                assert abs(float(ranks.float().mean()) - (len(d) - 1) / 2) <= 1
        else:
            ranks = torch.argsort(torch.argsort(distances))[chosen]
            assert sorted(ranks.tolist()) == list(range((len(y) - 100) // 2, (len(y) - 100) // 2 + 100))
