"""Batch-level training augmentation: a random crop with zero padding and a random horizontal flip,
drawn independently for every sample of the batch.

torchvision's transforms draw one set of parameters per call, so applied to a batch every sample would
get the same crop; calling them once per sample costs a Python round trip per image. This does the
standard CIFAR augmentation (``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``) for a whole
batch in a few tensor operations, on whatever device the batch lives (no new dependency: kornia would
offer the same but is not installed).
"""

from __future__ import annotations

import torch
from torch import Tensor


class CropFlip:
    """Random ``padding``-pixel shifts and horizontal flips for a batch of normalised images.

    ``fill`` is the normalised value of a black pixel per channel (``-mean / std``), so the padded border
    looks exactly as torchvision's zero padding of the raw image looks after normalisation.
    """

    def __init__(self, padding: int, fill: Tensor) -> None:
        self.padding = padding
        self.fill = fill.flatten().float()

    def __call__(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p, device = self.padding, x.device
        padded = self.fill.to(device=device, dtype=x.dtype).view(1, c, 1, 1).expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p : p + h, p : p + w] = x
        top = torch.randint(0, 2 * p + 1, (n, 1, 1), device=device)
        left = torch.randint(0, 2 * p + 1, (n, 1, 1), device=device)
        flip = torch.rand(n, 1, 1, device=device) < 0.5
        col = torch.arange(w, device=device).view(1, 1, w)
        rows = top + torch.arange(h, device=device).view(1, h, 1)
        cols = left + torch.where(flip, w - 1 - col, col)
        sample = torch.arange(n, device=device).view(n, 1, 1)
        # Advanced indexing around the channel slice gathers every sample's own window: (n, h, w, c).
        return padded[sample, :, rows, cols].permute(0, 3, 1, 2).contiguous()
