"""Each method runs end to end on digits and does what its preset says."""

from __future__ import annotations

import pytest

from swast.config import METHODS


@pytest.mark.parametrize("method", list(METHODS))
def test_method_runs_and_follows_its_preset(make_trainer, method):
    trainer = make_trainer(method=method)
    summary = trainer.fit()
    preset = METHODS[method]
    phases = [r["phase"] for r in trainer.history]
    assert len(trainer.history) == 8
    assert ("coreset" in phases) == preset.coreset
    assert summary["test_acc"] > 0.5, "a few epochs on digits should learn far above chance (0.1)"
    if preset.coreset:
        assert summary["coreset_size"] == round(0.1 * summary["train_size"])
        assert all(r["samples_trained"] == summary["coreset_size"] for r in trainer.history if r["phase"] == "coreset")
    if preset.prune_scope == "none":
        assert summary["density"] == 1.0
    else:
        assert summary["density"] < 1.0
    kl_parts = [r["train_kl"] for r in trainer.history if r["phase"] == "coreset"]
    if preset.state_preservation:
        assert any(kl > 0 for kl in kl_parts)
    else:
        assert all(kl == 0 for kl in kl_parts)
    flops = summary["relative_flops"]
    assert flops == pytest.approx(1.0) if method == "full" else flops < 1.0


@pytest.mark.parametrize("selector", ["random", "el2n", "cords.gradmatch"])
def test_each_selector_trains_on_exactly_the_budget(make_trainer, selector):
    trainer = make_trainer(**{"coreset.selector": selector, "method": "coreset-only"})
    trainer.fit()
    assert trainer.coreset is not None
    assert len(trainer.coreset) == trainer.budget
    assert trainer.coreset.indices.unique().numel() == trainer.budget


def test_noisy_share_is_logged_with_label_noise(make_trainer):
    trainer = make_trainer(**{"data.label_noise": 0.3, "coreset.selector": "random"})
    trainer.fit()
    shares = [r["noisy_share"] for r in trainer.history if r["phase"] == "coreset"]
    assert shares and all(0.0 <= s <= 1.0 for s in shares)
    # A random coreset's noisy share should be near the noise rate, not 0 or 1.
    assert 0.1 < sum(shares) / len(shares) < 0.5
    assert "noisy_share" not in trainer.history[0]
    # Fig. 5c's metric: loss on the flipped labels exceeds the loss on clean ones (no memorisation yet).
    last = trainer.history[-1]
    assert last["train_loss_noisy"] > last["train_loss_clean"]


def test_evaluation_can_run_every_few_epochs(make_trainer):
    trainer = make_trainer(**{"logging.eval_every": 3, "data.label_noise": 0.2})
    summary = trainer.fit()
    evaluated = [r["epoch"] for r in trainer.history if r["test_acc"] is not None]
    assert evaluated == [3, 6, 8]  # every third epoch and always the last
    assert [r["epoch"] for r in trainer.history if "train_loss_noisy" in r] == evaluated
    assert summary["test_acc"] == trainer.history[-1]["test_acc"] is not None
