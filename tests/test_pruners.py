"""Each pruner end to end on digits: magnitude follows its schedule, static keeps its mask, structured
really shrinks the model (and the optimizer, FLOPs and densities follow), overrides hold for every
unstructured pruner, and every pruner's state restores on a freshly built trainer."""

from __future__ import annotations

import copy

import pytest
import torch

from swast.config import build_config
from swast.errors import UsageError
from swast.models.classifier import prunable_weights
from swast.pruning import GradualSchedule, measure_density


def optimizer_params(trainer) -> list[torch.nn.Parameter]:
    return [p for group in trainer.optimizer.param_groups for p in group["params"]]


def assert_masks_hold(trainer) -> None:
    """Pruned weights and their momentum are exactly zero."""
    params = dict(trainer.model.named_parameters())
    for name, mask in trainer.pruner.masks().items():
        assert torch.count_nonzero(params[name][~mask]) == 0, name
        momentum = trainer.optimizer.state[params[name]]["momentum_buffer"]
        assert torch.count_nonzero(momentum[~mask]) == 0, name


@pytest.mark.parametrize("pruner", ["magnitude", "static"])
def test_masked_pruners_run_end_to_end_at_the_planned_density(make_trainer, pruner):
    trainer = make_trainer(method="swast-cut", **{"pruner.name": pruner, "pruner.rate": 0.7})
    summary = trainer.fit()
    assert summary["test_acc"] > 0.5
    d = trainer.density()
    assert d.backbone == pytest.approx(0.3, abs=0.01)
    assert d.fc == pytest.approx(0.1, abs=0.01)
    for name, target in trainer.targets.items():
        assert d.per_layer[name] == pytest.approx(1 - target, abs=0.01), name
    assert_masks_hold(trainer)
    assert summary["params_kept"] < summary["params_total"]
    assert summary["relative_flops"] < 1.0


def test_magnitude_follows_the_cubic_schedule_to_its_target(make_trainer):
    trainer = make_trainer(
        method="prune-only",
        sets=["pruner.options.start_step=10", "pruner.options.end_step=60", "pruner.options.frequency=10"],
        **{"pruner.name": "magnitude", "pruner.rate": 0.8},
    )
    name = "7.weight"  # the largest conv of small_cnn
    target = trainer.targets[name]
    pruner_step = trainer.pruner.step
    sparsity: list[float] = []

    def recording_step() -> bool:
        go = pruner_step()
        mask = trainer.pruner.masks()[name]
        sparsity.append(1 - float(mask.float().mean()))
        return go

    trainer.pruner.step = recording_step
    trainer.fit()
    assert trainer.pruner.settings()["events"] == 5
    schedule = GradualSchedule(10, 60, 10)
    assert schedule.events() == [20, 30, 40, 50, 60]
    # sparsity[k] is the sparsity after step k + 1
    assert all(s == 0.0 for s in sparsity[:19])
    for step in (20, 30, 40, 50, 60):
        expected = int(schedule.progress(step) * target * trainer.model.get_parameter(name).numel())
        assert sparsity[step - 1] * trainer.model.get_parameter(name).numel() == pytest.approx(expected, abs=0.5), step
    assert sparsity[59] == pytest.approx(target, abs=1e-3)
    assert all(s == sparsity[59] for s in sparsity[60:]), "no pruning after the end step"
    assert all(a <= b for a, b in zip(sparsity, sparsity[1:])), "gradual pruning only removes weights"
    assert_masks_hold(trainer)


def test_static_keeps_its_mask(make_trainer):
    trainer = make_trainer(method="prune-only", **{"pruner.name": "static"})
    before = {n: m.clone() for n, m in trainer.pruner.masks().items()}
    assert before
    trainer.fit()
    after = trainer.pruner.masks()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert_masks_hold(trainer)


@pytest.mark.parametrize("pruner", ["rigl", "magnitude", "static"])
def test_overrides_hold_for_every_unstructured_pruner(make_trainer, pruner):
    trainer = make_trainer(
        method="prune-only",
        sets=["pruner.overrides={'3': 0.8, '12.weight': 0.5}"],
        **{"pruner.name": pruner, "pruner.rate": 0.6, "train.batch_size": 128},
    )
    trainer.fit()
    d = trainer.density()
    assert d.per_layer["3.weight"] == pytest.approx(0.2, abs=0.005)
    assert d.per_layer["12.weight"] == pytest.approx(0.5, abs=0.005)
    assert d.per_layer["0.weight"] == 1.0  # dense first layer
    assert d.backbone == pytest.approx(0.4, abs=0.005), "the other layers compensate: the scope's rate holds"


def test_rigl_end_step_is_absolute_and_checked(make_trainer):
    trainer = make_trainer(method="prune-only", sets=["pruner.options.end_step=40"])
    assert trainer.pruner.settings()["t_end"] == 40
    with pytest.raises(UsageError, match="pruner.options.end_step"):
        make_trainer(method="prune-only", sets=["pruner.options.end_step=100000"])


