"""Implementations behind the registries: each module wraps one library or one selection rule.

Importing this package registers the built-ins; heavy libraries (CORDS, apricot, rigl-torch,
Torch-Pruning) are imported only when a run uses them. ``features`` is the model view the model-based
selectors share.
"""

from swast.adapters import cords_strategies, el2n, features, magnitude, moderate, random_subset, rigl, static, structured

__all__ = ["cords_strategies", "el2n", "features", "magnitude", "moderate", "random_subset", "rigl", "static", "structured"]
