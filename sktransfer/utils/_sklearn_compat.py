"""The private scikit-learn API sktransfer uses, imported in this one place.

sktransfer supports scikit-learn>=1.6. Every name below lives in a private
scikit-learn module, which a release may move or change without notice: the
estimators and helpers import them from here, so that such a release breaks
this file only (tests/utils/test_sklearn_compat.py says which name). The
public helpers (``validate_data``, ``check_is_fitted``, ...) are imported from
scikit-learn directly.
"""

# Runs an estimator's fit under its parameter validation, once: nested
# estimators fitted inside skip theirs (``prefer_skip_nested_validation``).
from sklearn.base import _fit_context

# Parameter validation: the constraints of ``_parameter_constraints`` and the
# decorator that checks a public function's arguments against them.
from sklearn.utils._param_validation import (
    HasMethods,  # an object with the named methods (an estimator to wrap)
    Interval,  # a real or integral number in a range
    StrOptions,  # one of the named strings
    validate_params,  # validates a function's arguments by constraints
)

# Sample weights: None becomes ones, a wrong length or a negative weight is
# refused with sklearn's message.
from sklearn.utils.validation import _check_sample_weight

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_sample_weight",
    "_fit_context",
    "validate_params",
]
