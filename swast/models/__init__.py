"""Models by name, and the one structural fact SWaST needs about any model: which Linear is the FC."""

from swast.models.classifier import find_classifier, prunable_weights

__all__ = ["find_classifier", "prunable_weights"]
