"""sktransfer: scikit-learn compatible meta-learning and transfer learning."""

from sktransfer import datasets, nn
from sktransfer.baselines import (
    PooledClassifier,
    PooledRegressor,
    SupportSetClassifier,
    SupportSetRegressor,
)
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.finetune import FineTuneClassifier, FineTuneRegressor
from sktransfer.meta import (
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.model_selection import few_shot_score, transfer_report
from sktransfer.tasks import TaskSet

__version__ = "0.1.0"

__all__ = [
    "FineTuneClassifier",
    "FineTuneRegressor",
    "MAMLClassifier",
    "MAMLRegressor",
    "MetaRidgeClassifier",
    "MetaRidgeRegressor",
    "PooledClassifier",
    "PooledRegressor",
    "ProtoNetClassifier",
    "SupportSetClassifier",
    "SupportSetRegressor",
    "TaskSet",
    "NegativeTransferWarning",
    "few_shot_score",
    "transfer_report",
    "datasets",
    "nn",
    "__version__",
]
