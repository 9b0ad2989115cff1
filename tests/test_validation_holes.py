"""Bad input and bad parameters refused with a message naming them.

Each case once reached torch, numpy or a sklearn helper and failed there with
a message about something the user never wrote, or passed silently: ``None``
in an object ``y`` of the task-list form or of `adapt`, task labels that
cannot be ordered, hidden layers of negative, fractional or zero width, a
``sample_weight`` of the wrong length, a 1-D ``X`` in the first task, the
evaluation helpers' arguments, parameters changed after `fit` and used by
`adapt`, and early stopping on a support set too small to split.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
    TaskSet,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.nn import MLP

SMALL = {"hidden_layer_sizes": (8,), "random_state": 0}
META = {**SMALL, "max_iter": 2, "meta_batch_size": 4, "k_shot": 2}
FINE = {**SMALL, "max_iter": 2, "adapt_max_iter": 2}
FAMILIES = {
    "MAMLClassifier": lambda **kw: MAMLClassifier(**{**META, **kw}),
    "MAMLRegressor": lambda **kw: MAMLRegressor(**{**META, **kw}),
    "FineTuneClassifier": lambda **kw: FineTuneClassifier(**{**FINE, **kw}),
    "FineTuneRegressor": lambda **kw: FineTuneRegressor(**{**FINE, **kw}),
    "MetaRidgeClassifier": lambda **kw: MetaRidgeClassifier(**{**META, **kw}),
    "MetaRidgeRegressor": lambda **kw: MetaRidgeRegressor(**{**META, **kw}),
    "ProtoNetClassifier": lambda **kw: ProtoNetClassifier(**{**META, **kw}),
}
REGRESSORS = [name for name in FAMILIES if name.endswith("Regressor")]
CLASSIFIERS = [name for name in FAMILIES if name.endswith("Classifier")]


def _data(name):
    if name.endswith("Classifier"):
        return make_related_classification_tasks(
            n_tasks=6, n_samples=20, n_features=3, n_classes=2, random_state=0
        )
    return make_related_regression_tasks(
        n_tasks=6, n_samples=20, n_features=3, random_state=0
    )


def _pairs(X, y, t):
    return [(X[t == i], y[t == i]) for i in np.unique(t)]


def _with_none(y, row):
    y = y.astype(object)
    y[row] = None
    return y


@pytest.fixture(scope="module")
def fitted():
    """Every family fitted once on its small tasks (copies are handed out)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in FAMILIES.items():
            X, y, t = _data(name)
            out[name] = make().fit(X, y, task_ids=t)
    return out


# -- None in an object-dtype y ------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_none_in_object_y_of_the_task_list_is_refused_naming_the_task(name):
    X, y, t = _data(name)
    pairs = _pairs(X, y, t)
    pairs[2] = (pairs[2][0], _with_none(pairs[2][1], 3))
    with pytest.raises(ValueError, match="task 2 .*missing"):
        FAMILIES[name]().fit(pairs)


def test_none_in_object_y_of_a_taskset_is_refused():
    X, y, t = _data("MAMLRegressor")
    with pytest.raises(ValueError, match="task 4 .*missing"):
        TaskSet.from_arrays(X, _with_none(y, np.flatnonzero(t == 4)[0]), t)
    # NaN in an object array too, and strings with None.
    y_nan = y.astype(object)
    y_nan[0] = float("nan")
    with pytest.raises(ValueError, match="task 0 .*missing"):
        TaskSet.from_arrays(X, y_nan, t)
    labels = np.where(y > 0, "a", "b").astype(object)
    labels[-1] = None
    with pytest.raises(ValueError, match="task 5 .*missing"):
        TaskSet.from_arrays(X, labels, t)


@pytest.mark.parametrize("name", FAMILIES)
def test_none_in_object_y_of_adapt_is_refused(name, fitted):
    est = fitted[name]
    X, y, t = _data(name)
    X_s, y_s = X[t == 0][:8], _with_none(y[t == 0][:8], 2)
    with pytest.raises(ValueError, match="y .*missing"):
        est.adapt(X_s, y_s)


