"""Reading datasets from their files: IDX archives, class folders, the TinyImageNet layout, and image
files decoded on access. Listing and decoding use torchvision's folder helpers and Pillow; only the
formats torchvision has no reader for (gzipped IDX, TinyImageNet's validation annotations) are parsed
here."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.transforms import v2

from swast.errors import UsageError

Sample = tuple[str, int]  # (image path, class index)

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (MNIST's format), gzipped or not, as an array of its shape."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise UsageError(f"data.root: '{path}' is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def class_folder_samples(folder: Path, class_to_idx: dict[str, int]) -> list[Sample]:
    """Every image under ``folder/<class>/`` (any depth), labelled by its class folder."""
    return make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)


def folder_classes(folder: Path) -> list[str]:
    """The class folder names of ``folder``, sorted (torchvision's ImageFolder order)."""
    return find_classes(str(folder))[0]


def tinyimagenet_val_samples(root: Path, class_to_idx: dict[str, int]) -> list[Sample]:
    """TinyImageNet's labelled validation images: ``val/images/*`` with ``val/val_annotations.txt``
    (tab-separated: file name, wnid, bounding box)."""
    samples = []
    for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
        if not line.strip():
            continue
        name, wnid = line.split("\t")[:2]
        if wnid not in class_to_idx:
            raise UsageError(f"data.root: val/val_annotations.txt names class '{wnid}', which wnids.txt does not list")
        samples.append((str(root / "val" / "images" / name), class_to_idx[wnid]))
    return samples


def is_grey(path: str) -> bool:
    with Image.open(path) as image:
        return image.mode in GREY_MODES


class ImageFiles(Dataset):
    """Images decoded from files on access: converted to ``channels`` (1 grey, 3 RGB), the shorter side
    resized to ``size`` and centre-cropped to a square, as float tensors in [0, 1], normalised once
    ``normalize`` is set. This is the plain view of a file-backed split; augmentation comes on top."""

    def __init__(self, paths: list[str], size: int, channels: int, normalize: v2.Normalize | None = None) -> None:
        if channels not in (1, 3):
            raise UsageError(f"data.options.channels: must be 1 (grey) or 3 (colour), got {channels}")
        self.paths = paths
        self.mode = "L" if channels == 1 else "RGB"
        self.view = v2.Compose([v2.Resize(size), v2.CenterCrop(size), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        with Image.open(self.paths[i]) as image:
            x = self.view(image.convert(self.mode))
        return self.normalize(x) if self.normalize is not None else x

    def channel_stats(self, ids: list[int]) -> tuple[Tensor, Tensor]:
        """Per-channel mean and standard deviation of the un-normalised images ``ids``."""
        normalize, self.normalize = self.normalize, None
        total = torch.zeros(2, 3 if self.mode == "RGB" else 1, dtype=torch.float64)
        pixels = 0
        for i in ids:
            x = self[i].double()
            total += torch.stack([x.sum(dim=(1, 2)), (x * x).sum(dim=(1, 2))])
            pixels += x.shape[1] * x.shape[2]
        self.normalize = normalize
        mean = total[0] / pixels
        std = (total[1] / pixels - mean * mean).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()
