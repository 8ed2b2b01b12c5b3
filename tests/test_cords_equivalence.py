"""swast's fast GradMatch path computes CORDS' own gradient features and makes CORDS' own selection.

The reference is CORDS' GradMatchStrategy run as CORDS' training code runs it (benchmarks/cords_stock.py:
a model with a native ``forward(x, last, freeze)``, sequential tensor loaders, autograd per batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from swast.adapters.cords_strategies import CordsGradMatch, Precomputed, exact_budget, strategy_class
from swast.data.datasets import build_digits
from swast.models.zoo import small_cnn
from swast.selection import SelectionContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cords_stock import NativeCordsNet, StockGradMatch  # noqa: E402

DEVICE = torch.device("cpu")
pytestmark = pytest.mark.filterwarnings("ignore:.*pin_memory")  # CORDS' per-class loaders ask for pinned memory


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    splits = build_digits(None, 0.1, 0)
    model = small_cnn(10, (1, 8, 8)).eval()
    with torch.no_grad():  # a little training signal so the gradients are not all alike
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return splits, model


def context(splits, model, budget=129):
    return SelectionContext(
        model=model, dataset=splits.train, budget=budget, num_classes=10, device=DEVICE, epoch=3, total_epochs=10,
        batch_size=32, classifier=str(len(model) - 1), rng=np.random.default_rng(0), lr=0.05, val_dataset=splits.val,
    )


def stock(splits, model, selection_type, **options):
    return StockGradMatch(
        NativeCordsNet(model), (splits.train.inputs, splits.train.labels), (splits.val.inputs, splits.val.labels),
        batch_size=32, lr=0.05, device=DEVICE, num_classes=10, selection_type=selection_type, **options,
    )


@pytest.mark.parametrize("per_batch, per_class", [(False, False), (True, False), (False, True)])
def test_gradient_features_equal_cords_autograd(setup, per_batch, per_class):
    splits, model = setup
    reference = stock(splits, model, "PerClass").strategy
    ctx = context(splits, model)
    fast = strategy_class("gradmatchstrategy", "GradMatchStrategy", Precomputed)(
        reference.trainloader, reference.valloader, reference.model, reference.loss, 0.05, DEVICE, 10, True, "PerClass", None
    )
    fast.precompute(ctx)
    if per_class:  # what CORDS' PerClass mode sets before each class
        rows = torch.nonzero(splits.train.labels == 3).flatten().tolist()
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(reference.trainloader.dataset, rows), batch_size=32)
        val_rows = torch.nonzero(splits.val.labels == 3).flatten().tolist()
        val_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(reference.valloader.dataset, val_rows), batch_size=32)
        reference.pctrainloader = fast.pctrainloader = loader
        reference.pcvalloader = fast.pcvalloader = val_loader
    reference.compute_gradients(valid=True, perBatch=per_batch, perClass=per_class)
    fast.compute_gradients(valid=True, perBatch=per_batch, perClass=per_class)
    for ours, theirs in ((fast.grads_per_elem, reference.grads_per_elem), (fast.val_grads_per_elem, reference.val_grads_per_elem)):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    reference.get_labels(valid=True)
    fast.get_labels(valid=True)
    assert torch.equal(fast.trn_lbls, reference.trn_lbls) and torch.equal(fast.val_lbls, reference.val_lbls)


@pytest.mark.parametrize("selection_type", ["PerBatch", "PerClass", "PerClassPerGradient"])
@pytest.mark.parametrize("valid", [False, True])
def test_selection_equals_cords_own_path(setup, selection_type, valid):
    splits, model = setup
    ctx = context(splits, model)
    ours = CordsGradMatch(selection_type=selection_type, valid=valid).select(ctx)
    numpy_seed = int(np.random.default_rng(0).integers(2**31 - 1))  # what swast seeds numpy with for ctx.rng
    ids, gammas = stock(splits, model, selection_type, valid=valid).select(ctx.budget, numpy_seed)
    theirs = exact_budget(ids, gammas, ctx.budget, len(splits.train), np.random.default_rng(1))
    assert len(ours) == ctx.budget
    assert torch.equal(ours.indices, theirs.indices)
    # CORDS' PerClass modes run the model on per-class batches; a convolution on a batch of another size
    # can round the embedding differently in the last bit, and OMP's least squares amplify that to ~1e-3.
    torch.testing.assert_close(ours.weights, theirs.weights, rtol=1e-2, atol=1e-5)
