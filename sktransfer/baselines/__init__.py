"""Baselines behind the adaptation protocol: pooled models and support-set models."""

from sktransfer.baselines._pooled import PooledClassifier, PooledRegressor
from sktransfer.baselines._support import SupportSetClassifier, SupportSetRegressor

__all__ = [
    "PooledClassifier",
    "PooledRegressor",
    "SupportSetClassifier",
    "SupportSetRegressor",
]
