"""Support-set baselines: a fresh model on the support rows, whatever came before."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.neighbors import NearestCentroid

from sktransfer import SupportSetClassifier, SupportSetRegressor
from sktransfer.datasets import make_related_classification_tasks


@pytest.fixture(scope="module")
def data():
    X, y, t = make_related_classification_tasks(
        n_tasks=3, n_samples=40, n_classes=3, random_state=0
    )
    return X, y, t


def test_adapt_fits_the_support_rows_alone(data):
    X, y, _ = data
    est = SupportSetRegressor(Ridge(alpha=2.0)).fit(X[:40], y[:40])
    est.adapt(X[50:60], y[50:60] * 3.0).adapt(X[60:70], y[60:70])
    reference = Ridge(alpha=2.0).fit(X[60:70], y[60:70])
    np.testing.assert_allclose(est.predict(X[:5]), reference.predict(X[:5]))
    np.testing.assert_allclose(
        est.estimator_.predict(X[:5]),
        Ridge(alpha=2.0).fit(X[:40], y[:40]).predict(X[:5]),
    )


def test_adapt_needs_no_fit(data):
    X, y, _ = data
    est = SupportSetClassifier().adapt(X[:12], y[:12])
    assert est.predict(X[12:20]).shape == (8,)
    assert est.predict_proba(X[12:20]).shape == (8, len(np.unique(y[:12])))


def test_classes_are_the_support_labels_and_one_class_is_predicted(data):
    X, y, _ = data
    est = SupportSetClassifier(NearestCentroid()).fit(X, y)
    assert est.classes_.tolist() == [0, 1, 2]
    est.adapt(X[:10], np.where(y[:10] == 0, 5, 7))
    assert est.classes_.tolist() == [5, 7]
    assert set(est.predict(X[10:])) <= {5, 7}
    est.adapt(X[:4], np.full(4, 9))
    assert est.classes_.tolist() == [9]
    np.testing.assert_array_equal(est.predict(X[4:8]), [9, 9, 9, 9])
    np.testing.assert_array_equal(est.predict_proba(X[4:8]), np.ones((4, 1)))


def test_a_failing_adapt_leaves_the_estimator_as_it_was(data):
    X, y, _ = data
    est = SupportSetClassifier().fit(X, y).adapt(X[:20], y[:20])
    before = est.predict_proba(X[20:30])
    with pytest.raises(ValueError, match="features"):
        est.adapt(X[:20, :3], y[:20])
    np.testing.assert_array_equal(est.predict_proba(X[20:30]), before)
    assert est.classes_.tolist() == np.unique(y[:20]).tolist()


def test_one_support_row_predicts_its_target_without_warnings():
    # RidgeCV's leave-one-out is undefined on one row; the model is the row's
    # target, silently (few-shot curves start at k = 1).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = SupportSetRegressor().adapt(np.array([[1.0, 2.0]]), np.array([3.0]))
        np.testing.assert_allclose(est.predict(np.array([[0.0, 0.0], [5, 5]])), 3.0)
