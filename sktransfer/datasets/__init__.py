"""Synthetic families of related tasks for meta-learning and transfer learning."""

from sktransfer.datasets._generators import (
    make_related_classification_tasks,
    make_related_regression_tasks,
    make_sinusoid_tasks,
)

__all__ = [
    "make_related_classification_tasks",
    "make_related_regression_tasks",
    "make_sinusoid_tasks",
]
