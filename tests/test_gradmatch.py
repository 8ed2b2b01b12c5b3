"""The CORDS GradMatch adapter: real CORDS strategy, any model, exact budget, weights used, FC mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swast.adapters.cords_strategies import CordsGradMatch, Precomputed, pair_loader, strategy_class
from swast.adapters.features import ClassifierView
from swast.data.datasets import build_digits
from swast.models.zoo import resnet18, small_cnn
from swast.selection import SelectionContext, to_coreset


def context(model, budget=50, masks=None, classifier="12"):
    splits = build_digits(None, 0.1, 0)
    return SelectionContext(
        model=model.eval(), dataset=splits.train, budget=budget, num_classes=10, device=torch.device("cpu"),
        epoch=3, total_epochs=10, batch_size=32, classifier=classifier, rng=np.random.default_rng(0), lr=0.05,
        masks=masks or {}, val_dataset=splits.val,
    )


@pytest.mark.parametrize("selection_type", ["PerBatch", "PerClass", "PerClassPerGradient"])
def test_gradmatch_returns_exactly_the_budget_with_weights(selection_type):
    torch.manual_seed(0)
    ctx = context(small_cnn(10, (1, 8, 8)), budget=50)
    coreset = to_coreset("cords.gradmatch", CordsGradMatch(selection_type=selection_type).select(ctx), ctx)
    assert len(coreset) == 50
    assert coreset.weights is not None and (coreset.weights > 0).all()


def test_gradmatch_is_seeded_by_the_run():
    torch.manual_seed(0)
    model = small_cnn(10, (1, 8, 8))
    a = CordsGradMatch(selection_type="PerClass").select(context(model))
    b = CordsGradMatch(selection_type="PerClass").select(context(model))
    assert torch.equal(a.indices, b.indices)


def test_torchvision_models_get_the_cords_forward_contract():
    model = resnet18(10, (1, 8, 8)).eval()
    view = ClassifierView(model, "fc")
    x = torch.randn(4, 1, 8, 8)
    with view.capturing():
        logits, embedding = view(x, last=True, freeze=True)
    assert logits.shape == (4, 10) and embedding.shape == (4, view.get_embedding_dim())
    assert torch.allclose(logits, model.fc(embedding), atol=1e-5)
    ctx = context(model, budget=40, classifier="fc")
    assert len(CordsGradMatch().select(ctx)) == 40


def test_gradient_features_respect_the_fc_mask():
    torch.manual_seed(0)
    model = small_cnn(10, (1, 8, 8)).eval()
    mask = torch.rand(10, 128) > 0.9
    ctx = context(model, masks={"12.weight": mask})
    loader = pair_loader(ctx.dataset, 32)
    view = ClassifierView(model, "12")
    strategy = strategy_class("gradmatchstrategy", "GradMatchStrategy", Precomputed)(
        loader, loader, view, torch.nn.CrossEntropyLoss(reduction="none"), 0.05, torch.device("cpu"), 10, True, "PerClass", None
    )
    strategy.precompute(ctx)
    for per_batch in (False, True):
        strategy.compute_gradients(perBatch=per_batch)
        weight_grads = strategy.grads_per_elem[:, 10:]
        assert torch.count_nonzero(weight_grads[:, ~mask.flatten()]) == 0
        assert torch.count_nonzero(weight_grads[:, mask.flatten()]) > 0


def test_gradmatch_weights_reach_the_training_loss(make_trainer):
    trainer = make_trainer(method="coreset-only", **{"coreset.selector": "cords.gradmatch"})
    trainer.fit()
    coreset = trainer.coreset
    assert coreset is not None and coreset.weights is not None
    assert not torch.allclose(coreset.weights, coreset.weights[0].expand_as(coreset.weights))
    order = torch.argsort(coreset.weights)
    pick = torch.cat([order[:16], order[-16:]])  # a batch mixing light and heavy samples
    ids, w = coreset.indices[pick], coreset.weights[pick]
    x, y = trainer.train_set.fetch(ids)
    logits = trainer.model(x)
    total, ce, _ = trainer.loss(logits, y, ids, w, use_sp=False)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(ce, (per_sample * w).sum() / w.sum())
    assert not torch.allclose(ce, per_sample.mean())


def test_weights_can_be_turned_off(make_trainer):
    trainer = make_trainer(method="coreset-only", **{"coreset.use_weights": False})
    trainer.fit()
    assert trainer.coreset is not None and trainer.coreset.weights is None
