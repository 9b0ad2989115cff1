"""Pooled models with a per-task offset shrunk by empirical Bayes."""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, clone
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sktransfer.base import BaseTransferEstimator, restore_on_error, validate_xy
from sktransfer.utils._categorical import (
    CATEGORICAL_CONSTRAINT,
    encode_categories,
)
from sktransfer.utils._docstrings import CATEGORICAL_FEATURES, CATEGORIES
from sktransfer.utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
)

# Pooled probabilities are floored before their logarithm is shifted, so that a
# class the pooled model deems impossible can still be moved by the offset.
_PROBA_FLOOR = 1e-9


# -- the empirical Bayes maths (numpy only) ----------------------------------
def _task_means(values, codes, n_tasks):
    """Per-task row counts and column means of ``values`` (n_samples, k)."""
    counts = np.bincount(codes, minlength=n_tasks)
    sums = np.zeros((n_tasks, values.shape[1]))
    np.add.at(sums, codes, values)
    return counts, sums / counts[:, None]


def residual_moments(residuals, codes, n_tasks):
    """Method-of-moments variances of a random-intercept model of residuals.

    ``residuals[i] = b_t + e_i`` for row ``i`` of task ``t``, with task offsets
    ``b_t ~ N(0, tau2)`` and noise ``e_i ~ N(0, sigma2)``. ``sigma2`` is the
    pooled within-task variance; ``tau2 = max(0, var(task means) - mean over
    tasks of sigma2 / n_t)`` (sample variance over tasks, ``ddof=1``), because
    a task mean has variance ``tau2 + sigma2 / n_t``. One task, or no task
    with two rows, gives ``tau2 = 0``.

    Returns ``(sigma2, tau2)``, each of shape (k,).
    """
    counts, means = _task_means(residuals, codes, n_tasks)
    dof = int((counts - 1).sum())
    if dof == 0:
        # No within-task spread to tell noise from offsets: all of it is noise.
        return residuals.var(axis=0), np.zeros(residuals.shape[1])
    sigma2 = ((residuals - means[codes]) ** 2).sum(axis=0) / dof
    if n_tasks < 2:
        return sigma2, np.zeros_like(sigma2)
    spread = means.var(axis=0, ddof=1) - (sigma2[None, :] / counts[:, None]).mean(0)
    return sigma2, np.maximum(spread, 0.0)


