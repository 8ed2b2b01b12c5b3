"""Analyses of the paper that need no training (the polynomial experiments of Figure 1)."""
