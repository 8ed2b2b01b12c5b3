"""Uniform random coresets: the control every selector must beat."""

from __future__ import annotations

import torch

from swast.registry import register_selector
from swast.selection import Coreset, SelectionContext, Selector


@register_selector("random")
class RandomSelector(Selector):
    """A fresh uniform random subset each round (seeded by the run)."""

    forward_passes = 0.0

    def select(self, ctx: SelectionContext) -> Coreset:
        ids = ctx.rng.choice(len(ctx.dataset), size=ctx.budget, replace=False)
        return Coreset(torch.as_tensor(ids, dtype=torch.long))