@pytest.mark.parametrize(("model", "flags"), [("small_cnn", {}), ("resnet18", {"train.epochs": 1, "train.batch_size": 128})])
def test_structured_pruning_shrinks_the_model(make_trainer, model, flags):
    trainer = make_trainer(
        method="prune-only",
        sets=["pruner.options.end_step=6", "pruner.options.frequency=3"],
        **{"pruner.name": "structured", "model.name": model, **flags},
    )
    dense_flops = trainer.flops.dense
    dense_shapes = {n: w.shape for n, w in prunable_weights(trainer.model).items()}
    summary = trainer.fit()
    assert trainer.pruner.settings()["events_done"] == 2
    # Parameters and forward FLOPs really went down, as counts on the model itself.
    assert summary["params_kept"] == sum(p.numel() for p in trainer.model.parameters())
    assert summary["params_kept"] < 0.6 * summary["params_total"]
    assert trainer.flops.dense < 0.6 * dense_flops
    # Density is the share of the original conv/linear weights that still exist, at the requested rate.
    kept = sum(w.numel() for w in prunable_weights(trainer.model).values()) / sum(s.numel() for s in dense_shapes.values())
    assert trainer.density().overall == pytest.approx(kept)
    assert kept == pytest.approx(0.5, abs=0.02)
    # The classes survive; the FC's inputs shrank with the last convolution.
    fc = dict(prunable_weights(trainer.model))[f"{trainer.classifier}.weight"]
    assert fc.shape[0] == 10 and fc.shape[1] < dense_shapes[f"{trainer.classifier}.weight"][1]
    assert trainer.model(trainer.test_set.inputs[:4]).shape == (4, 10)
    # The optimizer trains exactly the model's (new) parameters.
    assert [id(p) for p in optimizer_params(trainer)] == [id(p) for p in trainer.model.parameters()]
    assert summary["relative_flops"] < 1.0


def test_structured_pruning_carries_momentum_and_lr_of_surviving_channels(make_trainer):
    trainer = make_trainer(method="prune-only", sets=["pruner.options.end_step=6", "pruner.options.frequency=3"],
                           **{"pruner.name": "structured"})
    x, y = trainer.train_set.inputs[:32], trainer.train_set.labels[:32]
    for _ in range(2):  # build up momentum
        trainer.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trainer.model(x), y).backward()
        assert trainer.pruner.step()
        trainer.optimizer.step()
    old = {n: (p, trainer.optimizer.state[p]["momentum_buffer"].clone()) for n, p in trainer.model.named_parameters()}
    trainer.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(trainer.model(x), y).backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    trainer.pruner.step()  # step 3: the first pruning event
    conv, (old_conv, old_momentum) = trainer.model.get_parameter("3.weight"), old["3.weight"]
    assert conv is not old_conv and conv.shape[0] < old_conv.shape[0] and conv.shape[1] < old_conv.shape[1]
    # Torch-Pruning's own record of the removed channels: conv 3's outputs, and conv 0's outputs (its inputs).
    removed = {name: set(idxs) for name, is_out, idxs in trainer.pruner.torch_pruner.pruning_history() if is_out}
    rows = [i for i in range(old_conv.shape[0]) if i not in removed["3"]]
    cols = [i for i in range(old_conv.shape[1]) if i not in removed["0"]]
    assert torch.equal(conv, old_conv[rows][:, cols])
    assert torch.equal(trainer.optimizer.state[conv]["momentum_buffer"], old_momentum[rows][:, cols])
    assert torch.equal(conv.grad, grads["3.weight"][rows][:, cols])
    assert old_conv not in trainer.optimizer.state
    assert trainer.optimizer.param_groups[0]["lr"] == trainer.cfg.train.lr
    trainer.optimizer.step()  # and training goes on with the smaller model
    assert trainer.model(x).shape == (32, 10)


def structured_on(model: torch.nn.Module, shape: tuple[int, ...], rate: float, **options):
    from swast import registry
    from swast.pruning import PrunePlan

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner = registry.pruners.create("structured", {"end_step": 1, **options}, field="pruner.name", options_field="pruner.options")
    pruner.attach(model, optimizer, PrunePlan({}, 1, rate, "backbone", {}, shape))
    return pruner


