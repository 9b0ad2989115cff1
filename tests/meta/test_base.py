"""What every meta-learner shares: the warning of single-task meta-learning."""

import ast
import copy
import os
import re
import warnings

import numpy as np
import pandas as pd
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
    few_shot_score,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
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


# -- few-shot scoring: score(X, y, task_ids=t) --------------------------------


def regression_tasks(n_outputs=1):
    X, y, t = make_related_regression_tasks(
        n_tasks=6, n_samples=20, n_features=3, random_state=0
    )
    if n_outputs > 1:
        y = np.column_stack([y, 2 * y + X[:, 0]])
    return X, y, t


@pytest.fixture(scope="module")
def fitted_regressor():
    X, y, t = regression_tasks()
    return MAMLRegressor(max_iter=3, k_shot=3, **SMALL).fit(X, y, task_ids=t)


def test_score_with_task_ids_is_the_seeded_few_shot_score(fitted_regressor):
    est = fitted_regressor
    X, y, t = regression_tasks()
    score = est.score(X, y, task_ids=t)
    expected = few_shot_score(est, (X, y, t), k_shot=3, random_state=0)
    assert score == pytest.approx(expected.mean, abs=1e-12)
    # Row weights weigh each task's query rows, as in few_shot_score.
    weight = np.random.RandomState(0).uniform(0.1, 5.0, len(y))
    weighted = est.score(X, y, sample_weight=weight, task_ids=t)
    expected = few_shot_score(
        est, (X, y, t), k_shot=3, random_state=0, sample_weight=weight
    )
    assert weighted == pytest.approx(expected.mean, abs=1e-12)
    assert abs(weighted - score) > 1e-4
    # Any array-like of numbers scores the same as float64 rows.
    assert est.score(X.astype(object), y, task_ids=t) == score


def test_score_with_task_ids_of_several_outputs():
    X, y, t = regression_tasks(n_outputs=2)
    est = MAMLRegressor(max_iter=3, k_shot=3, **SMALL).fit(X, y, task_ids=t)
    score = est.score(X, y, task_ids=t)
    expected = few_shot_score(est, (X, y, t), k_shot=3, random_state=0)
    assert np.isfinite(score)
    assert score == pytest.approx(expected.mean, abs=1e-12)


def test_score_with_task_ids_checks_the_rows_against_fit(fitted_regressor):
    est = copy.deepcopy(fitted_regressor)
    X, y, t = regression_tasks()
    with pytest.raises(
        ValueError, match="X has 2 features, but MAMLRegressor is expecting 3"
    ):
        est.score(X[:, :2], y, task_ids=t)
    assert est.n_features_in_ == 3

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = MAMLRegressor(max_iter=2, k_shot=3, **SMALL).fit(frame, y, task_ids=t)
    renamed = frame.rename(columns={"a": "z"})
    with pytest.raises(ValueError, match="feature names should match"):
        est.score(renamed, y, task_ids=t)
    assert list(est.feature_names_in_) == ["a", "b", "c"]


def test_score_with_task_ids_encodes_categories_as_fit_did():
    X, y, t = regression_tasks()
    levels = np.array(["a", "b", "c"], dtype=object)
    codes = (np.arange(len(y)) % 3).astype(int)
    X = X.astype(object)
    X[:, 0] = levels[codes]
    y = y + 2.0 * codes
    est = MAMLRegressor(max_iter=3, k_shot=3, categorical_features=[0], **SMALL).fit(
        X, y, task_ids=t
    )
    categories = [c.copy() for c in est.categories_]
    # Rows without category "a": their codes stay those of fit (1 and 2).
    keep = codes > 0
    score = est.score(X[keep], y[keep], task_ids=t[keep])
    expected = few_shot_score(
        est, (X[keep], y[keep], t[keep]), k_shot=3, random_state=0
    )
    assert score == pytest.approx(expected.mean, abs=1e-12)
    for got, before in zip(est.categories_, categories, strict=True):
        np.testing.assert_array_equal(got, before)


def nan_weighted_score(tasks):
    """Score a classifier with NaN weights on task 4's rows: NaN, as
    scikit-learn's metrics give, with a warning naming the task."""
    X, y, t = tasks
    clf = MAMLClassifier(max_iter=3, k_shot=3, **SMALL).fit(X, y, task_ids=t)
    weight = np.ones(len(y))
    weight[t == 4] = np.nan
    with pytest.warns(
        RuntimeWarning,
        match=r"^The score of the adapted estimator on task 4 \(and 0 other tasks "
        r"of 6\) is NaN or infinite",
    ) as record:
        score = clf.score(X, y, sample_weight=weight, task_ids=t)
    return score, record


def test_a_nan_weighted_task_is_named_in_the_score(tasks):
    score, record = nan_weighted_score(tasks)
    assert np.isnan(score)
    assert len(record) == 1


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ,
    reason="mutation testing wraps every function in more frames",
)
def test_the_nan_score_warning_points_at_the_caller(tasks):
    # It pointed at sktransfer/meta/_base.py (stacklevel 1 for 3).
    _, record = nan_weighted_score(tasks)
    assert_warned_at_the_caller(record)


