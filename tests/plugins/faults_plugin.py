"""Faults on demand for the reliability tests: a pruner that signals its own process at a given step,
selectors that break the contract, and a dataset with one corrupt (NaN) sample."""

import os
import signal

import torch

import swast
from swast.adapters.rigl import RigL
from swast.data.datasets import build_digits
from swast.registry import datasets


@swast.register_pruner("test.rigl_signal")
class SignallingRigL(RigL):
    """RigL that sends its own process a signal at one optimizer step (an interruption at a known point)."""

    def __init__(self, signal_at_step: int | None = None, signal_name: str = "SIGINT", **options):
        super().__init__(**options)
        self.signal_at_step, self.signal_name = signal_at_step, signal_name

    def step(self) -> bool:
        go = super().step()
        if self.scheduler.step == self.signal_at_step:
            os.kill(os.getpid(), getattr(signal, self.signal_name))
        return go


@swast.register_selector("test.too_few")
class TooFew:
    def select(self, ctx):
        return torch.arange(ctx.budget - 1)


@swast.register_selector("test.duplicates")
class Duplicates:
    def select(self, ctx):
        return torch.zeros(ctx.budget, dtype=torch.long)


@swast.register_selector("test.out_of_range")
class OutOfRange:
    def select(self, ctx):
        return torch.arange(len(ctx.dataset) - ctx.budget + 1, len(ctx.dataset) + 1)


@swast.register_selector("test.one_class")
class OneClass:
    """Only samples of class 0 (a coreset in which nine classes vanish)."""

    def select(self, ctx):
        return torch.nonzero(ctx.dataset.labels == 0).flatten()[: ctx.budget].cpu()


@datasets.register("test.digits_nan")
def digits_with_a_nan(root, val_fraction, split_seed):
    """Digits with one corrupt training sample (all NaN)."""
    splits = build_digits(root, val_fraction, split_seed)
    splits.train.inputs[7] = float("nan")
    return splits


@swast.register_selector("test.signal_on_second_selection")
class SignalOnSecondSelection:
    """A seeded random coreset that sends SIGINT to its own process during its second selection."""

    forward_passes = 0.0  # as the built-in random selector, so the FLOPs account matches it

    def __init__(self):
        self.calls = 0

    def select(self, ctx):
        self.calls += 1
        if self.calls == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return torch.as_tensor(ctx.rng.choice(len(ctx.dataset), size=ctx.budget, replace=False))
