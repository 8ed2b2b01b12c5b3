"""The batch crop-and-flip augmentation and the two kinds of label noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swast.data.augment import CropFlip
from swast.data.indexed import DataSplits, IndexedDataset
from swast.data.noise import apply_class_flip_noise, apply_label_noise, class_flips


def candidates(image: torch.Tensor, padding: int, fill: torch.Tensor) -> list[torch.Tensor]:
    """Every crop and flip torchvision's RandomCrop(padding) + RandomHorizontalFlip can produce."""
    c, h, w = image.shape
    padded = F.pad(image - fill.view(c, 1, 1), (padding,) * 4) + fill.view(c, 1, 1)
    crops = [padded[:, t : t + h, s : s + w] for t in range(2 * padding + 1) for s in range(2 * padding + 1)]
    return crops + [crop.flip(2) for crop in crops]


def test_crop_flip_gives_each_sample_its_own_padded_crop_or_flip():
    torch.manual_seed(0)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    x = torch.randn(64, 3, 8, 8)
    out = CropFlip(2, fill)(x)
    assert out.shape == x.shape
    picks = []
    for image, result in zip(x, out):
        options = candidates(image, 2, fill)
        matches = [k for k, option in enumerate(options) if torch.allclose(option, result, atol=1e-6)]
        assert matches, "every output is one of the allowed crops, with black (fill) borders"
        picks.append(matches[0])
    assert len(set(picks)) > 20, "crops are drawn per sample, not once per batch"
    flipped = sum(k >= 25 for k in picks)
    assert 16 <= flipped <= 48


def test_crop_flip_of_identical_images_differs_across_the_batch():
    torch.manual_seed(1)
    x = torch.arange(3 * 32 * 32, dtype=torch.float32).view(1, 3, 32, 32).expand(128, -1, -1, -1)
    out = CropFlip(4, torch.zeros(3))(x)
    assert torch.unique(out.flatten(1), dim=0).shape[0] > 60  # about 88 of 162 expected


def dataset_with(labels: list[int]) -> IndexedDataset:
    return IndexedDataset(torch.zeros(len(labels), 1), torch.tensor(labels))


def test_generic_class_flip_moves_every_class_to_the_next():
    assert class_flips(4) == {0: 1, 1: 2, 2: 3, 3: 0}
    ds = dataset_with([c for c in range(4) for _ in range(10)])
    flipped = apply_class_flip_noise(ds, class_flips(4), 0.3, torch.Generator().manual_seed(0))
    assert flipped == 12 == int(ds.noisy.sum())
    assert torch.equal(torch.bincount(ds.clean_labels[ds.noisy], minlength=4), torch.full((4,), 3))
    assert torch.equal(ds.labels[ds.noisy], (ds.clean_labels[ds.noisy] + 1) % 4)


def test_label_noise_dispatches_on_the_type_and_uses_the_dataset_mapping():
    labels = [c for c in range(3) for _ in range(20)]

    def splits(flips: dict[int, int] | None) -> DataSplits:
        return DataSplits(dataset_with(labels), None, dataset_with(labels), 3, (1,), flips)

    custom = splits({0: 2})
    assert apply_label_noise(custom, "asymmetric", 0.5, torch.Generator().manual_seed(0)) == 10
    assert set(custom.train.labels[custom.train.noisy].tolist()) == {2}
    assert set(custom.train.clean_labels[custom.train.noisy].tolist()) == {0}
    symmetric = splits({0: 2})
    assert apply_label_noise(symmetric, "symmetric", 0.5, torch.Generator().manual_seed(0)) == 30
    assert set(symmetric.train.clean_labels[symmetric.train.noisy].tolist()) == {0, 1, 2}
    assert not symmetric.test.noisy.any()
