"""swast: Simultaneous Weight and Sample Tailoring (SWaST, AAAI 2026) for PyTorch.

Public API for extending swast: register a selector or pruner class under a name, and it becomes
available to ``swast run --selector NAME`` / ``--pruner NAME`` (load your module with ``--plugin``).
"""

from swast.pruning import PrunePlan, Pruner
from swast.registry import register_pruner, register_selector
from swast.selection import Coreset, SelectionContext, Selector

__version__ = "0.1.0"

__all__ = [
    "Coreset",
    "PrunePlan",
    "Pruner",
    "SelectionContext",
    "Selector",
    "register_pruner",
    "register_selector",
]
