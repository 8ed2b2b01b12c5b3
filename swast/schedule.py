"""Which data each epoch trains on and when a new coreset is selected.

Algorithm 1 trains K warm-up epochs on the full data and then on coresets refreshed every R epochs.
``continuous`` selects at epoch K+1 and every R epochs after, so warm-up is exactly K epochs.
``cords_skip`` reproduces CORDS' "-Warm" loaders: K full epochs, then epochs up to kappa*T are skipped
(the LR schedule still steps), then coreset training with selections every R epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swast.errors import UsageError

Phase = Literal["full", "warm-up", "skip", "coreset"]


@dataclass(frozen=True)
class Schedule:
    epochs: int
    warmup: int
    interval: int
    coreset: bool
    mode: str = "continuous"
    kappa: float = 0.5

    def __post_init__(self) -> None:
        if self.coreset and self.first_coreset_epoch > self.epochs:
            raise UsageError(
                f"no epoch is left for coreset training: the first coreset epoch would be "
                f"{self.first_coreset_epoch} of {self.epochs} (lower coreset.warmup or coreset.kappa)"
            )

    @property
    def first_coreset_epoch(self) -> int:
        skip_until = int(self.kappa * self.epochs) if self.mode == "cords_skip" else 0
        return max(self.warmup, skip_until) + 1

    def phase(self, epoch: int) -> Phase:
        if not self.coreset:
            return "full"
        if epoch <= self.warmup:
            return "warm-up"
        if epoch < self.first_coreset_epoch:
            return "skip"
        return "coreset"

    def selects(self, epoch: int) -> bool:
        first = self.first_coreset_epoch
        return self.coreset and epoch >= first and (epoch - first) % self.interval == 0

    def total_steps(self, full_batches: int, coreset_batches: int) -> int:
        per_phase = {"full": full_batches, "warm-up": full_batches, "skip": 0, "coreset": coreset_batches}
        return sum(per_phase[self.phase(e)] for e in range(1, self.epochs + 1))
