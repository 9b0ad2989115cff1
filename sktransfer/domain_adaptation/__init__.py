"""Transfer to an unlabelled target domain: domain-adversarial training (DANN)."""

from sktransfer.domain_adaptation._dann import DANNClassifier, DANNRegressor

__all__ = ["DANNClassifier", "DANNRegressor"]
