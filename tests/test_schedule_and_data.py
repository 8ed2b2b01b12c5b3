"""Epoch schedule, budgets, label noise, batching and the digits split."""

from __future__ import annotations

import pytest
import torch

from swast.config import default_warmup
from swast.data.datasets import build_digits
from swast.data.loading import batch_slices, iterate_batches
from swast.data.noise import apply_symmetric_noise
from swast.errors import UsageError
from swast.schedule import Schedule
from swast.selection import budget_for


def test_continuous_schedule_warms_up_k_epochs_then_selects_every_r():
    s = Schedule(epochs=10, warmup=3, interval=3, coreset=True)
    assert [s.phase(e) for e in range(1, 11)] == ["warm-up"] * 3 + ["coreset"] * 7
    assert [e for e in range(1, 11) if s.selects(e)] == [4, 7, 10]
    assert s.total_steps(full_batches=10, coreset_batches=1) == 3 * 10 + 7 * 1


def test_cords_skip_schedule_skips_until_kappa_t():
    s = Schedule(epochs=20, warmup=2, interval=5, coreset=True, mode="cords_skip", kappa=0.5)
    phases = [s.phase(e) for e in range(1, 21)]
    assert phases == ["warm-up"] * 2 + ["skip"] * 8 + ["coreset"] * 10
    assert [e for e in range(1, 21) if s.selects(e)] == [11, 16]
    assert s.total_steps(10, 1) == 2 * 10 + 10


def test_schedule_without_coreset_is_all_full_data():
    s = Schedule(epochs=4, warmup=2, interval=1, coreset=False)
    assert [s.phase(e) for e in range(1, 5)] == ["full"] * 4 and not any(s.selects(e) for e in range(1, 5))


def test_schedule_with_no_coreset_epoch_left_is_refused():
    with pytest.raises(UsageError, match="no epoch is left"):
        Schedule(epochs=10, warmup=2, interval=1, coreset=True, mode="cords_skip", kappa=1.0)


def test_default_warmup_follows_gradmatch():
    assert default_warmup(300, 0.1) == 15
    assert default_warmup(30, 0.1) == 2
    assert default_warmup(2, 1.0) == 1


def test_budget_is_a_rounded_share_of_the_training_set():
    assert budget_for(0.1, 1293) == 129 and budget_for(0.0001, 50) == 2 and budget_for(1.0, 50) == 50


def test_digits_splits_are_fixed_disjoint_and_stratified():
    a, b = build_digits(None, 0.1, 0), build_digits(None, 0.1, 0)
    assert torch.equal(a.train.inputs, b.train.inputs)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    counts = torch.bincount(a.test.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_symmetric_noise_flips_exactly_the_rate_to_other_classes():
    splits = build_digits(None, 0.1, 0)
    flipped = apply_symmetric_noise(splits.train, 10, 0.2, torch.Generator().manual_seed(0))
    noisy = splits.train.noisy
    assert flipped == round(0.2 * len(splits.train)) == int(noisy.sum())
    assert torch.all(splits.train.labels[noisy] != splits.train.clean_labels[noisy])
    assert torch.equal(splits.train.labels[~noisy], splits.train.clean_labels[~noisy])


def test_batches_cover_the_ids_once_and_never_leave_a_single_sample():
    assert [s.stop - s.start for s in batch_slices(65, 32)] == [32, 33]
    splits = build_digits(None, 0.1, 0)
    ids = torch.arange(100, 165)
    weights = torch.arange(65, dtype=torch.float32)
    seen, pairs = [], []
    for x, y, idx, w in iterate_batches(splits.train, ids, 32, shuffle=True, augment=False, weights=weights,
                                        generator=torch.Generator().manual_seed(0)):
        assert x.shape[0] == y.shape[0] == idx.shape[0] == w.shape[0] >= 2
        assert torch.equal(y, splits.train.labels[idx])
        seen += idx.tolist()
        pairs += list(zip(idx.tolist(), w.tolist()))
    assert sorted(seen) == ids.tolist()
    assert all(w == i - 100 for i, w in pairs), "weights travel with their samples"
