"""Small tasks are used, not refused: the long tail of real task collections.

100 training tasks, 20 of them shorter than ``k_shot + n_query`` and three of
a single row, meta-train in every form with one warning; a grid search over
``k_shot`` with a 14-row task completes; few-shot scoring leaves out the
tasks too short to score, warns with their count and scores the rest.
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sktransfer import (
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
    TaskSet,
    few_shot_score,
    transfer_report,
)
from sktransfer.exceptions import NegativeTransferWarning
from tests._marks import slow_except

SMALL = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
CLOSED = dict(n_components=2, early_stopping=False)
META_LEARNERS = {
    "MAMLClassifier": MAMLClassifier(k_shot=3, n_query=3, **SMALL),
    "MAMLRegressor": MAMLRegressor(k_shot=5, n_query=5, **SMALL),
    "MetaRidgeClassifier": MetaRidgeClassifier(k_shot=3, n_query=3, **CLOSED, **SMALL),
    "MetaRidgeRegressor": MetaRidgeRegressor(k_shot=5, n_query=5, **CLOSED, **SMALL),
    "ProtoNetClassifier": ProtoNetClassifier(k_shot=3, n_query=3, **CLOSED, **SMALL),
}


def long_tail(classification, seed=0):
    """100 tasks: 77 of 24 rows, 20 of 4 to 7 rows (short for k_shot +
    n_query), 3 of a single row."""
    rng = np.random.RandomState(seed)
    sizes = [24] * 77 + list(rng.randint(4, 8, size=20)) + [1, 1, 1]
    t = np.repeat(np.arange(100), sizes)
    X = rng.normal(size=(len(t), 3))
    offset = rng.normal(size=100)[t]
    y = X[:, 0] + offset + 0.1 * rng.normal(size=len(t))
    if classification:
        y = (X[:, 0] + 0.3 * offset > 0).astype(int)
        # Classes alternate within each task, so both are present when it can.
        y = np.where(np.arange(len(t)) % 2 == 0, y, 1 - y)
    return X, y, t


def forms(X, y, t):
    pairs = [(X[t == i], y[t == i]) for i in range(100)]
    return {
        "flat": ((X, y), {"task_ids": t}),
        "pairs": ((pairs,), {}),
        "TaskSet": ((TaskSet(pairs),), {}),
    }


@pytest.mark.parametrize("form", ["flat", "pairs", "TaskSet"])
@pytest.mark.parametrize("name", list(META_LEARNERS))
def test_short_tasks_meta_train_in_every_form_with_one_warning(name, form):
    X, y, t = long_tail(name.endswith("Classifier"))
    args, kwargs = forms(X, y, t)[form]
    est = clone(META_LEARNERS[name])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(*args, **kwargs)
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert len(messages) == 1, messages
    assert "have fewer than k_shot + n_query" in messages[0]
    assert "3 with a single row are left out" in messages[0]
    assert np.isfinite(est.predict(X[:5]).astype(float)).all()


@pytest.mark.parametrize("name", ["MAMLRegressor", "MetaRidgeClassifier"])
def test_grid_search_over_k_shot_with_a_14_row_task_completes(name):
    X, y, t = long_tail(name.endswith("Classifier"))
    keep = t < 30
    X, y, t = X[keep], y[keep], t[keep]
    fourteen = np.flatnonzero(t == 0)[:14]
    keep = (t != 0) | np.isin(np.arange(len(t)), fourteen)
    X, y, t = X[keep], y[keep], t[keep]
    search = GridSearchCV(
        clone(META_LEARNERS[name]).set_params(n_query=None),
        {"k_shot": [5, 10]},
        cv=GroupKFold(3),
        error_score="raise",
    )
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            search.fit(X, y, groups=t, task_ids=t)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["k_shot"] in (5, 10)


@pytest.mark.parametrize(
    "name", slow_except(list(META_LEARNERS), "MAMLRegressor", "MetaRidgeRegressor")
)
def test_few_shot_score_leaves_out_the_tasks_too_short_to_score(name):
    X, y, t = long_tail(name.endswith("Classifier"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est = clone(META_LEARNERS[name]).fit(X, y, task_ids=t)
    X_new, y_new, t_new = long_tail(name.endswith("Classifier"), seed=1)
    k = 3
    with pytest.warns(UserWarning, match="tasks cannot give k_shot=3 support") as w:
        result = few_shot_score(est, (X_new, y_new, t_new), k_shot=k, random_state=0)
    # The three single-row tasks can never be scored; the 77 long ones are.
    assert not {97, 98, 99} & set(result.task_labels)
    expected = []
    for task in range(100):
        y_task = y_new[t_new == task]
        if name.endswith("Classifier"):
            counts = np.unique(y_task, return_counts=True)[1]
            ok = counts.min() >= k and len(y_task) > k * len(counts)
        else:
            ok = len(y_task) > k
        expected += [task] if ok else []
    assert result.task_labels.tolist() == expected
    assert set(expected) >= set(range(77))
    assert len(result.per_task) == len(result.task_labels)
    assert np.isfinite(result.per_task).all()
    n_skipped = 100 - len(result.task_labels)
    assert str(w[0].message).startswith(f"{n_skipped} of 100 tasks")
    # The same tasks scored alone give the same scores.
    scored = np.isin(t_new, result.task_labels)
    alone = few_shot_score(
        est, (X_new[scored], y_new[scored], t_new[scored]), k_shot=k, random_state=0
    )
    np.testing.assert_array_equal(alone.per_task, result.per_task)
    # score(..., task_ids=) and transfer_report leave out the same tasks.
    with pytest.warns(UserWarning, match=f"{n_skipped} of 100 tasks cannot give"):
        est.set_params(k_shot=k).score(X_new, y_new, task_ids=t_new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        with pytest.warns(UserWarning, match=f"{n_skipped} of 100 tasks cannot"):
            report = transfer_report(est, (X_new, y_new, t_new), k_shot=k)
    np.testing.assert_array_equal(report.task_labels, result.task_labels)


def test_no_task_to_score_names_the_first():
    est = clone(META_LEARNERS["MAMLRegressor"])
    X, y, t = long_tail(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="task 0 has 1 rows but k_shot=5"):
        few_shot_score(est, (X[:3], y[:3], np.arange(3)), k_shot=5)
