"""A linear mixed model (random intercept and slope) as an adaptable baseline.

Fitted with ``statsmodels`` MixedLM on the training tasks; ``adapt`` computes
the best linear unbiased prediction (BLUP) of a new task's random effects from
its support rows, given the fitted fixed effects and variance components.
Benchmark-only: statsmodels is not a dependency of sktransfer.
"""

import warnings

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin


class MixedModelRegressor(RegressorMixin, BaseEstimator):
    """``y = X beta + b0 + b1 * X[:, slope] + e`` with ``(b0, b1)`` per task.

    Parameters
    ----------
    slope : int or None
        Column of ``X`` with a random slope; None for a random intercept only.
    """

    def __init__(self, slope=None):
        self.slope = slope

    def _design(self, X):
        X = np.asarray(X, dtype=np.float64)
        Z = np.ones((len(X), 1 if self.slope is None else 2))
        if self.slope is not None:
            Z[:, 1] = (X[:, self.slope] - self.center_) / self.spread_
        return np.hstack([np.ones((len(X), 1)), (X - self.mean_) / self.scale_]), Z

    def fit(self, X, y, task_ids):
        import statsmodels.api as sm

        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(0)
        self.scale_ = np.where(X.std(0) > 0, X.std(0), 1.0)
        if self.slope is not None:
            self.center_ = X[:, self.slope].mean()
            self.spread_ = X[:, self.slope].std() or 1.0
        design, Z = self._design(X)
        # Keep a set of linearly independent columns (one-hot groups are
        # collinear with the intercept), the intercept first.
        _, r, order = scipy.linalg.qr(design, mode="economic", pivoting=True)
        rank = int((np.abs(np.diag(r)) > 1e-8 * np.abs(r[0, 0])).sum())
        keep = np.zeros(design.shape[1], dtype=bool)
        keep[order[:rank]] = True
        keep[0] = True
        design = design[:, keep]
        self.keep_ = keep
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sm.MixedLM(np.asarray(y, float), design, groups=task_ids, exog_re=Z)
            result = model.fit(method=["lbfgs", "powell"], reml=True)
        self.beta_ = np.asarray(result.fe_params)
        self.cov_re_ = np.atleast_2d(np.asarray(result.cov_re))
        self.noise_var_ = float(result.scale)
        self.offset_ = np.zeros(Z.shape[1])
        return self

    def adapt(self, X, y):
        design, Z = self._design(X)
        residual = np.asarray(y, float) - design[:, self.keep_] @ self.beta_
        precision = Z.T @ Z / self.noise_var_ + np.linalg.pinv(self.cov_re_)
        self.offset_ = np.linalg.solve(precision, Z.T @ residual / self.noise_var_)
        return self

    def predict(self, X):
        design, Z = self._design(X)
        return design[:, self.keep_] @ self.beta_ + Z @ self.offset_
