"""Meta-learning: MAML and variants; closed-form adaptation (MetaRidge, ProtoNets)."""

from sktransfer.meta._maml import MAMLClassifier, MAMLRegressor
from sktransfer.meta._metaridge import MetaRidgeClassifier, MetaRidgeRegressor
from sktransfer.meta._protonet import ProtoNetClassifier

__all__ = [
    "MAMLClassifier",
    "MAMLRegressor",
    "MetaRidgeClassifier",
    "MetaRidgeRegressor",
    "ProtoNetClassifier",
]