def test_structured_pruning_handles_resnet101_and_replays_on_a_fresh_model():
    from swast.flops import FlopsModel
    from swast.models.zoo import resnet101

    shape = (3, 32, 32)
    torch.manual_seed(0)
    model = resnet101(10, shape)
    dense_params, dense_flops = sum(p.numel() for p in model.parameters()), FlopsModel(model, shape, torch.device("cpu")).dense
    pruner = structured_on(model, shape, 0.5)
    pruner.step()
    assert sum(p.numel() for p in model.parameters()) < 0.55 * dense_params
    assert FlopsModel(model, shape, torch.device("cpu")).dense < 0.6 * dense_flops
    assert model(torch.zeros(2, *shape)).shape == (2, 10)
    fresh = resnet101(10, shape)
    structured_on(fresh, shape, 0.5).load_state_dict(pruner.state_dict())
    assert {n: p.shape for n, p in fresh.named_parameters()} == {n: p.shape for n, p in model.named_parameters()}
    fresh.load_state_dict(model.state_dict())


@pytest.mark.parametrize("importance", ["taylor", "random"])
def test_structured_importance_choices_prune_to_the_same_width(importance):
    from swast.models.zoo import small_cnn

    shape = (1, 8, 8)
    widths, first_conv = [], []
    for choice in ("magnitude", importance):
        torch.manual_seed(0)
        model = small_cnn(10, shape)
        pruner = structured_on(model, shape, 0.6, importance=choice)
        torch.nn.functional.cross_entropy(model(torch.randn(16, *shape)), torch.randint(0, 10, (16,))).backward()
        pruner.step()
        widths.append([p.shape for p in model.parameters()])
        first_conv.append(model[0].weight.detach())
    assert widths[0] == widths[1]
    assert widths[0][0][0] < 32  # the first conv lost channels
    assert not torch.equal(first_conv[0], first_conv[1]), "a different rule keeps different channels"


def test_structured_pruner_rejects_what_it_cannot_do(make_trainer):
    with pytest.raises(UsageError, match="pruner.scope"):
        make_trainer(method="swast-trim", **{"pruner.name": "structured"})
    with pytest.raises(UsageError, match="pruner.overrides"):
        make_trainer(method="prune-only", sets=["pruner.overrides={'3': 0.5}"], **{"pruner.name": "structured"})
    with pytest.raises(UsageError, match="pruner.options.*importance"):
        make_trainer(method="prune-only", sets=["pruner.options.importance=size"], **{"pruner.name": "structured"})


def checkpoint_at(trainer, epoch: int) -> dict:
    saved: dict = {}

    def keep(record: dict) -> None:
        if record["epoch"] == epoch:
            saved.update(copy.deepcopy(trainer.state_dict()))

    trainer.fit(keep)
    return saved


@pytest.mark.parametrize("pruner", ["structured", "magnitude", "static", "rigl"])
def test_pruner_state_restores_on_a_fresh_trainer(make_trainer, pruner):
    flags = {"method": "prune-only", "pruner.name": pruner, "train.batch_size": 128}  # 11 steps an epoch
    if pruner in ("structured", "magnitude"):
        flags["sets"] = ["pruner.options.end_step=60", "pruner.options.frequency=10"]  # mid-schedule at epoch 4
    original = make_trainer(**flags)
    state = checkpoint_at(original, epoch=4)
    resumed = make_trainer(**flags)
    resumed.load_state_dict(state)
    if "masks" in state["pruner"]:
        saved = state["pruner"]["masks"]
        assert resumed.pruner.masks().keys() == saved.keys()
        assert all(torch.equal(resumed.pruner.masks()[n], saved[n]) for n in saved)
    assert [id(p) for p in optimizer_params(resumed)] == [id(p) for p in resumed.model.parameters()]
    resumed.fit()
    # The resumed run finishes the schedule at the same size as the uninterrupted one.
    assert resumed.density().overall == pytest.approx(original.density().overall, abs=1e-9)
    assert sum(p.numel() for p in resumed.model.parameters()) == sum(p.numel() for p in original.model.parameters())
    assert resumed.pruner.settings() == original.pruner.settings()


def test_overrides_on_a_run_that_prunes_nothing_are_an_error(tmp_path):
    with pytest.raises(UsageError, match="pruner.overrides"):
        build_config(None, {"method": "full", "output_dir": str(tmp_path)}, ["pruner.overrides={'3': 0.5}"])


def test_density_is_relative_to_the_original_size():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    original = {"0.weight": 32, "1.weight": 8}  # as if the first layer had lost half its rows
    d = measure_density(model, {}, "1", original)
    assert d.per_layer["0.weight"] == 0.5 and d.fc == 1.0
    assert d.overall == pytest.approx(24 / 40)


def test_every_builtin_pruner_and_option_is_documented():
    import inspect
    from pathlib import Path

    from swast import registry

    docs = (Path(__file__).parents[1] / "docs" / "PRUNERS.md").read_text()
    builtins = [e for e in registry.pruners.entries() if e.source == "built-in"]
    assert {e.name for e in builtins} >= {"rigl", "magnitude", "static", "structured", "none"}
    for entry in builtins:
        assert f"`{entry.name}`" in docs, entry.name
        for option in inspect.signature(entry.obj).parameters:
            assert f"`{option}`" in docs, f"{entry.name}.{option}"
