"""Optimisation-based meta-learning: MAML, first-order MAML, Meta-SGD, ANIL."""

from sktransfer.meta._maml import MAMLClassifier, MAMLRegressor

__all__ = ["MAMLClassifier", "MAMLRegressor"]
