"""sktransfer: scikit-learn compatible meta-learning and transfer learning."""

from sktransfer import datasets, nn
from sktransfer.meta import MAMLClassifier, MAMLRegressor
from sktransfer.model_selection import few_shot_score
from sktransfer.tasks import TaskSet

__version__ = "0.1.0"

__all__ = [
    "MAMLClassifier",
    "MAMLRegressor",
    "TaskSet",
    "few_shot_score",
    "datasets",
    "nn",
    "__version__",
]