def assert_warned_at_the_caller(record):
    """The warnings point at this file (not under mutation testing, which wraps
    every function in more frames)."""
    assert record
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert [w.filename for w in record] == [__file__] * len(record)


def test_tasks_too_small_to_score_are_named_at_the_caller(fitted_regressor):
    est = fitted_regressor
    X, y, t = regression_tasks()
    # Task 5 keeps 3 rows: no query row after a support set of k_shot=3.
    keep = (t != 5) | (np.cumsum(t == 5) <= 3)
    with pytest.warns(UserWarning, match="1 of 6 tasks cannot give k_shot=3") as rec:
        score = est.score(X[keep], y[keep], task_ids=t[keep])
    assert np.isfinite(score)
    assert_warned_at_the_caller([w for w in rec if "cannot give" in str(w.message)])


# -- predict_episodes: the episode protocol ------------------------------------


def test_predict_episodes_in_chunks_is_adapt_then_predict(fitted_regressor):
    est = fitted_regressor
    X, y, t = regression_tasks()
    supports, queries, names = [], [], []
    for i, task in enumerate(np.unique(t)):
        rows = np.flatnonzero(t == task)
        k = 3 + i % 3  # support and query sizes differ: padded rows
        supports.append((X[rows[:k]], y[rows[:k]]))
        queries.append(X[rows[k : k + 4 + i]])
        names.append(f"task {task}")
    expected = [
        copy.deepcopy(est).adapt(X_s, y_s).predict(X_q)
        for (X_s, y_s), X_q in zip(supports, queries, strict=True)
    ]
    for chunk_size in (1, 4, 1024):
        got = est.predict_episodes(supports, queries, names, chunk_size=chunk_size)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_predict_episodes_refuses_rows_of_another_width(fitted_regressor):
    est = fitted_regressor
    X, y, _ = regression_tasks()
    support, query = (X[:5], y[:5]), X[5:9]
    with pytest.raises(
        ValueError, match=r"^task 'b' has 2 features but the model was fitted with 3\.$"
    ):
        est.predict_episodes(
            [support, (X[:5, :2], y[:5])], [query] * 2, ["a", "task 'b'"]
        )
    with pytest.raises(
        ValueError,
        match=r"^task 'b' has \d features but the model was fitted with 3\.$",
    ):
        est.predict_episodes([support], [X[5:9, :2]], ["task 'b'"])
    # One query set and one name per support set.
    with pytest.raises(ValueError):
        est.predict_episodes([support], [query, query], ["a"])
    with pytest.raises(ValueError):
        est.predict_episodes([support, support], [query, query], ["a"])


def test_predict_episodes_names_the_width_of_the_query_rows(fitted_regressor):
    # It named the support set's width when only the query rows had another.
    X, y, _ = regression_tasks()
    with pytest.raises(ValueError, match="has 2 features"):
        fitted_regressor.predict_episodes([(X[:5], y[:5])], [X[5:9, :2]], ["a"])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_one_task_warning_says_early_stopping_cannot_run(early_stopping, tasks):
    X, y, _ = tasks
    est = MAMLRegressor(max_iter=2, k_shot=3, early_stopping=early_stopping, **SMALL)
    stopping = (
        " Early stopping holds out whole tasks and cannot run on one."
        if early_stopping
        else ""
    )
    with pytest.warns(SingleTaskWarning) as record:
        if early_stopping:
            with pytest.raises(ValueError, match="early_stopping holds out whole"):
                est.fit(X, y)
        else:
            est.fit(X, y)
    assert str(record[0].message) == (
        "MAMLRegressor was fitted on a single task: no task_ids were given, so all "
        f"rows form one task, and meta-learning learns from many tasks.{stopping} "
        "Give the task of every row: MAMLRegressor().fit(X, y, task_ids=t), or a "
        "list of (X, y) pairs. Through a Pipeline or GridSearchCV, enable "
        "metadata routing: with sklearn.config_context(enable_metadata_routing="
        "True): GridSearchCV(est, grid, cv=GroupKFold()).fit(X, y, groups=t, "
        "task_ids=t)."
    )


@pytest.mark.parametrize("estimator", META_LEARNERS, ids=ids)
def test_meta_learners_are_tagged_as_refusing_nan(estimator):
    assert sklearn.utils.get_tags(estimator).input_tags.allow_nan is False


@pytest.mark.parametrize("estimator", META_LEARNERS, ids=ids)
def test_parameters_are_kept_as_given_and_default_to_the_documented_values(estimator):
    cls = type(estimator)
    docscrape = pytest.importorskip("numpydoc.docscrape")  # in the dev extra
    given = {name: object() for name in cls().get_params()}
    assert cls(**given).get_params() == given
    documented = {p.name: p.type for p in docscrape.ClassDoc(cls)["Parameters"]}
    assert documented.keys() == given.keys()
    for name, value in cls().get_params().items():
        default = re.search(r"default=(.*)$", documented[name]).group(1)
        assert value == ast.literal_eval(default), name
