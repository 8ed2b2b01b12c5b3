"""Datasets whose samples carry their ids, label noise, and the batch iterator the loop uses."""

from swast.data.indexed import DataSplits, IndexedDataset
from swast.data.loading import iterate_batches
from swast.data.noise import apply_label_noise, apply_symmetric_noise

__all__ = ["DataSplits", "IndexedDataset", "apply_label_noise", "apply_symmetric_noise", "iterate_batches"]