# -- task labels --------------------------------------------------------------


@pytest.mark.parametrize("name", ["MAMLRegressor", "MetaRidgeClassifier"])
def test_task_ids_with_none_are_refused(name):
    X, y, t = _data(name)
    task_ids = t.astype(object)
    task_ids[5] = None
    with pytest.raises(ValueError, match="task_ids .*None"):
        FAMILIES[name]().fit(X, y, task_ids=task_ids)


@pytest.mark.parametrize("name", ["MAMLRegressor", "MetaRidgeClassifier"])
def test_task_ids_mixing_strings_and_numbers_are_refused(name):
    X, y, t = _data(name)
    task_ids = t.astype(object)
    task_ids[t == 1] = "north"
    with pytest.raises(TypeError, match="task_ids .*int.*str"):
        FAMILIES[name]().fit(X, y, task_ids=task_ids)


def test_task_ids_of_one_type_still_work():
    X, y, t = _data("MAMLRegressor")
    names = np.array(["north", "south", "east", "west", "up", "down"], dtype=object)
    tasks = TaskSet.from_arrays(X, y, names[t])
    assert list(tasks.task_labels) == list(names)
    mixed_numbers = t.astype(object)
    mixed_numbers[t == 1] = 1.5  # ints and floats order fine
    assert TaskSet.from_arrays(X, y, mixed_numbers).n_tasks == 6


# -- hidden_layer_sizes -------------------------------------------------------


@pytest.mark.parametrize("sizes", [(-3,), (2.5,), (0,), (8, 0), ("8",), (True,)])
@pytest.mark.parametrize("name", FAMILIES)
def test_bad_hidden_layer_sizes_are_refused(name, sizes):
    X, y, t = _data(name)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        FAMILIES[name](hidden_layer_sizes=sizes).fit(X, y, task_ids=t)


def test_mlp_refuses_bad_hidden_layer_sizes_and_takes_numpy_ints():
    with pytest.raises(ValueError, match=r"hidden_layer_sizes .*\(-3,\)"):
        MLP(n_features=2, hidden_layer_sizes=(-3,))
    assert len(MLP(n_features=2, hidden_layer_sizes=np.array([4, 3]))) == 5
    assert len(MLP(n_features=2, hidden_layer_sizes=())) == 1  # linear


# -- sample_weight of score ---------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FAMILIES if "FineTune" not in n])
def test_wrong_length_sample_weight_in_score_is_refused(name, fitted):
    # The plain score(X, y) is scikit-learn's, with its own message.
    est = fitted[name]
    X, y, t = _data(name)
    with pytest.raises(ValueError, match="sample_weight has 3 .*120 rows"):
        est.score(X, y, task_ids=t, sample_weight=np.ones(3))


def test_wrong_length_sample_weight_in_few_shot_score_is_refused(fitted):
    X, y, t = _data("MAMLRegressor")
    with pytest.raises(ValueError, match="sample_weight has 3 .*120 rows"):
        few_shot_score(
            fitted["MAMLRegressor"], (X, y, t), k_shot=2, sample_weight=np.ones(3)
        )


# -- a 1-D X in the first task ------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_one_dimensional_X_in_the_first_task_is_named(name):
    X, y, t = _data(name)
    pairs = _pairs(X, y, t)
    pairs[0] = (pairs[0][0][:, 0], pairs[0][1])
    with pytest.raises(ValueError, match="task 0: X must be 2-dimensional"):
        FAMILIES[name]().fit(pairs)


def test_flat_three_dimensional_X_keeps_sklearn_message():
    X, y, t = _data("MAMLRegressor")
    with pytest.raises(ValueError, match="dim 3"):
        MAMLRegressor(**META).fit(X[:, :, None], y, task_ids=t)


# -- the evaluation helpers' arguments ----------------------------------------


