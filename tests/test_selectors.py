"""Every registered selector: end to end in a run, exact budgets, seeded determinism, clear failures,
and selection on a model that RigL is pruning."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from swast import registry
from swast.adapters import cords_strategies
from swast.adapters.cords_strategies import CordsCraig, CordsGlister, OrderedScores, exact_budget, pair_loader, strategy_class
from swast.adapters.features import ClassifierView, model_outputs
from swast.cli import main
from swast.data.datasets import build_digits
from swast.errors import UsageError
from swast.models.zoo import small_cnn
from swast.selection import SelectionContext, to_coreset

pytestmark = pytest.mark.filterwarnings("ignore:.*pin_memory")

# (name, options): every selector and the modes that take a different code path.
SELECTORS = [
    ("cords.gradmatch", {"selection_type": "PerBatch"}),
    ("cords.gradmatch", {"selection_type": "PerClass"}),
    ("cords.gradmatch", {"selection_type": "PerClassPerGradient"}),
    ("cords.craig", {}),
    ("cords.craig", {"selection_type": "PerBatch", "linear_layer": True}),
    ("cords.glister", {}),
    ("cords.glister", {"selection_type": "PerBatch", "greedy": "Naive"}),
    ("cords.random", {}),
    ("moderate", {}),
    ("moderate", {"class_balanced": True}),
    ("el2n", {}),
    ("random", {}),
]


def case_id(case: tuple[str, dict]) -> str:
    name, options = case
    return name + "".join(f"-{v}" for v in options.values())


@pytest.fixture(scope="module")
def digits():
    return build_digits(None, 0.1, 0)


@pytest.fixture(scope="module")
def trained_model(digits):
    """A small CNN after one epoch on digits: gradients that differ between samples, as mid-run."""
    torch.manual_seed(0)
    model = small_cnn(10, (1, 8, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = digits.train.inputs, digits.train.labels
    for i in range(0, len(y), 32):
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def context(digits, model, budget=129, seed=0, val=True, **overrides):
    fields = dict(
        model=model, dataset=digits.train, budget=budget, num_classes=10, device=torch.device("cpu"), epoch=3,
        total_epochs=10, batch_size=32, classifier="12", rng=np.random.default_rng(seed), lr=0.05,
        val_dataset=digits.val if val else None,
    )
    fields.update(overrides)
    return SelectionContext(**fields)


def create(name, options):
    return registry.selectors.create(name, options, field="coreset.selector", options_field="coreset.options")


# Short runs: warm-up 1 epoch, then coresets selected at epochs 2 and 4 (random, el2n and the default
# GradMatch run end to end in test_methods.py).
SHORT_RUN = {"train.epochs": 4, "coreset.warmup": 1, "coreset.interval": 2}


@pytest.mark.parametrize("case", [("cords.craig", {}), ("cords.glister", {}), ("cords.random", {}), ("moderate", {"class_balanced": True})], ids=case_id)
def test_selector_trains_on_exactly_the_budget_in_a_run(make_trainer, case):
    name, options = case
    sets = [f"coreset.options.{k}={v}" for k, v in options.items()]
    trainer = make_trainer(sets, method="coreset-only", **{"coreset.selector": name}, **SHORT_RUN)
    summary = trainer.fit()
    coreset = trainer.coreset
    assert coreset is not None and len(coreset) == trainer.budget == 129
    assert coreset.indices.unique().numel() == trainer.budget
    assert [r["coreset_size"] for r in trainer.history if r["phase"] == "coreset"] == [129] * 3
    assert [r["selection_seconds"] > 0 for r in trainer.history] == [False, True, False, True]
    assert summary["test_acc"] > 0.3


@pytest.mark.parametrize("case", SELECTORS, ids=case_id)
def test_selector_is_deterministic_under_the_run_seed(digits, trained_model, case):
    name, options = case
    answers = []
    for seed in (0, 0, 1):
        ctx = context(digits, trained_model, budget=100, seed=seed)
        answers.append(to_coreset(name, create(name, options).select(ctx), ctx))
    first, again, other_seed = answers
    assert len(first) == 100
    assert torch.equal(first.indices, again.indices)
    assert (first.weights is None) == (again.weights is None)
    if first.weights is not None:
        assert torch.equal(first.weights, again.weights)
    if name in ("cords.random", "random"):
        assert not torch.equal(first.indices, other_seed.indices)


def test_selection_leaves_global_rngs_alone(digits, trained_model):
    """CORDS draws from numpy's, Python's and torch's global RNGs; a selection must not shift training's."""
    import random

    np.random.seed(5)
    random.seed(5)
    torch.manual_seed(5)
    expected = (np.random.rand(), random.random(), torch.rand(1))
    np.random.seed(5)
    random.seed(5)
    torch.manual_seed(5)
    for name in ("cords.random", "cords.glister", "cords.gradmatch"):
        create(name, {}).select(context(digits, trained_model))
    assert (np.random.rand(), random.random()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])


# --- exact budgets out of CORDS' rounded answers -------------------------------------------------------------
def test_exact_budget_trims_merges_and_tops_up():
    rng = np.random.default_rng(0)
    over = exact_budget([5, 1, 7, 3], [0.5, 2.0, 1.0, 0.1], 2, 10, rng)
    assert over.indices.tolist() == [1, 7] and over.weights.tolist() == [2.0, 1.0]
    repeated = exact_budget([4, 2, 4], [1.0, 1.0, 2.5], 2, 10, rng)
    assert repeated.indices.tolist() == [4, 2] and repeated.weights.tolist() == [3.5, 1.0]
    short = exact_budget([9], [3.0], 4, 10, rng)
    assert len(short) == 4 and short.indices[0] == 9 and short.indices.unique().numel() == 4
    assert short.weights.tolist() == [3.0, 1.0, 1.0, 1.0]


def test_craig_picks_apricot_facility_location_of_each_class(digits, trained_model):
    """CRAIG's per-class picks are apricot's facility-location picks on that class's own gradients:
    the rows and the ids CORDS maps them to stay aligned (CORDS 0.0.4 shuffles one and not the other)."""
    from apricot import FacilityLocationSelection

    ctx = context(digits, trained_model)
    loader = pair_loader(digits.train, 32)
    view = ClassifierView(trained_model, "12")
    cords_strategies.compile_apricot_gains_once()
    strategy = strategy_class("craigstrategy", "CRAIGStrategy", OrderedScores)(
        loader, loader, view, torch.nn.CrossEntropyLoss(reduction="none"), ctx.device, 10, False, False, "PerClass",
        logging.getLogger("test"),
    )
    strategy.precompute(ctx)
    with cords_strategies.seeded(ctx.rng):
        ids, _ = strategy.select(ctx.budget, view.state_dict())
    out = model_outputs(ctx)
    l0 = out.loss_gradient()
    expected = []
    for c in range(10):
        members = torch.nonzero(out.labels == c).flatten()
        distance = torch.cdist(l0[members], l0[members]) ** 2
        similarity = (distance.max() - distance).numpy()
        k = int(np.ceil(ctx.budget * len(members) / len(digits.train)))
        picks = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy", random_state=0).fit(similarity).ranking
        # CORDS recovers each pick as the argmax of its similarity row (a near-twin with an earlier row wins)
        expected += members[torch.as_tensor(np.argmax(similarity[picks], axis=1))].tolist()
    assert sorted(int(i) for i in ids) == sorted(expected)


# --- failures get a message that names the fix, or a documented fallback -------------------------------------
def test_glister_without_a_validation_split_names_the_setting(digits, trained_model):
    with pytest.raises(UsageError, match="data.val_fraction"):
        create("cords.glister", {}).select(context(digits, trained_model, val=False))


def test_gradmatch_valid_without_a_validation_split_names_the_setting(digits, trained_model):
    with pytest.raises(UsageError, match="data.val_fraction"):
        create("cords.gradmatch", {"valid": True}).select(context(digits, trained_model, val=False))


def test_glister_per_batch_with_a_tiny_validation_split(digits, trained_model):
    ctx = context(digits, trained_model, batch_size=256)  # the 144-sample validation split is under one batch
    with pytest.raises(UsageError, match="full validation batch.*data.val_fraction"):
        create("cords.glister", {"selection_type": "PerBatch"}).select(ctx)


def test_glister_per_class_with_a_class_missing_from_validation(digits, trained_model):
    val = build_digits(None, 0.1, 0).val
    keep = torch.nonzero(val.labels != 7).flatten()
    val.inputs, val.labels, val.clean_labels = val.inputs[keep], val.labels[keep], val.clean_labels[keep]
    ctx = context(digits, trained_model, val_dataset=val)
    with pytest.raises(UsageError, match=r"classes \[7\] have none"):
        create("cords.glister", {"selection_type": "PerClass"}).select(ctx)


@pytest.mark.parametrize("greedy, fallback", [("RGreedy", "r lowered from 15 to 5"), ("Stochastic", "using Naive greedy")])
def test_glister_small_budgets_fall_back_instead_of_hanging(digits, trained_model, caplog, greedy, fallback):
    """PerBatch with 129 samples is 5 batches: CORDS' RGreedy (r=15) would loop forever and its
    stochastic greedy would draw more candidates than remain; both fall back, with a warning."""
    selector = create("cords.glister", {"selection_type": "PerBatch", "greedy": greedy})
    ctx = context(digits, trained_model, budget=129 if greedy == "RGreedy" else 20)
    with caplog.at_level(logging.WARNING, logger="swast.cords"):
        coreset = to_coreset("cords.glister", selector.select(ctx), ctx)
    assert len(coreset) == ctx.budget
    assert fallback in caplog.text


def test_craig_supervised_on_large_data_is_refused(digits, trained_model, monkeypatch):
    monkeypatch.setattr(cords_strategies, "CRAIG_SUPERVISED_MAX_SAMPLES", 1000)
    with pytest.raises(UsageError, match="selection_type PerClass or PerBatch"):
        CordsCraig(selection_type="Supervised").select(context(digits, trained_model))


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("cords.gradmatch", {"selection_type": "PerSample"}, "selection_type must be one of PerBatch"),
        ("cords.craig", {"optimizer": "greedy"}, "optimizer must be one of lazy"),
        ("cords.glister", {"greedy": "random"}, "greedy must be one of Stochastic"),
        ("cords.glister", {"r": 0}, "r .RGreedy rounds. must be at least 1"),
        ("moderate", {"balanced": True}, "did you mean 'class_balanced'"),
    ],
)
def test_bad_options_name_the_config_key(name, options, message):
    with pytest.raises(UsageError, match=f"coreset.options.*{message}"):
        create(name, options)


def test_cli_reports_a_selector_failure_without_traceback(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [
        "run", "--selector", "cords.glister", "--set", "data.val_fraction=0", "--epochs", "3", "--warmup", "1",
        "--interval", "1", "--no-progress", "--output-dir", str(tmp_path),
    ])
    assert result.exit_code == 2
    assert "data.val_fraction" in result.output and "Traceback" not in result.output


def test_glister_greedy_fallbacks_are_computed_from_cords_rounding(digits):
    ctx = context(digits, None)
    assert CordsGlister(selection_type="PerBatch").problems(ctx) == [(41, 5)]
    per_class = CordsGlister(selection_type="PerClass").problems(ctx)
    assert len(per_class) == 10 and sum(n for n, _ in per_class) == len(digits.train)
    assert CordsGlister(greedy="RGreedy", r=4).greedy_settings(ctx) == ("RGreedy", 4)
    assert CordsGlister(selection_type="PerBatch", greedy="RGreedy").greedy_settings(ctx) == ("RGreedy", 5)


# --- selection on a model that RigL is pruning ---------------------------------------------------------------
@pytest.mark.parametrize("selector", ["moderate", "cords.glister"])
def test_selectors_see_the_pruned_model_and_leave_it_unchanged(make_trainer, selector):
    trainer = make_trainer(method="swast-cut", **{"coreset.selector": selector, "pruner.name": "rigl"}, **SHORT_RUN)
    seen = []
    select = trainer.selector.select

    def spy(ctx):
        fc = ctx.model.get_submodule(ctx.classifier).weight
        mask = ctx.masks[f"{ctx.classifier}.weight"]
        before = {k: v.clone() for k, v in ctx.model.state_dict().items()}
        result = select(ctx)
        unchanged = all(torch.equal(before[k], v) for k, v in ctx.model.state_dict().items())
        seen.append((float(mask.float().mean()), bool((fc[~mask] == 0).all()), unchanged))
        return result

    trainer.selector.select = spy
    summary = trainer.fit()
    assert len(seen) == 2 and summary["density"] < 1.0
    for fc_density, pruned_weights_zero, unchanged in seen:
        assert fc_density == pytest.approx(0.1, abs=0.01)  # swast-cut keeps the FC at 90% sparsity
        assert pruned_weights_zero, "the selector must see the model with its masks applied"
        assert unchanged, "selection must not modify the model"
    assert len(trainer.coreset) == trainer.budget


def test_selectors_doc_names_every_built_in_selector_and_option():
    import inspect
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "SELECTORS.md").read_text()
    built_in = [entry for entry in registry.selectors.entries() if entry.source == "built-in"]
    assert len(built_in) >= 7
    for entry in built_in:
        assert f"| `{entry.name}` |" in doc, entry.name
        for option in inspect.signature(entry.obj).parameters:
            assert f"`{option}`" in doc, f"{entry.name}: option {option}"