def shrinkage_weight(n, sigma2, tau2):
    """``n / (n + sigma2 / tau2)``: the weight of a mean of ``n`` residuals.

    The posterior mean of a task offset with prior ``N(0, tau2)`` given ``n``
    rows with noise ``sigma2``; 0 where ``tau2 = 0``.
    """
    sigma2, tau2 = np.asarray(sigma2, float), np.asarray(tau2, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = n * tau2 / (n * tau2 + sigma2)
    return np.where(tau2 > 0, weight, 0.0)


def _contrast_basis(n_classes):
    """Orthonormal basis (n_classes, n_classes - 1) of the sum-zero vectors."""
    basis = np.zeros((n_classes, n_classes - 1))
    for j in range(1, n_classes):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
    return basis / np.linalg.norm(basis, axis=0)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def newton_shift(log_proba, codes, tau2, *, max_iter=50, tol=1e-10):
    """MAP (or, with ``tau2=None``, maximum likelihood) shift of log-probabilities.

    Maximises ``sum_i log softmax(log_proba[i] + delta)[codes[i]]`` minus
    ``|theta|^2 / (2 tau2)`` over shifts ``delta = B theta`` that sum to zero
    (``B`` an orthonormal basis of those vectors: a shift common to all classes
    changes nothing, and the Gaussian prior ``N(0, tau2)`` on every class's
    shift puts the maximum there). Damped Newton steps with backtracking.

    Returns ``(delta, theta, information, converged)``, where ``information``
    is the observed Fisher information of ``theta`` at the optimum, prior
    included.
    """
    n_classes = log_proba.shape[1]
    basis = _contrast_basis(n_classes)
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    precision = 0.0 if tau2 is None else 1.0 / tau2

    def objective(theta):
        log_q = _log_softmax(log_proba + basis @ theta)
        return log_q[np.arange(len(codes)), codes].sum() - 0.5 * precision * (
            theta @ theta
        )

    def derivatives(theta):
        q = np.exp(_log_softmax(log_proba + basis @ theta))
        gradient = basis.T @ (counts - q.sum(0)) - precision * theta
        curvature = np.diag(q.sum(0)) - q.T @ q
        information = basis.T @ curvature @ basis + precision * np.eye(n_classes - 1)
        return gradient, information

    theta = np.zeros(n_classes - 1)
    value = objective(theta)
    converged = False
    for _ in range(max_iter):
        gradient, information = derivatives(theta)
        if np.abs(gradient).max() < tol * max(1.0, len(codes)):
            converged = True
            break
        step = np.linalg.lstsq(information, gradient, rcond=None)[0]
        size = 1.0
        while size > 1e-10:
            candidate = theta + size * step
            new_value = objective(candidate)
            if new_value >= value - 1e-12 * abs(value):
                break
            size /= 2
        else:
            break
        theta, value = candidate, new_value
    _, information = derivatives(theta)
    return basis @ theta, theta, information, converged


def shift_moments(log_proba, codes, task_codes, n_tasks, n_classes):
    """Method-of-moments prior variance of per-task log-probability shifts.

    Each task's shift ``theta_t`` (in the sum-zero basis) is estimated by
    maximum likelihood, with the inverse observed Fisher information as its
    sampling variance (the Wald approximation). As for residual means,
    ``tau2 = max(0, (sum_t |theta_t - mean|^2 / (T - 1) - mean_t tr(I_t^-1)) /
    (n_classes - 1))``. Tasks that lack a class (whose maximum-likelihood shift
    is infinite) or whose fit does not converge are left out; fewer than two
    usable tasks give 0.
    """
    estimates, variances = [], []
    for t in range(n_tasks):
        rows = task_codes == t
        y_t = codes[rows]
        if len(np.unique(y_t)) < n_classes:
            continue
        _, theta, information, converged = newton_shift(log_proba[rows], y_t, None)
        if not converged:
            continue
        try:
            covariance = np.linalg.inv(information)
        except np.linalg.LinAlgError:
            continue
        estimates.append(theta)
        variances.append(np.trace(covariance))
    if len(estimates) < 2:
        return 0.0
    estimates = np.asarray(estimates)
    spread = ((estimates - estimates.mean(0)) ** 2).sum() / (len(estimates) - 1)
    return max(0.0, float((spread - np.mean(variances)) / (n_classes - 1)))


def _oof_splits(n_tasks, cv):
    """``GroupKFold`` over tasks with at most as many folds as tasks."""
    return GroupKFold(n_splits=min(cv, n_tasks))


# -- the estimators -----------------------------------------------------------
class _BasePooled(BaseTransferEstimator):
    """Shared implementation of `PooledRegressor` and `PooledClassifier`."""

    # With metadata routing enabled, task labels reach fit by default.
    __metadata_request__fit = {"task_ids": True}

    _parameter_constraints: dict = {
        "estimator": [None, HasMethods(["fit", "predict"])],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "categorical_features": CATEGORICAL_CONSTRAINT,
    }

    def __init__(
        self,
        estimator=None,
        *,
        offset="shrunk",
        cv=5,
        categorical_features="from_dtype",
    ):
        self.estimator = estimator
        self.offset = offset
        self.cv = cv
        self.categorical_features = categorical_features

    def _validate_rows(self, X, y=None):
        """Validated rows (and targets) of a fitted estimator, its categorical
        columns one-hot as the pooled model takes them."""
        X = encode_categories(self, X, reset=False)
        if y is None:
            return self._expand_categories(
                validate_data(self, X, reset=False, dtype=np.float64)
            )
        X, y = validate_xy(self, X, y, reset=False, dtype=np.float64)
        return self._expand_categories(X), y

    def _estimator(self):
        return self._default_estimator() if self.estimator is None else self.estimator

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, task_ids=None):
        """Fit the pooled model on all rows, and the offset prior across tasks.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The tasks: pairs (or a `TaskSet`), or flat rows with ``task_ids``,
            or one task's rows.
        y : array-like of shape (n_samples,), default=None
            Targets of the flat forms; ``None`` when ``X`` holds the tasks.
        task_ids : array-like of shape (n_samples,), default=None
            Task label of each row of the flat form. Without it the whole
            set is one task, and the shrunk offset is 0.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with restore_on_error(self):
            tasks, _ = self._validate_tasks(X, y, task_ids, reset=True)
            tasks.X = self._expand_categories(tasks.X)
            self._fit_tasks(tasks)
        return self

    def _out_of_fold(self, tasks, predict):
        """``predict(model, X)`` of every row by a model fitted without its task."""
        out = None
        splits = _oof_splits(tasks.n_tasks, self.cv).split(
            tasks.X, tasks.y, groups=tasks.task_codes
        )
        for train, test in splits:
            model = clone(self._estimator()).fit(tasks.X[train], tasks.y[train])
            values = predict(model, tasks.X[test])
            if out is None:
                out = np.empty((len(tasks.X), values.shape[1]))
            out[test] = values
        return out

    def _check_offset_fitted(self):
        if self.offset == "shrunk" and not hasattr(self, "offset_var_"):
            raise ValueError(
                "offset='shrunk' was set after fit; fit again to estimate the "
                "offset prior."
            )


class PooledRegressor(RegressorMixin, _BasePooled):
    __doc__ = (
        """A pooled regressor plus a per-task offset shrunk by empirical Bayes.

    The baseline a practitioner already has: any scikit-learn regressor fitted
    on the rows of all training tasks together, which `adapt` corrects on a new
    task by adding an offset estimated from its support rows. With
    ``offset="shrunk"`` the offset is the mean support residual times
    ``n / (n + noise_var_ / offset_var_)``: the posterior mean of a random task
    intercept, whose variances are estimated at `fit` by the method of moments
    from out-of-fold residuals of the training tasks (``GroupKFold`` over
    tasks), so that a task with few or noisy support rows keeps close to the
    pooled model.

    Parameters
    ----------
    estimator : regressor, default=None
        Fitted (as a clone) on all pooled rows, and on each fold of the
        out-of-fold estimate. ``None`` is
        ``make_pipeline(StandardScaler(), RidgeCV())``; any scikit-learn
        regressor works, e.g. ``HistGradientBoostingRegressor()``.
    offset : {"shrunk", "mean"} or None, default="shrunk"
        What `adapt` adds to the pooled predictions: ``"shrunk"`` the mean
        support residual shrunk towards 0 by empirical Bayes, ``"mean"`` the
        raw mean support residual, ``None`` nothing (the pooled model without
        adaptation).
    cv : int, default=5
        Folds over tasks of the out-of-fold residuals (``offset="shrunk"``);
        fewer tasks than ``cv`` give one fold per task.
