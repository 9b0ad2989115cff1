"""Standardisation of X (and of a regressor's y) inside every estimator.

Users pass raw tables: targets in the hundreds of thousands, features in
thousands next to features in fractions. With ``standardize=True`` (the
default) an estimator must behave the same whatever the units: fitted on
``(X * a + b, y * c + d)`` it predicts ``c * (its predictions on (X, y)) + d``,
after `fit`, after `adapt` and in few-shot scoring, up to float32 training
rounding.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_regressor
from sklearn.preprocessing import StandardScaler

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    few_shot_score,
)
from sktransfer.datasets import make_related_classification_tasks
from tests._marks import slow_only

META = dict(hidden_layer_sizes=(16,), max_iter=40, meta_lr=0.01, random_state=0)
TUNE = dict(
    hidden_layer_sizes=(16,), max_iter=20, lr=0.01, adapt_max_iter=20, random_state=0
)
ESTIMATORS = {
    "MAMLRegressor": MAMLRegressor(n_adapt_steps=5, **META),
    "MAMLRegressor-es": MAMLRegressor(
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, **META
    ),
    "FineTuneRegressor": FineTuneRegressor(freeze=None, **TUNE),
    "FineTuneRegressor-es": FineTuneRegressor(
        freeze=None, early_stopping=True, n_iter_no_change=3, **TUNE
    ),
    "MAMLClassifier": MAMLClassifier(n_adapt_steps=5, **META),
    "FineTuneClassifier": FineTuneClassifier(freeze=None, **TUNE),
}
REGRESSORS = [name for name, est in ESTIMATORS.items() if is_regressor(est)]
CLASSIFIERS = [name for name in ESTIMATORS if name not in REGRESSORS]
# The fine-tuners take 0.2-0.4 s a test here: slow where MAML runs routinely.
SLOW = ("FineTuneRegressor", "FineTuneRegressor-es", "FineTuneClassifier")
EPISODIC = MAMLClassifier(n_way=2, k_shot=3, n_adapt_steps=5, **META)
_STATISTICS = ("x_mean_", "x_scale_", "y_mean_", "y_scale_")

# Per-column feature units, and housing-price target units.
A = np.array([1e3, 0.01, 7.0])
B = np.array([-5e4, 3.0, 100.0])
C = np.array([1e5, 2e3])
D = np.array([3e5, -7.0])


def _regression_tasks(n_outputs=1, n_tasks=12, n_rows=20, seed=0):
    """Linear tasks on three features, task-specific weights and offset."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_tasks * n_rows, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    t = np.repeat(np.arange(n_tasks), n_rows)
    w = rng.normal(size=(n_tasks, 3, n_outputs)) + [[1.0], [-0.5], [2.0]]
    y = np.einsum("nf,nfo->no", X, w[t]) + rng.normal(size=(n_tasks, n_outputs))[t]
    return X, (y[:, 0] if n_outputs == 1 else y), t


def _classification_tasks():
    return make_related_classification_tasks(
        n_tasks=8, n_samples=40, n_features=3, random_state=0
    )


def _scaled(y):
    """``y * c + d`` with housing-price units, per output column."""
    if y.ndim == 1:
        return y * C[0] + D[0]
    return y * C[: y.shape[1]] + D[: y.shape[1]]


def _unscale(pred):
    """Back from housing-price units, to compare with the unit-scale model."""
    if pred.ndim == 1:
        return (pred - D[0]) / C[0]
    return (pred - D[: pred.shape[1]]) / C[: pred.shape[1]]


def _few_shot(est, X, y, t):
    if hasattr(est, "k_shot"):
        return est.score(X, y, task_ids=t)  # the batched path of the MAML family
    return few_shot_score(est, (X, y, t), k_shot=5, random_state=0).mean


