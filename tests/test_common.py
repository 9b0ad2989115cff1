"""scikit-learn's own estimator checks over every public estimator."""

import pytest
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from sktransfer.utils.discovery import all_estimators

# Small, fast settings that still learn sklearn's toy problems.
INIT_PARAMS = {
    "DANNClassifier": dict(
        hidden_layer_sizes=(16,), max_iter=50, lr=0.01, random_state=0
    ),
    "DANNRegressor": dict(
        hidden_layer_sizes=(16,), max_iter=50, lr=0.01, random_state=0
    ),
    "FineTuneClassifier": dict(
        hidden_layer_sizes=(16,), max_iter=50, lr=0.01, random_state=0
    ),
    "FineTuneRegressor": dict(
        hidden_layer_sizes=(16,), max_iter=50, lr=0.01, random_state=0
    ),
    "MAMLClassifier": dict(
        hidden_layer_sizes=(16,), max_iter=60, meta_lr=0.01, random_state=0
    ),
    "MAMLRegressor": dict(
        hidden_layer_sizes=(16,), max_iter=60, meta_lr=0.01, random_state=0
    ),
    "MetaRidgeClassifier": dict(
        hidden_layer_sizes=(16,), n_components=4, max_iter=60, random_state=0
    ),
    "MetaRidgeRegressor": dict(
        hidden_layer_sizes=(16,), n_components=4, max_iter=60, random_state=0
    ),
    "PooledClassifier": dict(cv=3),
    "PooledRegressor": dict(cv=3),
    "ProtoNetClassifier": dict(
        hidden_layer_sizes=(16,), n_components=4, max_iter=60, random_state=0
    ),
    "SupportSetClassifier": dict(),
    "SupportSetRegressor": dict(),
}

# Checks expected to fail, with the reason. Keep it empty.
EXPECTED_FAILED_CHECKS = {}


# Options that take other code paths: checked as estimators of their own.
VARIANTS = {
    "MetaRidgeClassifier": [dict(kernel="rbf")],
    "MetaRidgeRegressor": [dict(kernel="ard")],
}


def _instances():
    for name, cls in all_estimators():
        yield cls(**INIT_PARAMS.get(name, {}))
        for variant in VARIANTS.get(name, []):
            yield cls(**{**INIT_PARAMS[name], **variant})


ESTIMATORS = list(_instances())


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(
        type(est).__name__, {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_sklearn_runs_its_determinism_checks(estimator):
    # Fitted with a fixed random_state, every estimator is deterministic: the
    # tag says so, and sklearn then runs check_methods_subset_invariance,
    # check_methods_sample_order_invariance and check_pipeline_consistency
    # above instead of skipping them.
    assert get_tags(estimator).non_deterministic is False


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


def test_every_public_estimator_is_checked():
    names = {name for name, _ in all_estimators()}
    assert {
        "DANNClassifier",
        "DANNRegressor",
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
    } <= names
    assert names <= set(INIT_PARAMS)
