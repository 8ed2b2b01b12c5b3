"""EL2N scores (Paul et al., 2021), as the SWaST paper uses them on ImageNet.

EL2N = ||softmax(f(x)) - onehot(y)||_2 with the current model. The paper keeps the highest scores (hard
samples) during the first half of training and the lowest (easy, likely clean) after; that switch is an
option, on by default. No maintained PyTorch library ships EL2N, so it is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from swast.registry import register_selector
from swast.selection import Coreset, SelectionContext, Selector


@torch.no_grad()
def el2n_scores(ctx: SelectionContext) -> Tensor:
    scores = torch.empty(len(ctx.dataset), device=ctx.device)
    for x, y, ids in ctx.batches():
        probs = F.softmax(ctx.model(x).float(), dim=1)
        scores[ids] = torch.linalg.vector_norm(probs - F.one_hot(y, ctx.num_classes).float(), dim=1)
    return scores


@register_selector("el2n")
class EL2N(Selector):
    """EL2N scores with the current model; highest first, lowest after switch_at of training."""

    def __init__(self, switch_at: float | None = 0.5) -> None:
        if switch_at is not None and not 0.0 <= switch_at <= 1.0:
            raise ValueError("switch_at must be in [0, 1] or null (never switch)")
        self.switch_at = switch_at

    def keeps_hardest(self, epoch: int, total_epochs: int) -> bool:
        return self.switch_at is None or epoch <= self.switch_at * total_epochs

    def select(self, ctx: SelectionContext) -> Coreset:
        scores = el2n_scores(ctx).cpu()
        hardest = self.keeps_hardest(ctx.epoch, ctx.total_epochs)
        order = torch.argsort(scores, descending=hardest, stable=True)
        return Coreset(torch.sort(order[: ctx.budget]).values)
