"""What every meta-learner shares: the warning of single-task meta-learning."""

import os
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.datasets import make_related_classification_tasks
from sktransfer.exceptions import SingleTaskWarning
from tests._marks import slow_only

SMALL = dict(hidden_layer_sizes=(8,), random_state=0)
CLOSED_FORM = dict(n_components=2, max_iter=50, **SMALL)
META_LEARNERS = [
    MAMLClassifier(max_iter=5, k_shot=3, **SMALL),
    MAMLRegressor(max_iter=5, k_shot=3, **SMALL),
    MetaRidgeClassifier(k_shot=3, **CLOSED_FORM),
    MetaRidgeRegressor(k_shot=3, **CLOSED_FORM),
    ProtoNetClassifier(k_shot=3, **CLOSED_FORM),
]


@pytest.fixture(scope="module")
def tasks():
    X, y, t = make_related_classification_tasks(
        n_tasks=6, n_samples=30, n_features=3, random_state=0
    )
    return X, y.astype(float), t


def single_task_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [w for w in caught if issubclass(w.category, SingleTaskWarning)]


def ids(estimator):
    return type(estimator).__name__


@pytest.mark.parametrize(
    "estimator",
    slow_only(META_LEARNERS, "MetaRidgeClassifier", "MetaRidgeRegressor", key=ids),
    ids=ids,
)
def test_meta_learning_one_task_warns_once_and_says_how(estimator, tasks):
    X, y, t = tasks
    est = clone(estimator)
    caught = single_task_warnings(lambda: est.fit(X, y))
    assert len(caught) == 1  # one warning, also in the closed-form family
    message = str(caught[0].message)
    name = type(est).__name__
    assert f"{name} was fitted on a single task" in message
    assert f"{name}().fit(X, y, task_ids=t)" in message
    assert "enable_metadata_routing=True" in message and "GridSearchCV" in message
    assert issubclass(SingleTaskWarning, UserWarning)
    # It points at the caller's line, not inside the package (mutation
    # testing wraps every function in one more frame).
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert caught[0].filename == __file__
    # partial_fit on one task warns as well; task_ids silence it.
    assert len(single_task_warnings(lambda: clone(est).partial_fit(X, y))) == 1
    assert single_task_warnings(lambda: clone(est).fit(X, y, task_ids=t)) == []
    pairs = [(X[t == c], y[t == c]) for c in np.unique(t)]
    assert single_task_warnings(lambda: clone(est).fit(pairs)) == []


@pytest.mark.parametrize(
    "estimator",
    [
        FineTuneClassifier(max_iter=2, **SMALL),
        FineTuneRegressor(max_iter=2, **SMALL),
        # Episodic models draw episodes from the classes of one task.
        ProtoNetClassifier(n_way=2, k_shot=2, early_stopping=False, **CLOSED_FORM),
        MAMLClassifier(n_way=2, k_shot=2, max_iter=5, **SMALL),
    ],
    ids=ids,
)
def test_fine_tuners_and_episodic_models_do_not_warn(estimator, tasks):
    X, y, _ = tasks
    assert single_task_warnings(lambda: clone(estimator).fit(X, y)) == []


def test_grid_search_without_routing_warns_and_with_routing_does_not(tasks):
    X, y, t = tasks
    search = GridSearchCV(
        MAMLRegressor(max_iter=5, k_shot=3, **SMALL),
        {"inner_lr": [0.1]},
        cv=GroupKFold(n_splits=2),
    )
    # The trap: the search is given groups for its splitter, but fit sees no
    # task_ids and meta-trains each fold as one task.
    caught = single_task_warnings(lambda: clone(search).fit(X, y, groups=t))
    assert len(caught) == 3  # two folds and the refit
    with sklearn.config_context(enable_metadata_routing=True):
        routed = single_task_warnings(
            lambda: clone(search).fit(X, y, groups=t, task_ids=t)
        )
    assert routed == []
