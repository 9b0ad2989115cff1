"""Pooled baselines: the empirical Bayes offset equals its definition and helps."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier
from sklearn.metrics import log_loss

from sktransfer import PooledClassifier, PooledRegressor, TaskSet


def _random_intercepts(n_tasks, n_rows, seed, offset_var=1.0, noise_var=4.0):
    """``y = X beta + b_t + e`` with ``b_t ~ N(0, offset_var)``."""
    rng = np.random.default_rng(seed)
    t = np.repeat(np.arange(n_tasks), n_rows)
    X = rng.normal(size=(len(t), 2))
    b = rng.normal(scale=np.sqrt(offset_var), size=n_tasks)
    y = X @ [2.0, -1.0] + b[t] + rng.normal(scale=np.sqrt(noise_var), size=len(t))
    return X, y, t


def _shifted_priors(n_tasks, n_rows, seed, shift_var=1.0, n_classes=3):
    """Logits ``X W + b_t``, a per-task, per-class shift ``b_t ~ N(0, shift_var)``."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(2, n_classes))
    b = rng.normal(scale=np.sqrt(shift_var), size=(n_tasks, n_classes))
    t = np.repeat(np.arange(n_tasks), n_rows)
    X = rng.normal(size=(len(t), 2))
    p = np.exp(log_softmax(X @ W + b[t], axis=1))
    y = (p.cumsum(1) > rng.random((len(t), 1))).argmax(1)
    return X, y, t


# -- regression ----------------------------------------------------------------
def test_shrunk_offset_is_the_hand_computed_posterior_mean():
    # DummyRegressor(mean) with one fold per task: the out-of-fold prediction
    # of a task is the mean target of the other tasks, known by hand.
    rng = np.random.default_rng(0)
    sizes = [4, 6, 5, 8, 7]
    t = np.repeat(np.arange(5), sizes)
    y = rng.normal(size=5)[t] * 2 + rng.normal(size=len(t))
    X = rng.normal(size=(len(t), 2))
    est = PooledRegressor(DummyRegressor(), cv=5).fit(X, y, task_ids=t)

    r = np.concatenate([y[t == k] - y[t != k].mean() for k in range(5)])
    means = np.array([r[t == k].mean() for k in range(5)])
    n = np.array(sizes)
    sigma2 = sum(((r[t == k] - means[k]) ** 2).sum() for k in range(5)) / (n - 1).sum()
    tau2 = max(0.0, np.var(means, ddof=1) - np.mean(sigma2 / n))
    assert tau2 > 0
    np.testing.assert_allclose(est.noise_var_, sigma2)
    np.testing.assert_allclose(est.offset_var_, tau2)

    X_s, y_s = X[:3], np.array([1.0, 2.5, 0.5]) + y.mean()
    residual = (y_s - y.mean()).mean()  # the pooled model predicts y.mean()
    est.adapt(X_s, y_s)
    np.testing.assert_allclose(est.offset_, 3 / (3 + sigma2 / tau2) * residual)
    np.testing.assert_allclose(est.predict(X[:2]), y.mean() + est.offset_)
    # The other offsets: the raw mean residual, and nothing at all.
    mean = clone(est).set_params(offset="mean").fit(X, y, task_ids=t)
    np.testing.assert_allclose(mean.adapt(X_s, y_s).offset_, residual)
    none = clone(est).set_params(offset=None).fit(X, y, task_ids=t)
    np.testing.assert_allclose(none.adapt(X_s, y_s).predict(X[:2]), y.mean())