"""
        + CATEGORICAL_FEATURES
        + """
    Attributes
    ----------
    estimator_ : regressor
        The regressor fitted on all pooled rows.
    noise_var_ : float or ndarray of shape (n_outputs,)
        Within-task variance of the out-of-fold residuals, pooled over
        training tasks (``offset="shrunk"`` only). With a single training task,
        the variance of its in-sample residuals.
    offset_var_ : float or ndarray of shape (n_outputs,)
        Method-of-moments variance of the true task offsets: the variance of
        the tasks' mean out-of-fold residuals less their mean sampling
        variance ``noise_var_ / n_t``, floored at 0 (``offset="shrunk"`` only;
        0 with a single training task, so that `adapt` changes nothing).
    offset_ : float or ndarray of shape (n_outputs,)
        The offset of the last `adapt`, added to the pooled predictions; 0
        after `fit`.
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    PooledClassifier : The same for classification tasks.
    SupportSetRegressor : A regressor fitted on the support rows alone.

    Notes
    -----
    With ``b_t ~ N(0, tau2)`` the offset of task ``t`` and ``e ~ N(0,
    sigma2)`` the noise of its rows, a mean of ``n`` residuals has variance
    ``tau2 + sigma2 / n``; ``offset_var_`` is ``tau2`` estimated from that
    identity over training tasks and ``noise_var_`` is ``sigma2``. Residuals
    are out-of-fold, so a flexible pooled model that memorises its training
    tasks does not hide their offsets.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.baselines import PooledRegressor
    >>> rng = np.random.default_rng(0)
    >>> t = np.repeat(np.arange(30), 10)
    >>> X = rng.normal(size=(300, 2))
    >>> y = X @ [1.0, -2.0] + rng.normal(size=30)[t] + 0.5 * rng.normal(size=300)
    >>> est = PooledRegressor().fit(X, y, task_ids=t)
    >>> X_new = rng.normal(size=(8, 2))
    >>> y_new = X_new @ [1.0, -2.0] + 3.0
    >>> est.adapt(X_new[:3], y_new[:3]).predict(X_new[3:]).shape
    (5,)
    >>> bool(0 < est.offset_ < 3.5)
    True
    """
    )

    _parameter_constraints: dict = {
        **_BasePooled._parameter_constraints,
        "offset": [None, StrOptions({"shrunk", "mean"})],
    }

    @staticmethod
    def _default_estimator():
        return make_pipeline(StandardScaler(), RidgeCV())

    def _y_checks(self):
        multi_output = get_tags(self._estimator()).target_tags.multi_output
        return {"y_numeric": True, "multi_output": multi_output}

    def _fit_tasks(self, tasks):
        y = tasks.y.astype(np.float64, copy=False)
        self._y_ndim = y.ndim
        self.estimator_ = clone(self._estimator()).fit(tasks.X, y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if self.offset == "shrunk":
            if tasks.n_tasks > 1:
                predicted = self._out_of_fold(
                    tasks, lambda model, X: self._as_2d(model.predict(X))
                )
            else:
                predicted = self._as_2d(self.estimator_.predict(tasks.X))
            residuals = self._as_2d(y) - predicted
            noise, spread = residual_moments(residuals, tasks.task_codes, tasks.n_tasks)
            self.noise_var_ = self._as_output(noise)
            self.offset_var_ = self._as_output(spread)
        else:
            self.__dict__.pop("noise_var_", None)
            self.__dict__.pop("offset_var_", None)
        self.offset_ = self._as_output(np.zeros(n_outputs))

    @staticmethod
    def _as_2d(values):
        return values.reshape(len(values), -1)

    def _as_output(self, values):
        return float(values[0]) if self._y_ndim == 1 else values

    def adapt(self, X, y):
        """Estimate the task's offset from its support rows.

        Always starts from the pooled model, never from a previous adaptation:
        the offset is computed from the support residuals of the pooled model
        alone. Later calls to `predict` add it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The support set's features.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The support set's targets.

        Returns
        -------
        self : object
            The adapted estimator.
        """
        check_is_fitted(self)
        self._check_offset_fitted()
        X, y = self._validate_rows(X, y)
        y = self._as_2d(y.astype(np.float64, copy=False))
        if y.shape[1] != np.size(self.offset_):
            raise ValueError(
                f"The support set has {y.shape[1]} outputs but the model was "
                f"fitted with {np.size(self.offset_)}."
            )
        residual = (y - self._as_2d(self.estimator_.predict(X))).mean(axis=0)
        if self.offset is None:
            offset = np.zeros_like(residual)
        elif self.offset == "mean":
            offset = residual
        else:
            weight = shrinkage_weight(
                len(y), np.atleast_1d(self.noise_var_), np.atleast_1d(self.offset_var_)
            )
            offset = weight * residual
        self.offset_ = self._as_output(offset)
        return self

    def predict(self, X):
        """Predict with the pooled model plus the current offset.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The pooled predictions plus ``offset_``.
        """
        check_is_fitted(self)
        X = self._validate_rows(X)
        return self.estimator_.predict(X) + self.offset_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = get_tags(
            self._estimator()
        ).target_tags.multi_output
        return tags


def _has_predict_proba(self):
    """Whether the pooled classifier can give probabilities (``available_if``)."""
    model = getattr(self, "estimator_", None)
    return hasattr(self._estimator() if model is None else model, "predict_proba")


class PooledClassifier(ClassifierMixin, _BasePooled):
    __doc__ = (
        """A pooled classifier plus a per-task shift of its log-probabilities.

    The baseline a practitioner already has: any scikit-learn classifier
    fitted on the rows of all training tasks together (labels mean the same in
    every task), which `adapt` corrects on a new task by a shift of its
    log-probabilities, one per class: a per-task change of the class priors.
    With ``offset="shrunk"`` the shift is the maximum a posteriori estimate
    under a Gaussian prior ``N(0, offset_var_)`` on every class's shift, from
    the support rows; ``offset_var_`` is estimated at `fit` by the method of
    moments from out-of-fold per-task estimates (``GroupKFold`` over tasks).

    Parameters
    ----------
    estimator : classifier, default=None
        Fitted (as a clone) on all pooled rows, and on each fold of the
        out-of-fold estimate. ``None`` is
        ``make_pipeline(StandardScaler(), LogisticRegression())``; any
        scikit-learn classifier with ``predict_proba`` works, e.g.
        ``HistGradientBoostingClassifier()`` (one without it only with
        ``offset=None``).
    offset : {"shrunk"} or None, default="shrunk"
        What `adapt` does: ``"shrunk"`` shifts the log-probabilities by the
        shrunk estimate, ``None`` changes nothing (the pooled model without
        adaptation).
    cv : int, default=5
        Folds over tasks of the out-of-fold estimates (``offset="shrunk"``);
        fewer tasks than ``cv`` give one fold per task.
