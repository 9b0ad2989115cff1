"""Properties over random task sets, drawn by hypothesis.

1. Whatever the tasks (shapes, dtypes, scales, label sets, task-id types) and
   the parameters, `fit` then `predict` and `adapt` end either in a
   ValueError or TypeError with a message, or in finite predictions of the
   right shape and dtype.
2. Any `fit`, `partial_fit` or `adapt` that raises leaves the fitted
   estimator bit-identical to before.

Small models and few examples keep the suite fast; ``SKTRANSFER_PROPERTY_EXAMPLES``
raises the number of examples per property for a longer search.
"""

import copy
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")  # in the dev extra
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from tests._fingerprint import fitted_state
from tests._marks import slow_except

EXAMPLES = int(os.environ.get("SKTRANSFER_PROPERTY_EXAMPLES", "30"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TINY = {"hidden_layer_sizes": (4,), "random_state": 0}
FAMILIES = {
    "MAMLClassifier": (MAMLClassifier, {**TINY, "meta_batch_size": 2}),
    "MAMLRegressor": (MAMLRegressor, {**TINY, "meta_batch_size": 2}),
    "FineTuneClassifier": (FineTuneClassifier, {**TINY, "adapt_max_iter": 2}),
    "FineTuneRegressor": (FineTuneRegressor, {**TINY, "adapt_max_iter": 2}),
    "MetaRidgeClassifier": (MetaRidgeClassifier, {**TINY, "n_components": 2}),
    "MetaRidgeRegressor": (MetaRidgeRegressor, {**TINY, "n_components": 2}),
    "ProtoNetClassifier": (ProtoNetClassifier, {**TINY, "n_components": 2}),
}
REFUSED = (ValueError, TypeError)


def _classifier(name):
    return name.endswith("Classifier")


# -- strategies -----------------------------------------------------------------

SCALES = [1.0, 1.0, 1.0, 1.0, 1e4, 1e20, 1e30, 1e39]
LABEL_SETS = [
    [0, 1],
    [0, 1, 2],
    [3],
    ["a", "b"],
    ["north", "south", "east"],
    [True, False],
    [1.5, -2.0],
    [0, "a"],
    [0, None],
]
TASK_ID_KINDS = ["int", "str", "float", "mixed", "none", "nan"]


@st.composite
def task_sets(draw, classifier):
    """Tasks in one of the three forms, with their flat rows for predictions."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n_tasks = draw(st.integers(1, 5))
    n_features = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 12), min_size=n_tasks, max_size=n_tasks))
    n = sum(sizes)
    X = rng.normal(size=(n, n_features)) * draw(st.sampled_from(SCALES))
    X[:, 0] *= draw(st.sampled_from([1.0, 1.0, 1.5e4]))
    if draw(st.booleans()) and draw(st.booleans()):
        X.flat[draw(st.integers(0, X.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 3.5e38])
        )
    with np.errstate(over="ignore"):  # beyond float32 becomes infinity
        X = X.astype(draw(st.sampled_from([np.float64, np.float32, object])))
    if classifier:
        labels = draw(st.sampled_from(LABEL_SETS))
        plain = all(label is not None for label in labels)
        y = np.array(labels, dtype=None if plain else object)
        y = y[rng.integers(0, len(labels), n)]
        if plain and draw(st.integers(0, 4)) == 0:
            y = y.astype(object)
    else:
        y = rng.normal(size=n) * draw(st.sampled_from(SCALES))
        if draw(st.booleans()) and draw(st.booleans()):
            y = y.astype(object)
            y[draw(st.integers(0, n - 1))] = draw(st.sampled_from([None, np.nan]))
    codes = np.repeat(np.arange(n_tasks), sizes)
    kind = draw(st.sampled_from(TASK_ID_KINDS))
    if kind == "int":
        task_ids = codes * 7
    elif kind == "str":
        task_ids = np.array([f"task-{c}" for c in codes])
    elif kind == "float":
        task_ids = codes + 0.5
    else:
        task_ids = codes.astype(object)
        odd = {"mixed": "x", "none": None, "nan": np.nan}[kind]
        task_ids[codes == n_tasks - 1] = odd
    form = draw(st.sampled_from(["flat", "pairs", "single"]))
    if form == "pairs":
        data = ([(X[codes == c], y[codes == c]) for c in range(n_tasks)],)
        kwargs = {}
    elif form == "flat":
        data, kwargs = (X, y), {"task_ids": task_ids}
    else:
        data, kwargs = (X, y), {}
    return data, kwargs, X, y, codes


@st.composite
def parameters(draw, name):
    params = {"max_iter": draw(st.integers(1, 3))}
    params["standardize"] = draw(st.booleans())
    lr = draw(st.sampled_from([1e-3, 1e-3, 1e-2, 10.0, 1e30]))
    if name.startswith("FineTune"):
        params["lr"] = lr
        params["early_stopping"] = draw(st.booleans())
    else:
        params["meta_lr"] = lr
        params["k_shot"] = draw(st.integers(1, 3))
        if name.startswith("MAML"):
            params["inner_lr"] = draw(st.sampled_from([0.05, 0.05, 1.0, 1e10]))
    if _classifier(name) and not name.startswith("FineTune"):
        params["n_way"] = draw(st.sampled_from([None, None, 2]))
    return params


# -- helpers --------------------------------------------------------------------


def _check_predictions(est, name, X, n_rows):
    """Finite predictions of the right shape and dtype (or a clear refusal)."""
    try:
        pred = est.predict(X)
    except REFUSED as exc:
        assert str(exc)
        return
    assert pred.shape == (n_rows,)
    if _classifier(name):
        assert pred.dtype == est.classes_.dtype
        assert np.isin(pred, est.classes_).all()
        proba = est.predict_proba(X)
        assert proba.shape == (n_rows, len(est.classes_))
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1.0)
    else:
        assert pred.dtype == np.float64
        assert np.isfinite(pred).all()


def _quietly(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


# -- property 1 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    slow_except(FAMILIES, "FineTuneClassifier", "MAMLRegressor", "ProtoNetClassifier"),
)
def test_random_tasks_end_in_a_clear_refusal_or_finite_predictions(name):
    cls, base = FAMILIES[name]

    @SETTINGS
    @given(
        tasks=task_sets(classifier=_classifier(name)),
        params=parameters(name),
    )
    def check(tasks, params):
        data, kwargs, X, y, codes = tasks
        est = cls(**base, **params)
        try:
            _quietly(est.fit, *data, **kwargs)
        except REFUSED as exc:
            assert str(exc)
            return
        _check_predictions(est, name, X, len(X))
        support = codes == 0
        try:
            _quietly(est.adapt, X[support], y[support])
        except REFUSED as exc:
            assert str(exc)
            return
        _check_predictions(est, name, X, len(X))

    check()


# -- property 2 -----------------------------------------------------------------------


def _good_data(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(36, 3))
    t = np.repeat(np.arange(6), 6)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if _classifier(name) else X[:, 0]
    return X, y, t


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for name, (cls, base) in FAMILIES.items():
        X, y, t = _good_data(name)
        out[name] = _quietly(cls(**base, max_iter=2).fit, X, y, task_ids=t)
    return out


@pytest.mark.parametrize("name", slow_except(FAMILIES, "MAMLClassifier"))
def test_a_call_that_raises_leaves_the_estimator_bit_identical(name, fitted):
    @SETTINGS
    @given(
        tasks=task_sets(classifier=_classifier(name)),
        call=st.sampled_from(["fit", "partial_fit", "adapt"]),
    )
    def check(tasks, call):
        data, kwargs, X, y, codes = tasks
        est = copy.deepcopy(fitted[name])
        before = fitted_state(est)
        try:
            if call == "adapt":
                _quietly(est.adapt, X[codes == 0], y[codes == 0])
            else:
                _quietly(getattr(est, call), *data, **kwargs)
        except REFUSED as exc:
            assert str(exc)
            assert fitted_state(est) == before
            return

    check()
