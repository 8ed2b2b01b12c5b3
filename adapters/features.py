"""What model-based selectors read from the current model: logits and the classifier's input.

The classifier's input (the penultimate features, CORDS' "embedding") is captured by a forward pre-hook
on the final Linear layer, so any torchvision-style model works without a special forward signature.
``ClassifierView`` gives the same capture CORDS' ``model(x, last=True, freeze=True)`` contract, and
``model_outputs`` runs it once over a whole split for the selectors that only need the outputs.

CORDS' last-layer gradient features are a closed form of these outputs: for cross-entropy the gradient
w.r.t. the logits is ``softmax - onehot`` and the FC weight gradient is its outer product with the
embedding, flattened class-major (CORDS' ``repeat_interleave``/``repeat`` layout). Computing them from
one batched pass replaces CORDS' per-batch model autograd and its quadratic ``torch.cat`` growth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swast.data.indexed import IndexedDataset
from swast.selection import SelectionContext


class ClassifierView(nn.Module):
    """CORDS' forward contract for any model: the embedding is the input of the classifier layer."""

    def __init__(self, model: nn.Module, classifier: str) -> None:
        super().__init__()
        self.model = model
        self._fc = (model.get_submodule(classifier),)  # a tuple: not registered twice in state_dict
        self._embedding: Tensor | None = None

    def get_embedding_dim(self) -> int:
        return int(self._fc[0].in_features)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            self._embedding = inputs[0]

        handle = self._fc[0].register_forward_pre_hook(hook)
        try:
            yield
        finally:
            handle.remove()
            self._embedding = None

    def forward(self, x: Tensor, last: bool = False, freeze: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not last:
            return self.model(x)
        if freeze:
            # CORDS only differentiates w.r.t. the logits; the backbone needs no graph.
            with torch.no_grad():
                out = self.model(x)
            out = out.detach().requires_grad_()
        else:
            out = self.model(x)
        assert self._embedding is not None, "forward(last=True) needs the capturing() context"
        return out, self._embedding.detach() if freeze else self._embedding


@dataclass
class ModelOutputs:
    """One split seen by the current model, row i = sample id i."""

    logits: Tensor
    embedding: Tensor
    labels: Tensor

    def loss_gradient(self) -> Tensor:
        """d CE(logits, y) / d logits per sample (CORDS' ``l0_grads``): softmax minus one-hot. Taken by
        autograd on the logits alone, one call for the whole split, so it is bit for bit the value
        CORDS' per-batch autograd produces (a hand-written softmax differs in the last bit)."""
        with torch.enable_grad():
            logits = self.logits.detach().float().requires_grad_()
            loss = F.cross_entropy(logits, self.labels, reduction="none").sum()
            return torch.autograd.grad(loss, logits)[0]


@torch.no_grad()
def model_outputs(ctx: SelectionContext, dataset: IndexedDataset | None = None) -> ModelOutputs:
    """Logits and embeddings of every sample of ``dataset`` (default: the training split), one pass."""
    view = ClassifierView(ctx.model, ctx.classifier)
    logits, embeddings, labels = [], [], []
    with view.capturing():
        for x, y, _ in ctx.batches(dataset):
            out, emb = view(x, last=True, freeze=True)
            logits.append(out.detach())
            embeddings.append(emb.flatten(1))
            labels.append(y)
    return ModelOutputs(torch.cat(logits), torch.cat(embeddings), torch.cat(labels))


def gradient_features(l0: Tensor, embedding: Tensor, linear_layer: bool, fc_mask: Tensor | None = None) -> Tensor:
    """CORDS' per-sample last-layer gradients: ``[dL/db, dL/dW]``, W flattened class-major.

    ``fc_mask`` (the FC keep-mask, classes x features) zeroes the gradient of pruned weights: they get
    no update, so matching their gradient would steer the selection by a phantom."""
    if not linear_layer:
        return l0
    weight = (l0.unsqueeze(2) * embedding.unsqueeze(1)).flatten(1)
    if fc_mask is not None:
        weight = weight * fc_mask.flatten().to(weight.device, weight.dtype)
    return torch.cat((l0, weight), dim=1)


def batch_mean_features(
    l0: Tensor, embedding: Tensor, batch_size: int, linear_layer: bool, fc_mask: Tensor | None = None
) -> Tensor:
    """Mean gradient features of each sequential minibatch (CORDS' PerBatch), one matmul per batch
    instead of materialising every sample's C x E outer product."""
    n, classes = l0.shape
    starts = torch.arange(0, n, batch_size, device=l0.device)
    sizes = (torch.clamp(starts + batch_size, max=n) - starts).to(l0.dtype).unsqueeze(1)
    batch_of = torch.arange(n, device=l0.device) // batch_size
    bias = torch.zeros(len(starts), classes, device=l0.device, dtype=l0.dtype).index_add_(0, batch_of, l0) / sizes
    if not linear_layer:
        return bias
    weight = torch.stack([l0[s : s + batch_size].T @ embedding[s : s + batch_size] for s in starts.tolist()])
    weight = weight.flatten(1) / sizes
    if fc_mask is not None:
        weight = weight * fc_mask.flatten().to(weight.device, weight.dtype)
    return torch.cat((bias, weight), dim=1)