# -- equivariance --------------------------------------------------------------
@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize(
    "name", slow_only(REGRESSORS, "FineTuneRegressor", "FineTuneRegressor-es")
)
def test_regressors_predict_in_the_users_units(name, n_outputs):
    X, y, t = _regression_tasks(n_outputs)
    train, new = t < 10, t >= 10
    support = np.flatnonzero(t == 10)[:6]
    unit = clone(ESTIMATORS[name]).fit(X[train], y[train], task_ids=t[train])
    big = clone(ESTIMATORS[name]).fit(
        X[train] * A + B, _scaled(y[train]), task_ids=t[train]
    )
    if "valid_loss" in unit.history_[-1]:  # early stopping sees the same losses
        np.testing.assert_allclose(
            big.history_[:, "valid_loss"], unit.history_[:, "valid_loss"], rtol=1e-5
        )
    pred = unit.predict(X)
    assert np.ptp(pred) > 0.1  # the model predicts something, not a constant
    np.testing.assert_allclose(
        _unscale(big.predict(X * A + B)), pred, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(big.score(X * A + B, _scaled(y)), unit.score(X, y))

    adapted = unit.adapt(X[support], y[support]).predict(X[new])
    assert not np.allclose(adapted, pred[new])  # adapt changed the model
    big.adapt(X[support] * A + B, _scaled(y[support]))
    np.testing.assert_allclose(
        _unscale(big.predict(X[new] * A + B)), adapted, rtol=1e-5, atol=1e-5
    )

    few_shot = _few_shot(unit, X[new], y[new], t[new])
    assert few_shot > -1
    assert _few_shot(big, X[new] * A + B, _scaled(y[new]), t[new]) == pytest.approx(
        few_shot, abs=1e-5
    )


@pytest.mark.parametrize(
    "name",
    slow_only([*CLASSIFIERS, "MAMLClassifier-episodic"], "FineTuneClassifier"),
)
def test_classifiers_do_not_depend_on_feature_units(name):
    X, y, t = _classification_tasks()
    train, new = t < 6, t >= 6
    support = np.flatnonzero(t == 6)[:10]
    est = ESTIMATORS.get(name, EPISODIC)
    unit = clone(est).fit(X[train], y[train], task_ids=t[train])
    big = clone(est).fit(X[train] * A + B, y[train], task_ids=t[train])
    if est is not EPISODIC:  # an episodic model predicts after adapt only
        np.testing.assert_allclose(
            big.predict_proba(X * A + B), unit.predict_proba(X), rtol=1e-5, atol=1e-5
        )
    unit.adapt(X[support], y[support])
    big.adapt(X[support] * A + B, y[support])
    np.testing.assert_allclose(
        big.decision_function(X[new] * A + B),
        unit.decision_function(X[new]),
        rtol=1e-5,
        atol=1e-5,
    )
    assert _few_shot(big, X[new] * A + B, y[new], t[new]) == pytest.approx(
        _few_shot(unit, X[new], y[new], t[new]), abs=1e-6
    )


# -- the statistics ---------------------------------------------------------------
@pytest.mark.parametrize("name", slow_only(ESTIMATORS, *SLOW))
def test_statistics_are_those_of_the_training_rows(name):
    classifier = name in CLASSIFIERS
    X, y, t = _classification_tasks() if classifier else _regression_tasks(2)
    X = X * A + B
    y = y if classifier else _scaled(y)
    first, later = t < 6, t >= 6
    est = clone(ESTIMATORS[name])
    classes = {"classes": [0, 1]} if classifier else {}
    est.partial_fit(X[first], y[first], task_ids=t[first], **classes)
    scaler = StandardScaler().fit(X[first])
    np.testing.assert_allclose(est.x_mean_, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(est.x_scale_, X[first].std(axis=0), rtol=1e-12)
    if not classifier:
        np.testing.assert_allclose(est.y_mean_, y[first].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(est.y_scale_, y[first].std(axis=0), rtol=1e-12)
    else:
        assert not hasattr(est, "y_mean_")
    stats = pickle.dumps([getattr(est, a, None) for a in _STATISTICS])

    # Neither a later partial_fit on other rows nor adapt refits them.
    est.partial_fit(X[later] * 2 + 1, y[later], task_ids=t[later])
    est.adapt(X[later][:10] - 50, y[later][:10])
    assert pickle.dumps([getattr(est, a, None) for a in _STATISTICS]) == stats

    # fit does, over all its rows (the three task forms pool them alike).
    pairs = [(X[t == i], y[t == i]) for i in np.unique(t)]
    est.fit(pairs)
    np.testing.assert_allclose(est.x_mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(est.x_scale_, X.std(axis=0), rtol=1e-12)


@pytest.mark.parametrize("name", slow_only(ESTIMATORS, *SLOW))
def test_constant_columns_do_not_give_nan(name):
    classifier = name in CLASSIFIERS
    X, y, t = _classification_tasks() if classifier else _regression_tasks()
    X = X.copy()
    X[:, 1] = 42.0
    if not classifier:
        y = np.full_like(y, 3e5)  # a constant target too
    est = clone(ESTIMATORS[name]).fit(X, y, task_ids=t)
    assert est.x_scale_[1] == 1.0 and est.x_mean_[1] == 42.0
    if not classifier:
        assert est.y_scale_.tolist() == [1.0]
    rows = np.flatnonzero(t == 0)[:10]
    before = est.predict_proba(X) if classifier else est.predict(X)
    after = est.adapt(X[rows], y[rows]).predict(X)
    assert np.isfinite(before).all() and np.isfinite(after).all()
    assert np.isfinite(_few_shot(est, X, y, t))
    if not classifier:  # a constant target is learned as that constant
        np.testing.assert_allclose(est.predict(X), 3e5, rtol=1e-3)


@pytest.mark.parametrize("name", slow_only(ESTIMATORS, *SLOW))
def test_pickle_keeps_the_statistics(name):
    classifier = name in CLASSIFIERS
    X, y, t = _classification_tasks() if classifier else _regression_tasks()
    X = X * A + B
    y = y if classifier else _scaled(y)
    est = clone(ESTIMATORS[name]).fit(X, y, task_ids=t)
    est.adapt(X[t == 0][:10], y[t == 0][:10])
    copy = pickle.loads(pickle.dumps(est))
    for attr in _STATISTICS:
        np.testing.assert_array_equal(
            getattr(copy, attr, None), getattr(est, attr, None)
        )
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))


# -- standardize=False ------------------------------------------------------------
@pytest.mark.parametrize("name", slow_only(ESTIMATORS, *SLOW))
def test_standardize_false_gives_the_network_the_data_as_they_are(name):
    classifier = name in CLASSIFIERS
    X, y, t = _classification_tasks() if classifier else _regression_tasks()
    off = clone(ESTIMATORS[name]).set_params(standardize=False)
    off.fit(X, y, task_ids=t)
    assert off.x_mean_ is None and off.x_scale_ is None
    assert classifier or (off.y_mean_ is None and off.y_scale_ is None)

    # On data that already have mean 0 and scale 1, standardising is the
    # identity: the two settings give the same model.
    Z = StandardScaler().fit_transform(X)
    y_z = y if classifier else (y - y.mean()) / y.std()
    off.fit(Z, y_z, task_ids=t)
    on = clone(ESTIMATORS[name]).fit(Z, y_z, task_ids=t)
    rows = np.flatnonzero(t == 0)[:10]
    for est in (off, on):
        est.adapt(Z[rows], y_z[rows])
    method = "predict_proba" if classifier else "predict"
    np.testing.assert_allclose(
        getattr(on, method)(Z), getattr(off, method)(Z), rtol=1e-6, atol=1e-6
    )


@pytest.mark.slow
def test_fresh_regression_head_learns_new_targets_in_their_own_units():
    # A head for two outputs when the source had one: there are no training
    # statistics for them, so adapt standardises them with the target set's.
    X, y, t = _regression_tasks(1)
    _, y2, _ = _regression_tasks(2)
    y2 = _scaled(y2)
    est = clone(ESTIMATORS["FineTuneRegressor"]).set_params(adapt_max_iter=200)
    est.fit(X[t > 0], y[t > 0])
    y_mean = est.y_mean_.copy()
    rows = t == 0
    est.adapt(X[rows], y2[rows])
    np.testing.assert_allclose(est.adapt_y_mean_, y2[rows].mean(axis=0))
    np.testing.assert_array_equal(est.y_mean_, y_mean)
    assert est.score(X[rows], y2[rows]) > 0.5
    est.adapt(X[rows], y[rows])  # back to the source's outputs
    assert est.adapt_y_mean_ is None
    est.adapt(X[rows], y2[rows]).partial_fit(X[t > 0], y[t > 0])
    assert not hasattr(est, "adapt_y_mean_")
    assert est.predict(X[:2]).shape == (2,)


@pytest.mark.parametrize("name", slow_only(ESTIMATORS, *SLOW))
def test_equal_to_the_network_on_data_standardised_by_hand(name):
    # The reference: standardize=False on data transformed by hand with the
    # training statistics, the support sets too (never with their own).
    classifier = name in CLASSIFIERS
    X, y, t = _classification_tasks() if classifier else _regression_tasks(2)
    X = X * A + B
    y = y if classifier else _scaled(y)
    train, new = t < 6, t >= 6
    on = clone(ESTIMATORS[name]).fit(X[train], y[train], task_ids=t[train])

    def x_(X):
        return (X - on.x_mean_) / on.x_scale_

    def y_(y):
        return y if classifier else (y - on.y_mean_) / on.y_scale_

    def back(pred):
        return pred if classifier else pred * on.y_scale_ + on.y_mean_

    off = clone(ESTIMATORS[name]).set_params(standardize=False)
    off.fit(x_(X[train]), y_(y[train]), task_ids=t[train])
    method = "predict_proba" if classifier else "predict"
    np.testing.assert_allclose(
        getattr(on, method)(X), back(getattr(off, method)(x_(X))), rtol=1e-12
    )
    support = np.flatnonzero(t == 6)[:10]
    on.adapt(X[support], y[support])
    off.adapt(x_(X[support]), y_(y[support]))
    np.testing.assert_allclose(
        getattr(on, method)(X[new]),
        back(getattr(off, method)(x_(X[new]))),
        rtol=1e-12,
    )
    if classifier:
        expected = _few_shot(off, x_(X[new]), y[new], t[new])
    else:  # R² is the same in both units
        expected = _few_shot(off, x_(X[new]), y_(y[new]), t[new])
    assert _few_shot(on, X[new], y[new], t[new]) == pytest.approx(expected, abs=1e-12)