def test_method_of_moments_recovers_the_variances_and_shrinkage_wins():
    X, y, t = _random_intercepts(300, 20, seed=0, offset_var=1.0, noise_var=4.0)
    est = PooledRegressor(LinearRegression()).fit(X, y, task_ids=t)
    assert est.noise_var_ == pytest.approx(4.0, abs=0.4)
    assert est.offset_var_ == pytest.approx(1.0, abs=0.3)

    X_new, y_new, t_new = _random_intercepts(300, 20, seed=1)
    errors = {None: [], "mean": [], "shrunk": []}
    for offset in errors:
        est.set_params(offset=offset)
        for task in range(300):
            rows = t_new == task
            X_task, y_task = X_new[rows], y_new[rows]
            pred = est.adapt(X_task[:3], y_task[:3]).predict(X_task[3:])
            errors[offset].append((y_task[3:] - pred) ** 2)
    rmse = {offset: np.sqrt(np.mean(e)) for offset, e in errors.items()}
    # Expected MSE 4 + 4/7 (shrunk) against 4 + 1 (none) and 4 + 4/3 (mean).
    assert rmse["shrunk"] < rmse[None] - 0.05
    assert rmse["shrunk"] < rmse["mean"] - 0.05


def test_the_three_task_forms_fit_the_same_model():
    X, y, t = _random_intercepts(12, 10, seed=2)
    flat = PooledRegressor().fit(X, y, task_ids=t)
    pairs = PooledRegressor().fit([(X[t == k], y[t == k]) for k in range(12)])
    taskset = PooledRegressor().fit(TaskSet.from_arrays(X, y, t))
    for other in (pairs, taskset):
        np.testing.assert_allclose(other.offset_var_, flat.offset_var_)
        np.testing.assert_allclose(other.noise_var_, flat.noise_var_)
        np.testing.assert_allclose(other.predict(X[:5]), flat.predict(X[:5]))


def test_one_task_means_no_adaptation_and_few_tasks_fewer_folds():
    X, y, t = _random_intercepts(3, 15, seed=3)
    single = PooledRegressor().fit(X, y)
    assert single.offset_var_ == 0
    before = single.predict(X[:4])
    np.testing.assert_array_equal(
        single.adapt(X[:3], y[:3] + 10).predict(X[:4]), before
    )
    three = PooledRegressor(cv=5).fit(X, y, task_ids=t)  # 3 tasks, 3 folds
    assert three.offset_var_ >= 0 and three.noise_var_ > 0


def test_adapt_starts_from_the_pooled_model_and_fails_atomically():
    X, y, t = _random_intercepts(20, 10, seed=4)
    est = PooledRegressor().fit(X, y, task_ids=t)
    pooled = est.predict(X[:5])
    second = est.adapt(X[:3], y[:3] + 5).adapt(X[3:6], y[3:6]).predict(X[:5])
    fresh = clone(est).fit(X, y, task_ids=t).adapt(X[3:6], y[3:6]).predict(X[:5])
    np.testing.assert_allclose(second, fresh)
    with pytest.raises(ValueError, match="features"):
        est.adapt(X[:3, :1], y[:3])
    np.testing.assert_allclose(est.predict(X[:5]), fresh)
    assert not np.allclose(fresh, pooled)


def test_any_regressor_and_several_outputs():
    X, y, t = _random_intercepts(10, 12, seed=5)
    hgb = PooledRegressor(HistGradientBoostingRegressor(max_iter=10)).fit(
        X, y, task_ids=t
    )
    assert hgb.adapt(X[:3], y[:3]).predict(X[:4]).shape == (4,)
    Y = np.column_stack([y, -y + 3])
    assert PooledRegressor().fit(X, Y, task_ids=t).offset_var_.shape == (2,)
    two = PooledRegressor(offset="mean").fit(X, Y, task_ids=t)
    two.adapt(X[:3], Y[:3] + [1.0, -2.0])
    residual = (Y[:3] + [1.0, -2.0] - two.estimator_.predict(X[:3])).mean(0)
    np.testing.assert_allclose(two.offset_, residual)
    assert two.predict(X[:4]).shape == (4, 2)