"""
        + CATEGORICAL_FEATURES
        + """
    Attributes
    ----------
    estimator_ : classifier
        The classifier fitted on all pooled rows.
    classes_ : ndarray of shape (n_classes,)
        The labels of all training tasks, sorted; `adapt` refuses others.
    offset_var_ : float
        Method-of-moments prior variance of a class's log-probability shift
        (``offset="shrunk"`` only; 0 with fewer than two usable training
        tasks, so that `adapt` changes nothing).
    offset_ : ndarray of shape (n_classes,)
        The shift of the last `adapt`, one per class of ``classes_``, summing
        to 0; zeros after `fit`.
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    PooledRegressor : The same for regression tasks.
    SupportSetClassifier : A classifier fitted on the support rows alone.

    Notes
    -----
    The adapted probabilities are ``softmax(log p(x) + offset_)``, with ``p``
    the pooled model's probabilities floored at 1e-9. The shift is found by
    damped Newton steps on the multinomial log-likelihood of the support rows
    (two classes are the binary case) plus the Gaussian log-prior; a shift
    common to all classes changes nothing, so shifts sum to 0.

    ``offset_var_`` is an approximation: each training task's shift is
    estimated by maximum likelihood from its out-of-fold log-probabilities,
    with the inverse observed Fisher information as its sampling variance
    (Wald), and ``offset_var_`` is the spread of these estimates across tasks
    less their mean sampling variance, per class dimension, floored at 0.
    Tasks that lack a class have no finite estimate and are left out. The
    Wald variance is rough for small tasks and rare classes.

    While ``offset_`` is zero, `predict` is the pooled model's own `predict`.

    Examples
    --------
    >>> from sktransfer.baselines import PooledClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=20, random_state=0)
    >>> est = PooledClassifier().fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict_proba(X[:2]).shape
    (2, 2)
    >>> est.offset_.shape
    (2,)
    """
    )

    _parameter_constraints: dict = {
        **_BasePooled._parameter_constraints,
        "offset": [None, StrOptions({"shrunk"})],
    }

    @staticmethod
    def _default_estimator():
        return make_pipeline(StandardScaler(), LogisticRegression())

    def _y_checks(self):
        return {}

    def _fit_tasks(self, tasks):
        check_classification_targets(tasks.y)
        self.classes_ = np.unique(tasks.y)
        model = self._estimator()
        if self.offset is not None and not hasattr(model, "predict_proba"):
            raise ValueError(
                f"offset={self.offset!r} shifts the pooled model's probabilities, "
                f"but {type(model).__name__} has no predict_proba; use offset=None "
                "or a classifier with predict_proba."
            )
        self.estimator_ = clone(model).fit(tasks.X, tasks.y)
        if self.offset == "shrunk":
            self.offset_var_ = 0.0
            if tasks.n_tasks > 1 and len(self.classes_) > 1:
                log_proba = self._out_of_fold(tasks, self._log_proba_of)
                codes = np.searchsorted(self.classes_, tasks.y)
                self.offset_var_ = shift_moments(
                    log_proba,
                    codes,
                    tasks.task_codes,
                    tasks.n_tasks,
                    len(self.classes_),
                )
        else:
            self.__dict__.pop("offset_var_", None)
        self.offset_ = np.zeros(len(self.classes_))

    def _pooled_proba(self, model, X):
        """``model.predict_proba(X)`` with one column per entry of ``classes_``."""
        proba = model.predict_proba(X)
        columns = np.searchsorted(self.classes_, model.classes_)
        full = np.zeros((len(X), len(self.classes_)))
        full[:, columns] = proba
        return full

    def _log_proba_of(self, model, X):
        return np.log(np.maximum(self._pooled_proba(model, X), _PROBA_FLOOR))

    def adapt(self, X, y):
        """Estimate the task's shift of log-probabilities from its support rows.

        Always starts from the pooled model, never from a previous adaptation.
        Later calls to `predict` and `predict_proba` use the shift.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The support set's features.
        y : array-like of shape (n_samples,)
            The support set's labels, all among ``classes_``.

        Returns
        -------
        self : object
            The adapted estimator.
        """
        check_is_fitted(self)
        self._check_offset_fitted()
        X, y = self._validate_rows(X, y)
        check_classification_targets(y)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"The support set has labels {unknown.tolist()} that are not among "
                f"classes_ {self.classes_.tolist()} seen in training; a pooled "
                "model only adapts to known labels."
            )
        offset = np.zeros(len(self.classes_))
        if self.offset == "shrunk" and self.offset_var_ > 0:
            codes = np.searchsorted(self.classes_, y)
            offset = newton_shift(
                self._log_proba_of(self.estimator_, X), codes, self.offset_var_
            )[0]
        self.offset_ = offset
        return self

    @available_if(_has_predict_proba)
    def predict_proba(self, X):
        """Class probabilities of the pooled model shifted by the current offset.

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
        if not self.offset_.any():
            return self._pooled_proba(self.estimator_, X)
        return np.exp(
            _log_softmax(self._log_proba_of(self.estimator_, X) + self.offset_)
        )

    def predict(self, X):
        """Predict class labels with the pooled model and the current offset.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self)
        if not self.offset_.any():
            X = self._validate_rows(X)
            return self.estimator_.predict(X)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
