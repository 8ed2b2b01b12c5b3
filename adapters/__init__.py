"""Implementations behind the registries: each module wraps one library or one selection rule.

Importing this package registers the built-ins; heavy libraries (CORDS, rigl-torch, Torch-Pruning) are
imported only when a run uses them.
"""

from swast.adapters import cords_strategies, el2n, magnitude, random_subset, rigl, static, structured

__all__ = ["cords_strategies", "el2n", "magnitude", "random_subset", "rigl", "static", "structured"]