# -- classification --------------------------------------------------------------
@pytest.fixture(scope="module")
def shifted():
    X, y, t = _shifted_priors(150, 60, seed=0, shift_var=1.0)
    est = PooledClassifier(LogisticRegression()).fit(X, y, task_ids=t)
    return est, X, y, t


@pytest.mark.slow
def test_classifier_shift_variance_is_recovered_and_shrinkage_wins(shifted):
    est = shifted[0]
    assert est.offset_var_ == pytest.approx(1.0, abs=0.3)  # measured 0.81-0.93
    X, y, t = _shifted_priors(150, 60, seed=1)
    losses = {"pooled": [], "shrunk": []}
    for task in range(150):
        rows = t == task
        X_task, y_task = X[rows], y[rows]
        est.offset_ = np.zeros(3)  # the pooled model itself
        losses["pooled"].append(
            log_loss(y_task[10:], est.predict_proba(X_task[10:]), labels=[0, 1, 2])
        )
        est.adapt(X_task[:10], y_task[:10])
        losses["shrunk"].append(
            log_loss(y_task[10:], est.predict_proba(X_task[10:]), labels=[0, 1, 2])
        )
    assert np.mean(losses["shrunk"]) < np.mean(losses["pooled"]) - 0.03


def test_classifier_shift_is_the_map_of_an_independent_optimiser(shifted):
    est, X, y, t = shifted
    X_s, y_s = X[t == 7][:12], y[t == 7][:12]
    est.adapt(X_s, y_s)
    log_p = np.log(est.estimator_.predict_proba(X_s))
    tau2 = est.offset_var_

    def negative_log_posterior(delta):
        log_q = log_softmax(log_p + delta, axis=1)
        return -log_q[np.arange(len(y_s)), y_s].sum() + delta @ delta / (2 * tau2)

    reference = minimize(negative_log_posterior, np.zeros(3), method="BFGS").x
    np.testing.assert_allclose(est.offset_, reference, atol=1e-4)
    assert est.offset_.sum() == pytest.approx(0, abs=1e-10)
    expected = np.exp(log_softmax(log_p + reference, axis=1))
    np.testing.assert_allclose(est.predict_proba(X_s), expected, atol=1e-4)


def test_classifier_refuses_unknown_labels_and_takes_one_class(shifted):
    est, X, y, _ = shifted
    before = est.offset_.copy()
    with pytest.raises(ValueError, match=r"labels \[5, 9\] that are not among"):
        est.adapt(X[:4], np.array([0, 5, 9, 1]))
    np.testing.assert_array_equal(est.offset_, before)
    est.adapt(X[:5], np.full(5, 2))  # one class: the prior keeps the shift finite
    proba = est.predict_proba(X[:50])
    assert np.isfinite(est.offset_).all() and est.offset_.argmax() == 2
    assert proba.shape == (50, 3)
    pooled = est.estimator_.predict_proba(X[:50])
    assert (proba[:, 2] > pooled[:, 2]).all()


def test_classifier_without_offset_is_the_pooled_model_and_labels_are_kept():
    X, y, t = _shifted_priors(10, 30, seed=2)
    labels = np.array(["low", "mid", "high"])[y]
    est = PooledClassifier(offset=None).fit(X, labels, task_ids=t)
    est.adapt(X[:6], labels[:6])
    np.testing.assert_array_equal(est.predict(X), est.estimator_.predict(X))
    np.testing.assert_allclose(est.predict_proba(X), est.estimator_.predict_proba(X))
    assert est.classes_.tolist() == ["high", "low", "mid"]
    # No predict_proba: only the pooled model itself is possible.
    plain = PooledClassifier(RidgeClassifier(), offset=None).fit(X, y, task_ids=t)
    assert not hasattr(plain, "predict_proba")
    assert plain.adapt(X[:6], y[:6]).predict(X[:3]).shape == (3,)
    with pytest.raises(ValueError, match="no predict_proba"):
        PooledClassifier(RidgeClassifier()).fit(X, y, task_ids=t)
