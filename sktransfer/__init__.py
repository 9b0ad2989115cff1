"""sktransfer: scikit-learn compatible meta-learning and transfer learning."""

from sktransfer import datasets, nn
from sktransfer._adapt import adapt
from sktransfer._persistence import get_untrusted_types, load, save
from sktransfer.baselines import (
    PooledClassifier,
    PooledRegressor,
    SupportSetClassifier,
    SupportSetRegressor,
)
from sktransfer.domain_adaptation import DANNClassifier, DANNRegressor
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.finetune import FineTuneClassifier, FineTuneRegressor
from sktransfer.meta import (
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.model_selection import (
    FewShotCurveDisplay,
    TrainingHistoryDisplay,
    few_shot_score,
    transfer_report,
)
from sktransfer.tasks import TaskSet

__version__ = "0.1.0"

__all__ = [
    "DANNClassifier",
    "DANNRegressor",
    "FewShotCurveDisplay",
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
    "TrainingHistoryDisplay",
    "NegativeTransferWarning",
    "adapt",
    "few_shot_score",
    "get_untrusted_types",
    "load",
    "save",
    "transfer_report",
    "datasets",
    "nn",
    "__version__",
]
