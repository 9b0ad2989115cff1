"""Transfer by fine-tuning: pre-train on source data, adapt to a target set."""

from sktransfer.finetune._finetune import FineTuneClassifier, FineTuneRegressor

__all__ = ["FineTuneClassifier", "FineTuneRegressor"]
