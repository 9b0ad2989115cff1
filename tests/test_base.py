"""Shared mechanics: devices, seeding under threads."""

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed

from sktransfer import FineTuneClassifier, MAMLClassifier
from sktransfer.base import resolve_device
from sktransfer.datasets import make_related_classification_tasks


@pytest.mark.parametrize("cls", [MAMLClassifier, FineTuneClassifier])
def test_fits_in_threads_are_reproducible(cls):
    # torch's default generator is shared by the threads of a process: seeded
    # sections must not interleave (joblib's threading back-end, dask threads).
    X, y, t = make_related_classification_tasks(n_tasks=6, n_samples=40, random_state=0)

    def fit(seed):
        est = cls(hidden_layer_sizes=(64, 64), max_iter=3, random_state=seed)
        return est.fit(X, y, task_ids=t).predict_proba(X)

    sequential = [fit(seed) for seed in range(6)]
    threaded = Parallel(n_jobs=6, backend="threading")(
        delayed(fit)(seed) for seed in range(6)
    )
    for a, b in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
