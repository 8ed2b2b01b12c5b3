"""Moderate coreset (Xia et al., "Moderate Coreset: A Universal Method of Data Selection for Real-world
Data-efficient Deep Learning", ICLR 2023), one of the SWaST paper's selectors.

Each sample's score is the Euclidean distance of its penultimate features (the classifier's input, the
same capture CORDS' strategies use) to the median feature vector of its class. Samples of moderate
score, neither the typical ones near the class centre nor the outliers, are kept: the ``budget``
samples ranked around the median score (the authors' choice). With ``class_balanced`` the band is taken
in each class separately, with per-class budgets proportional to the class sizes. No maintained PyTorch
library ships it, so it is written here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from swast.adapters.features import model_outputs
from swast.registry import register_selector
from swast.selection import Coreset, SelectionContext, Selector


def column_median(x: Tensor) -> Tensor:
    """Per-feature median of the rows, the mean of the two middle values for an even count (numpy's)."""
    ordered = x.sort(dim=0).values
    n = ordered.shape[0]
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def distances_to_class_median(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    distances = torch.empty(len(features), device=features.device)
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if members.numel():
            distances[members] = torch.linalg.vector_norm(features[members] - column_median(features[members]), dim=1)
    return distances


def middle_band(scores: Tensor, k: int) -> Tensor:
    """Positions of the ``k`` scores ranked around the median rank (ties broken by position)."""
    order = torch.argsort(scores, stable=True)
    start = (len(scores) - k) // 2
    return order[start : start + k]


def proportional_budgets(counts: Tensor, budget: int) -> Tensor:
    """Per-class budgets proportional to the class sizes that sum to ``budget`` (largest remainders)."""
    exact = counts.double() * budget / counts.sum()
    budgets = exact.floor().long()
    leftover = budget - int(budgets.sum())
    budgets[torch.argsort(exact - budgets, descending=True, stable=True)[:leftover]] += 1
    return budgets


@register_selector("moderate")
class Moderate(Selector):
    """Moderate coreset: samples at median distance from their class's median feature (Xia et al., 2023)."""

    def __init__(self, class_balanced: bool = False) -> None:
        self.class_balanced = class_balanced

    def select(self, ctx: SelectionContext) -> Coreset:
        out = model_outputs(ctx)
        distances = distances_to_class_median(out.embedding.float(), out.labels, ctx.num_classes).cpu()
        if not self.class_balanced:
            return Coreset(torch.sort(middle_band(distances, ctx.budget)).values)
        labels = out.labels.cpu()
        budgets = proportional_budgets(torch.bincount(labels, minlength=ctx.num_classes), ctx.budget)
        chosen = []
        for c, k in enumerate(budgets.tolist()):
            members = torch.nonzero(labels == c).flatten()
            chosen.append(members[middle_band(distances[members], k)])
        return Coreset(torch.sort(torch.cat(chosen)).values)
