"""A model fitted on the support rows alone, behind the adaptation protocol."""

from contextlib import nullcontext

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    clone,
)
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sktransfer.base import restore_on_error, validate_xy
from sktransfer.utils._categorical import (
    CATEGORICAL_CONSTRAINT,
    encode_categories,
    expand_categories,
)
from sktransfer.utils._docstrings import CATEGORICAL_FEATURES, CATEGORIES
from sktransfer.utils._sklearn_compat import HasMethods, _fit_context


class _BaseSupportSet(BaseEstimator):
    """Shared implementation of `SupportSetRegressor` and `SupportSetClassifier`."""

    _parameter_constraints: dict = {
        "estimator": [None, HasMethods(["fit", "predict"])],
        "categorical_features": CATEGORICAL_CONSTRAINT,
    }

    def __init__(self, estimator=None, *, categorical_features="from_dtype"):
        self.estimator = estimator
        self.categorical_features = categorical_features

    def _validate_rows(self, X, *y, reset=False):
        """Validated rows (and targets, when given), their categorical columns
        one-hot as the wrapped estimator takes them (categories found when
        ``reset``)."""
        X = encode_categories(self, X, reset=reset)
        if not y:
            return expand_categories(
                self, validate_data(self, X, reset=reset, dtype=np.float64)
            )
        X, y = validate_xy(self, X, y[0], reset=reset, dtype=np.float64)
        return expand_categories(self, X), y

    def _estimator(self):
        return self._default_estimator() if self.estimator is None else self.estimator

    def _current(self):
        """The model of the last `adapt`, else the one of `fit`."""
        model = getattr(self, "adapted_estimator_", None)
        return self.estimator_ if model is None else model

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimator_") or hasattr(self, "adapted_estimator_")

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit a clone of ``estimator`` on the given rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Their targets.

        Returns
        -------
        self : object
            The fitted estimator, before any adaptation.
        """
        with restore_on_error(self):
            X, y = self._validate_rows(X, y, reset=True)
            self.estimator_ = self._fit_rows(X, y)
            self.__dict__.pop("adapted_estimator_", None)
        return self

    def adapt(self, X, y):
        """Fit a fresh clone of ``estimator`` on the support rows only.

        Nothing of `fit` or of a previous `adapt` is used, so `adapt` also
        works on an estimator that was never fitted. Later calls to `predict`
        use the support set's model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The support set's features.
        y : array-like of shape (n_samples,)
            The support set's targets.

        Returns
        -------
        self : object
            The adapted estimator.
        """
        self._validate_params()
        with restore_on_error(self):
            X, y = self._validate_rows(X, y, reset=not hasattr(self, "estimator_"))
            self.adapted_estimator_ = self._fit_rows(X, y)
        return self

    def predict(self, X):
        """Predict with the model of the last `adapt`, else the one of `fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions.
        """
        check_is_fitted(self)
        X = self._validate_rows(X)
        return self._current().predict(X)


class SupportSetRegressor(RegressorMixin, _BaseSupportSet):
    __doc__ = (
        """A regressor fitted on the support rows alone.

    The baseline that uses no other task: `fit` fits a clone of ``estimator``
    on the given rows, and `adapt` fits a fresh clone on the support rows
    only. `~sktransfer.model_selection.transfer_report` scores it on the same
    support/query splits as the adapted estimator ("support set only").

    Parameters
    ----------
    estimator : regressor, default=None
        Cloned and fitted on the rows of `fit`, or of each `adapt`. ``None``
        is ``make_pipeline(StandardScaler(), RidgeCV())``.
"""
        + CATEGORICAL_FEATURES
        + """
    Attributes
    ----------
    estimator_ : regressor
        The regressor fitted by `fit`.
    adapted_estimator_ : regressor
        The regressor fitted by the last `adapt`; `predict` uses it.
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit` (or `adapt`, when not fitted).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    SupportSetClassifier : The same for classification.
    PooledRegressor : A pooled regressor plus a shrunk per-task offset.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.baselines import SupportSetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 3))
    >>> y = X @ [1.0, 0.0, -1.0]
    >>> est = SupportSetRegressor().adapt(X[:5], y[:5])
    >>> est.predict(X[5:8]).shape
    (3,)
    """
    )

    @staticmethod
    def _default_estimator():
        return make_pipeline(StandardScaler(), RidgeCV())

    def _y_checks(self):
        multi_output = get_tags(self._estimator()).target_tags.multi_output
        return {"y_numeric": True, "multi_output": multi_output}

    def _fit_rows(self, X, y):
        # One support row: RidgeCV's leave-one-out is 0 / 0 for every alpha
        # (numpy warns); the scaled row is 0, so the model predicts the row's
        # target whichever alpha it keeps.
        one_row = self.estimator is None and len(X) == 1
        with (
            np.errstate(divide="ignore", invalid="ignore") if one_row else nullcontext()
        ):
            return clone(self._estimator()).fit(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = get_tags(
            self._estimator()
        ).target_tags.multi_output
        return tags


def _has_predict_proba(self):
    """Whether the classifier can give probabilities (``available_if``)."""
    return hasattr(self._estimator(), "predict_proba")


class SupportSetClassifier(ClassifierMixin, _BaseSupportSet):
    __doc__ = (
        """A classifier fitted on the support rows alone.

    The baseline that uses no other task: `fit` fits a clone of ``estimator``
    on the given rows, and `adapt` fits a fresh clone on the support rows
    only. Rows of a single class give a model that predicts that class.
    `~sktransfer.model_selection.transfer_report` scores it on the same
    support/query splits as the adapted estimator ("support set only";
    ``SupportSetClassifier(NearestCentroid())`` is "nearest centroid").

    Parameters
    ----------
    estimator : classifier, default=None
        Cloned and fitted on the rows of `fit`, or of each `adapt`. ``None``
        is ``make_pipeline(StandardScaler(), LogisticRegression())``.
"""
        + CATEGORICAL_FEATURES
        + """
    Attributes
    ----------
    estimator_ : classifier
        The classifier fitted by `fit`.
    adapted_estimator_ : classifier
        The classifier fitted by the last `adapt`; `predict` uses it.
    classes_ : ndarray of shape (n_classes,)
        The labels of the last `adapt`'s support set, else those of `fit`,
        sorted.
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit` (or `adapt`, when not fitted).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    SupportSetRegressor : The same for regression.
    PooledClassifier : A pooled classifier plus a shrunk per-task shift.

    Examples
    --------
    >>> from sktransfer.baselines import SupportSetClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=2, random_state=0)
    >>> est = SupportSetClassifier().adapt(X[:10], y[:10])
    >>> est.classes_.tolist()
    [0, 1]
    >>> est.predict(X[10:13]).shape
    (3,)
    """
    )

    @staticmethod
    def _default_estimator():
        return make_pipeline(StandardScaler(), LogisticRegression())

    def _y_checks(self):
        return {}

    def _fit_rows(self, X, y):
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            return DummyClassifier(strategy="most_frequent").fit(X, y)
        return clone(self._estimator()).fit(X, y)

    @available_if(_has_predict_proba)
    def predict_proba(self, X):
        """Class probabilities of the model of the last `adapt`, else of `fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = self._validate_rows(X)
        return self._current().predict_proba(X)
