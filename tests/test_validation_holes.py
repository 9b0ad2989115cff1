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
import re
import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import (
    DANNRegressor,
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    PooledRegressor,
    ProtoNetClassifier,
    SupportSetRegressor,
    TaskSet,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.exceptions import SingleTaskWarning
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
    with pytest.raises(ValueError, match="y has a missing .* in row 2;"):
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


# -- a regressor's y of strings -------------------------------------------------


def _string_y_call(form, est, X, y, t, bad):
    """Call ``est`` in one of the forms with the targets ``bad`` in place of y."""
    if form == "fit_pairs":
        return est.fit(_pairs(X, bad, t))
    if form == "fit_task_ids":
        return est.fit(X, bad, task_ids=t)
    if form == "fit":
        return est.fit(X, bad)
    if form == "partial_fit":
        return est.partial_fit(X, bad, task_ids=t)
    return est.adapt(X[t == 0][:8], bad[t == 0][:8])


@pytest.mark.parametrize(
    "form", ["fit_pairs", "fit_task_ids", "fit", "partial_fit", "adapt"]
)
@pytest.mark.parametrize("name", REGRESSORS)
def test_regressors_refuse_a_y_of_strings_before_training(name, form, fitted):
    """A string y once reached numpy's arithmetic ("ufunc 'subtract' did not
    contain a loop", "could not convert string to float"): it is refused
    naming y and its dtype, and a fitted estimator keeps its model."""
    est = copy.deepcopy(fitted[name])
    X, y, t = _data(name)
    before = est.predict(X)
    bad = np.where(y > 0, "high", "low")
    message = (
        "y must be numeric for a regressor, got dtype <U4 with strings such as "
        "'high'; convert y to numbers (for class labels, use a classifier)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        _string_y_call(form, est, X, y, t, bad)
    np.testing.assert_array_equal(est.predict(X), before)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PooledRegressor(cv=3),
        lambda: SupportSetRegressor(),
        lambda: DANNRegressor(max_iter=2, **SMALL),
    ],
    ids=["PooledRegressor", "SupportSetRegressor", "DANNRegressor"],
)
def test_baselines_and_domain_adaptation_refuse_a_y_of_strings_too(make, fitted):
    """The same check in the regressors that validate their own rows, and in
    the few-shot score of a meta-learner."""
    X, y, t = _data("MAMLRegressor")
    bad = np.where(y > 0, "high", "low")
    message = "y must be numeric for a regressor, got dtype <U4"
    with pytest.raises(ValueError, match=message):
        make().fit(X, bad)
    est = make().fit(X, y)
    before = est.predict(X)
    if hasattr(est, "adapt"):
        with pytest.raises(ValueError, match=message):
            est.adapt(X[:8], bad[:8])
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match=message):
        fitted["MAMLRegressor"].score(X, bad, task_ids=t)


@pytest.mark.parametrize(
    "bad, described",
    [
        (
            np.array(["x", 1.5] * 60, dtype=object),
            "dtype object with strings such as 'x'",
        ),
        (np.array([b"x", b"1.5"] * 60), "dtype |S3 with strings such as b'x'"),
        (
            np.array([["x", "2.5"], ["1.5", "y"]] * 60),
            "dtype <U3 with strings such as 'x'",
        ),
    ],
)
def test_strings_in_any_array_are_refused_and_numbers_in_objects_are_not(
    bad, described, fitted
):
    """Strings in an object array, bytes and a two-column y are strings too
    (scikit-learn's own message would name neither y nor its dtype); numbers
    in an object array are numbers, as scikit-learn reads them."""
    est = copy.deepcopy(fitted["MetaRidgeRegressor"])
    X, y, t = _data("MetaRidgeRegressor")
    message = f"y must be numeric for a regressor, got {described};"
    with pytest.raises(ValueError, match=re.escape(message)):
        est.adapt(X, bad)
    expected = copy.deepcopy(est).adapt(X, y).predict(X)
    np.testing.assert_array_equal(est.adapt(X, y.astype(object)).predict(X), expected)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifiers_keep_string_labels_in_every_form(name):
    X, y, t = _data(name)
    labels = np.array(["no", "yes"])[y]
    est = FAMILIES[name]().fit(_pairs(X, labels, t))
    assert est.classes_.tolist() == ["no", "yes"]
    est.partial_fit(X, labels, task_ids=t)
    est.adapt(X[t == 0][:8], labels[t == 0][:8].astype(object))
    assert set(est.predict(X)) <= {"no", "yes"}


# -- adapt checks X as predict does ----------------------------------------------


@pytest.mark.parametrize("name", ["MAMLRegressor", "FineTuneClassifier"])
def test_adapt_refuses_x_of_another_width_or_beyond_float32(name, fitted):
    est = copy.deepcopy(fitted[name])
    X, y, t = _data(name)
    before = est.predict(X)
    X_s, y_s = X[t == 0][:8], y[t == 0][:8]
    message = f"X has 2 features, but {name} is expecting 3 features as input."
    with pytest.raises(ValueError, match=re.escape(message)):
        est.adapt(X_s[:, :2], y_s)
    huge = X_s.astype(object)  # numbers in an object array are numbers
    huge[3, 1] = 1e39
    message = (
        "X has values beyond the float32 range (|value| > 3.4e+38) in row 3, which "
        "the networks cannot represent; rescale it (e.g. with StandardScaler) first."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        est.adapt(huge, y_s)
    np.testing.assert_array_equal(est.predict(X), before)
    assert not hasattr(est, "feature_names_in_")
    # predict reads X as adapt does.
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        est.predict(huge)


# -- the task forms -----------------------------------------------------------


def test_task_forms_are_refused_when_mixed_or_empty():
    X, y, t = _data("MetaRidgeRegressor")
    pairs = _pairs(X, y, t)
    both = (
        "Give either tasks as (X, y) pairs, or flat X and y (with task_ids), not both."
    )
    for kwargs in ({"y": y}, {"task_ids": t}):
        with pytest.raises(ValueError, match=re.escape(both)):
            FAMILIES["MetaRidgeRegressor"]().fit(pairs, **kwargs)
    for empty in ([], ()):
        with pytest.raises(
            ValueError,
            match="^The task list is empty: give at least one task[.]$",
        ):
            FAMILIES["MetaRidgeRegressor"]().fit(empty)


@pytest.mark.parametrize("name", ["MetaRidgeRegressor", "FineTuneClassifier"])
def test_partial_fit_of_pairs_checks_the_width_as_sklearn_does(name, fitted):
    est = copy.deepcopy(fitted[name])
    X, y, t = _data(name)
    before = est.predict(X)
    message = f"X has 2 features, but {name} is expecting 3 features as input."
    with pytest.raises(ValueError, match=re.escape(message)):
        est.partial_fit(_pairs(X[:, :2], y, t))
    np.testing.assert_array_equal(est.predict(X), before)


def test_only_the_plain_form_is_one_task():
    """Pairs, a TaskSet and flat rows with task_ids are many tasks; only
    ``fit(X, y)`` without task_ids is one, and the meta-learners say so."""
    X, y, t = _data("MetaRidgeRegressor")
    for args, kwargs in [
        ((_pairs(X, y, t),), {}),
        ((TaskSet.from_arrays(X, y, t),), {}),
        ((X, y), {"task_ids": t}),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SingleTaskWarning)
            FAMILIES["MetaRidgeRegressor"]().fit(*args, **kwargs)
    with pytest.warns(SingleTaskWarning):
        FAMILIES["MetaRidgeRegressor"]().fit(X, y)
