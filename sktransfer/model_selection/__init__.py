"""Few-shot scoring and task-aware model selection helpers."""

from sktransfer.model_selection._few_shot import FewShotResult, few_shot_score

__all__ = ["FewShotResult", "few_shot_score"]