@pytest.mark.parametrize("helper", [few_shot_score, transfer_report])
@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"k_shot": 0}, "k_shot"),
        ({"k_shot": 2.5}, "k_shot"),
        ({"k_shot": "2"}, "k_shot"),
        ({"k_shot": 2, "n_episodes": 0}, "n_episodes"),
        ({"k_shot": 2, "n_query": 0}, "n_query"),
        ({"k_shot": 2, "random_state": "seed"}, "random_state"),
    ],
)
def test_evaluation_helpers_validate_their_arguments(helper, kwargs, parameter, fitted):
    X, y, t = _data("MAMLRegressor")
    with pytest.raises(InvalidParameterError, match=f"'{parameter}' parameter"):
        helper(fitted["MAMLRegressor"], (X, y, t), **kwargs)


def test_evaluation_helpers_still_take_numpy_integers(fitted):
    X, y, t = _data("MAMLRegressor")
    result = few_shot_score(
        fitted["MAMLRegressor"], (X, y, t), k_shot=np.int64(2), n_episodes=np.int32(2)
    )
    assert result.scores.shape == (2, 6)


# -- adapt validates the estimator's parameters -------------------------------

BAD_AFTER_FIT = {
    "MAMLClassifier": {"n_adapt_steps": -3},
    "MAMLRegressor": {"n_adapt_steps": -3},
    "FineTuneClassifier": {"adapt_max_iter": -3},
    "FineTuneRegressor": {"adapt_lr": -1.0},
    "MetaRidgeClassifier": {"k_shot": -3},
    "MetaRidgeRegressor": {"batch_size": 0},
    "ProtoNetClassifier": {"batch_size": -1},
}


@pytest.mark.parametrize("name", FAMILIES)
def test_adapt_validates_the_parameters_set_after_fit(name, fitted):
    est = fitted[name]
    X, y, t = _data(name)
    [(param, value)] = BAD_AFTER_FIT[name].items()
    old = est.get_params()[param]
    est.set_params(**{param: value})
    try:
        with pytest.raises(InvalidParameterError, match=param):
            est.adapt(X[t == 0][:8], y[t == 0][:8])
    finally:
        est.set_params(**{param: old})
    assert not hasattr(est, "adapted_params_") and not hasattr(est, "adapted_")


# -- early stopping on a small support set ------------------------------------


def _three_classes(n_per_class, seed):
    X, y, t = make_related_classification_tasks(
        n_tasks=4, n_samples=60, n_features=3, n_classes=3, random_state=seed
    )
    rows = np.concatenate(
        [np.flatnonzero((t == 0) & (y == c))[:n_per_class] for c in np.unique(y)]
    )
    return (X, y), (X[rows], y[rows])


def test_early_stopping_adapt_on_a_small_support_set_warns_and_adapts():
    (X, y), (X_s, y_s) = _three_classes(5, seed=0)
    est = FineTuneClassifier(
        **SMALL, max_iter=3, adapt_max_iter=4, early_stopping=True
    ).fit(X, y)
    plain = copy.deepcopy(est).set_params(early_stopping=False)
    assert len(y_s) == 15
    with pytest.warns(UserWarning, match="15 rows .*3 classes.*early stopping"):
        est.adapt(X_s, y_s)
    # As without early stopping: every epoch runs on every row.
    assert est.adapt_n_iter_ == 4
    np.testing.assert_array_equal(
        plain.adapt(X_s, y_s).predict_proba(X), est.predict_proba(X)
    )


def test_early_stopping_fit_on_too_few_rows_says_what_is_too_small():
    _, (X_s, y_s) = _three_classes(5, seed=0)
    est = FineTuneClassifier(**SMALL, max_iter=3, early_stopping=True)
    with pytest.raises(ValueError, match="validation_fraction=0.1 .*15 rows"):
        est.fit(X_s, y_s)
    # A validation fraction that leaves a row of every class works.
    est.set_params(validation_fraction=0.2).fit(X_s, y_s)
    assert "valid_loss" in est.history_[-1]
