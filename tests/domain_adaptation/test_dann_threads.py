"""Threads may share a fitted DANN estimator (inference is pure)."""

import threading
import time

import numpy as np
import pytest
from sklearn.datasets import make_moons, make_regression

from sktransfer import DANNClassifier, DANNRegressor


def _fitted(cls):
    if cls is DANNClassifier:
        Xs, ys = make_moons(80, noise=0.1, random_state=0)
        Xt, _ = make_moons(80, noise=0.1, random_state=1)
        y = np.r_[ys, -np.ones(80, dtype=int)]
    else:
        Xs, ys = make_regression(80, 2, noise=1.0, random_state=0)
        Xt = Xs + 0.5
        y = np.r_[ys, np.full(80, np.nan)]
    X = np.vstack([Xs, Xt + 0.3])
    domain = np.r_[np.ones(80, dtype=int), -np.ones(80, dtype=int)]
    est = cls(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    return est.fit(X, y, sample_domain=domain), Xt


@pytest.mark.slow
@pytest.mark.parametrize("cls", [DANNClassifier, DANNRegressor])
def test_threads_predict_and_transform_as_serial_calls(cls):
    est, X = _fitted(cls)
    methods = [est.predict, est.transform]
    if hasattr(est, "predict_proba"):
        methods.append(est.predict_proba)
    expected = [method(X) for method in methods]
    errors, mismatches = [], []
    stop = time.monotonic() + 1.0

    def work(i):
        try:
            while time.monotonic() < stop:
                k = i % len(methods)
                if not np.array_equal(methods[k](X), expected[k]):
                    mismatches.append(k)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and not mismatches
    # The module is untouched: float32 parameters, and still what it was.
    assert all(
        p.dtype.is_floating_point and p.dtype.itemsize == 4
        for p in est.module_.parameters()
    )
    for method, before in zip(methods, expected, strict=True):
        assert np.array_equal(method(X), before)
