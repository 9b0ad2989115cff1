"""Estimator discovery."""

from sklearn.base import BaseEstimator

import sktransfer
from sktransfer.utils import all_estimators


def test_all_estimators_lists_the_public_estimators_sorted():
    found = all_estimators()
    names = [name for name, _ in found]
    assert names == sorted(names)
    assert all(issubclass(cls, BaseEstimator) for _, cls in found)
    assert all(getattr(sktransfer, name) is cls for name, cls in found)
    assert "TaskSet" not in names  # public, but not an estimator
