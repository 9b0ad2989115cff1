"""Small default torch modules for tabular data."""

from sktransfer.nn._mlp import MLP

__all__ = ["MLP"]
