"""Few-shot scoring and task-aware model selection helpers."""

from sktransfer.model_selection._display import (
    FewShotCurveDisplay,
    TrainingHistoryDisplay,
)
from sktransfer.model_selection._few_shot import FewShotResult, few_shot_score
from sktransfer.model_selection._transfer import (
    TransferReport,
    default_baselines,
    transfer_report,
)

__all__ = [
    "FewShotCurveDisplay",
    "FewShotResult",
    "TrainingHistoryDisplay",
    "TransferReport",
    "default_baselines",
    "few_shot_score",
    "transfer_report",
]
