"""State preservation (the paper's Eq. 3): after each selection, record the current model's logits on the
coreset; while training on it, add ``lambda * KL(softmax(stored) || softmax(current))``.

The KL term notices when a pruning step or a dropped sample changed what the model predicts on the kept
samples, which is what keeps SWaST-cut stable when weights and their supporting samples go at once.
Logits are stored per sample id, only for the coreset, so memory scales with the coreset, not the data.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swast.data.indexed import IndexedDataset
from swast.data.loading import iterate_batches


class StatePreservation:
    def __init__(self, weight: float, temperature: float, scope: str, num_samples: int, device: torch.device) -> None:
        self.weight = weight
        self.temperature = temperature
        self.scope = scope
        self.position = torch.full((num_samples,), -1, dtype=torch.long, device=device)
        self.logits: Tensor | None = None
        self.keep: Tensor | None = None

    @property
    def active(self) -> bool:
        return self.logits is not None

    @torch.no_grad()
    def record(self, model: nn.Module, dataset: IndexedDataset, ids: Tensor, batch_size: int, device: torch.device) -> None:
        """Stage 1: logits of the current (masked) model, in eval mode, on the un-augmented coreset."""
        was_training = model.training
        model.eval()
        outputs = [
            model(x.to(device)).float()
            for x, _, _, _ in iterate_batches(dataset, ids, batch_size, shuffle=False, augment=False)
        ]
        model.train(was_training)
        self.logits = torch.cat(outputs)
        ids = ids.to(device)
        self.position.fill_(-1)
        self.position[ids] = torch.arange(len(ids), device=device)
        labels = dataset.labels.to(device)[ids]
        self.keep = self.logits.argmax(dim=1) == labels if self.scope == "correct" else None

    def kl(self, logits: Tensor, ids: Tensor) -> Tensor:
        """Stage 2: KL(stored || current), summed over the batch's recorded samples, divided by the batch size."""
        assert self.logits is not None
        pos = self.position[ids]
        valid = pos >= 0
        if self.keep is not None:
            valid &= self.keep[pos.clamp(min=0)]
        if not bool(valid.any()):
            return logits.new_zeros(())
        t = self.temperature
        target = F.log_softmax(self.logits[pos[valid]] / t, dim=1)
        current = F.log_softmax(logits[valid].float() / t, dim=1)
        return F.kl_div(current, target, log_target=True, reduction="sum") * (t * t) / logits.shape[0]

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "logits": self.logits, "keep": self.keep}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = state["position"].to(self.position.device)
        self.logits = state["logits"].to(self.position.device) if state["logits"] is not None else None
        self.keep = state["keep"].to(self.position.device) if state["keep"] is not None else None
