"""Shared test set-up: one torch and one BLAS thread (3-9x faster on 2 cores)."""

import pytest
import torch
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)

# scikit-learn's checks (tests/test_common.py, about 40 per estimator) run
# routinely for two regressors that train no network, in under a second; those
# of every other estimator are marked slow (see tests/_marks.py).
ROUTINE_SKLEARN_CHECKS = {"PooledRegressor", "SupportSetRegressor"}


def pytest_collection_modifyitems(items):
    """Mark slow the generated scikit-learn checks of the other estimators."""
    for item in items:
        if getattr(item, "originalname", None) != "test_sklearn_compatible_estimator":
            continue
        estimator = item.callspec.params["estimator"]
        if type(estimator).__name__ not in ROUTINE_SKLEARN_CHECKS:
            item.add_marker(pytest.mark.slow)
