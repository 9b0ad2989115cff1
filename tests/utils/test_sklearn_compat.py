"""scikit-learn's private API comes through one compatibility module."""

import ast
import pathlib
from numbers import Integral, Real

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

import sktransfer
from sktransfer.utils import _sklearn_compat
from sktransfer.utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
    validate_params,
)

PACKAGE = pathlib.Path(sktransfer.__file__).parent


@pytest.mark.parametrize("name", _sklearn_compat.__all__)
def test_every_name_resolves(name):
    assert getattr(_sklearn_compat, name) is not None


def test_no_module_imports_private_sklearn_paths_directly():
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "utils/_sklearn_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            private = node.module.startswith("sklearn") and (
                "._" in node.module
                or any(alias.name.startswith("_") for alias in node.names)
            )
            if private:
                offending.append(f"{relative}: from {node.module}")
    assert offending == []


class _Estimator(BaseEstimator):
    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "kind": [StrOptions({"a", "b"})],
        "inner": [None, HasMethods(["fit"])],
    }

    def __init__(self, alpha=1.0, kind="a", inner=None):
        self.alpha = alpha
        self.kind = kind
        self.inner = inner

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        self.fitted_ = True
        return self


@pytest.mark.parametrize(
    "params, name",
    [({"alpha": -1.0}, "alpha"), ({"kind": "c"}, "kind"), ({"inner": 3}, "inner")],
)
def test_the_constraints_refuse_bad_parameters_by_name(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        _Estimator(**params).fit()
    assert _Estimator().fit().fitted_


def test_validate_params_checks_a_function():
    @validate_params(
        {"k": [Interval(Integral, 1, None, closed="left")]},
        prefer_skip_nested_validation=True,
    )
    def f(k):
        return k

    assert f(2) == 2
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        f(0)
