"""Meta-learned Bayesian ridge heads (ALPaCA, R2-D2) as scikit-learn estimators."""

from numbers import Integral

import numpy as np
from sklearn.base import RegressorMixin, clone, is_classifier
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict

from sktransfer.meta._closed_form_base import BaseClosedForm, ClosedFormClassifierMixin
from sktransfer.meta._docstrings import CLOSED_FORM_PARAMETERS, CLOSED_FORM_TEXT
from sktransfer.meta._heads import RidgeMembers
from sktransfer.meta._targets import MetaRegressorMixin
from sktransfer.utils._docstrings import (
    CATEGORIES,
    DEVICE,
    MODULE_PARAMETERS,
    STANDARDIZE,
)
from sktransfer.utils._sklearn_compat import HasMethods, Interval, StrOptions


class _BaseMetaRidge(BaseClosedForm):
    """Shared implementation of `MetaRidgeRegressor` and `MetaRidgeClassifier`."""

    _parameter_constraints: dict = {
        **BaseClosedForm._parameter_constraints,
        "n_components": [Interval(Integral, 0, None, closed="left")],
        "linear_ensemble": ["boolean"],
        "kernel": [StrOptions({"linear", "rbf", "ard"})],
        "base_estimator": [None, HasMethods(["fit", "predict"])],
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(64, 64),
        n_components=16,
        linear_ensemble=True,
        kernel="ard",
        base_estimator=None,
        meta_lr=2e-3,
        weight_decay=1e-4,
        meta_batch_size=32,
        max_iter=2000,
        k_shot=20,
        n_query=None,
        early_stopping=True,
        cv=5,
        n_iter_no_change=10,
        tol=1e-4,
        standardize=True,
        categorical_features="from_dtype",
        device="cpu",
        batch_size=None,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.module_params = module_params
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.linear_ensemble = linear_ensemble
        self.kernel = kernel
        self.base_estimator = base_estimator
        self.meta_lr = meta_lr
        self.weight_decay = weight_decay
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.k_shot = k_shot
        self.n_query = n_query
        self.early_stopping = early_stopping
        self.cv = cv
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.device = device
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # -- base estimator ------------------------------------------------------------
    def _check_base_estimator(self):
        base = getattr(self, "base_estimator", None)
        if base is None:
            return
        if getattr(self, "n_way", None) is not None:
            raise ValueError(
                "base_estimator needs the shared label space: a pooled model cannot "
                "predict the new classes of episodic (n_way) tasks."
            )

    def _fit_base_estimator(self, tasks, single):
        """Out-of-fold predictions of ``base_estimator`` on the training rows.

        The folds are folds of tasks (of rows for a single task); the model
        refitted on every row, ``base_estimator_``, serves prediction. None
        without a base estimator.
        """
        base = getattr(self, "base_estimator", None)
        self.__dict__.pop("base_estimator_", None)
        if base is None:
            return None
        n_folds = min(self.cv, tasks.n_tasks)
        if single or n_folds < 2:
            splitter, groups = KFold(min(self.cv, len(tasks.X))), None
        else:
            splitter, groups = GroupKFold(n_folds), tasks.task_codes
        method = "predict_proba" if is_classifier(self) else "predict"
        X = self._expand_categories(tasks.X)
        out = cross_val_predict(
            clone(base), X, tasks.y, groups=groups, cv=splitter, method=method
        )
        self.base_estimator_ = clone(base).fit(X, tasks.y)
        if is_classifier(self):
            # cross_val_predict's columns are the sorted labels of y.
            return self._proba_of_classes(out, np.unique(tasks.y))
        return out

    def _base_predictions(self, X):
        """``base_estimator_``'s predictions (probabilities for classes), or None."""
        base = getattr(self, "base_estimator_", None)
        if base is None:
            return None
        X = self._expand_categories(X)
        if is_classifier(self):
            return self._proba_of_classes(base.predict_proba(X), base.classes_)
        return base.predict(X)

    def _proba_of_classes(self, proba, labels):
        """Probabilities with one column per entry of ``classes_``: a class the
        base model never saw (``partial_fit(..., classes=)``) gets 0."""
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, labels)] = proba
        return out

    def _n_base_columns(self):
        """Columns the base estimator adds to the head's inputs."""
        if getattr(self, "base_estimator", None) is None:
            return 0
        if not is_classifier(self):
            return self.n_outputs_
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _head_inputs(self, X, base):
        """The head's inputs: standardised ``X``, then the base predictions in
        the model's units (standardised targets, or log-odds of the classes).

        These last columns are also the head's offset (see `RidgeMembers`).
        """
        X = self._standardize_X(np.asarray(X, dtype=np.float64))
        if base is None:
            return X
        base = np.asarray(base, dtype=np.float64)
        if not is_classifier(self):
            columns = self._standardize_y(base.reshape(len(base), -1))
        else:
            log_proba = np.log(np.clip(base, 1e-6, 1.0))
            columns = (
                log_proba[:, 1:] - log_proba[:, :1]
                if log_proba.shape[1] == 2
                else log_proba - log_proba.mean(1, keepdims=True)
            )
        return np.hstack([X, columns])

    def _kinds(self, n_inputs, n_outputs, n_members, prior):
        """The model with learned features, and the linear one beside it."""
        common = {
            "n_offset": self._n_base_columns(),
            "classification": is_classifier(self),
            "prior": prior,
            "kernel": self.kernel,
        }
        kinds = {}
        if self.n_components > 0:
            kinds["learned"] = RidgeMembers(
                self._stacked_network(n_inputs, n_members),
                n_members,
                n_inputs,
                n_outputs,
                **common,
            )
        if self.n_components == 0 or self.linear_ensemble:
            kinds["linear"] = RidgeMembers(
                None, n_members, n_inputs, n_outputs, **common
            )
        return kinds


_SHARED_TEXT = {
    "module_parameters": MODULE_PARAMETERS.replace("(40, 40)", "(64, 64)"),
    "standardize": STANDARDIZE,
    "device": DEVICE,
    **CLOSED_FORM_TEXT,
}

_RIDGE_PARAMETERS = """    n_components : int, default=16
        Number of learned features ``g(x)``: the outputs of ``module``. 0 gives
        the linear model alone (features ``[x, 1]``, with ``kernel``'s RBF
        term); with ``kernel="linear"`` too, the pooled model with a random
        intercept and random slopes shrunk by a meta-learned prior.
    linear_ensemble : bool, default=True
        Average the predictions with those of the linear model (features
        ``[x, 1]``), each early-stopped on its own. Learned features win where
        tasks differ in shape and overfit where they differ by offsets and
        slopes only; the average keeps most of the gain and none of the loss
        (see the user guide's benchmark).
    kernel : {{"linear", "rbf", "ard"}}, default="ard"
        The head's covariance over the rows. ``"linear"``: Bayesian linear
        regression on ``phi(x)``, solved over its weights. ``"rbf"`` and
        ``"ard"`` add a Gaussian RBF term on the head's inputs (standardised
        ``x``, and any ``base_estimator`` columns), with a meta-learned scale
        and lengthscale, and solve the head over
        the support rows (a Gaussian process): support rows then inform the
        predictions of rows near them in ``x``, which a linear head cannot.
        The term starts small and is earned in meta-training like the random
        slopes. ``"ard"`` has one lengthscale and one slope prior standard
        deviation per input. ``"rbf"`` has one lengthscale, and one slope
        prior standard deviation shared by all inputs: few meta-parameters,
        for few training tasks or classes (five digits teach it a head that
        carries to five new ones, where per-input parameters overfit). The
        cost of `adapt` grows with the cube of the support rows and its
        memory with their square: for support sets of many thousands of
        rows, use ``"linear"`` (cubic in the features instead). Both kernels
        apply to each model kind.
    base_estimator : estimator, default=None
        A scikit-learn {kind} fitted on the pooled rows whose prediction
        ({base_inputs}) is both an input and an offset of the head: the head
        models what it leaves, per task, so that with no support rows the
        model predicts as the pooled model plus the meta-learned prior mean.
        Its predictions are out of fold (folds of tasks) during
        meta-training; the model refitted on every row serves prediction.
        Use a gradient-boosting model where a pooled tree model is strong.
"""


class MetaRidgeRegressor(MetaRegressorMixin, RegressorMixin, _BaseMetaRidge):
    __doc__ = (
        """Meta-learned Bayesian linear regression head (ALPaCA) over many tasks.

    Learns, from many related tasks, a feature map ``phi(x) = [g(x), x, 1]``
    (``g`` a torch network) and a Gaussian prior over the weights of a linear
    head on it, with a noise variance (Harrison, Sharma & Pavone, 2018).
    By default (``kernel="ard"``) the head's covariance also has an RBF term
    on the inputs, which makes it a Gaussian process over rows.
    `adapt` solves the head's posterior from a new task's support rows in
    closed form: no gradient steps, a few milliseconds. Meta-training
    maximises the posterior predictive likelihood of query rows given
    support sets of random size up to ``k_shot``, so one model serves every
    support size. With ``n_components=0`` and ``kernel="linear"`` it is the
    pooled linear model with a random intercept and random slopes shrunk by
    a meta-learned prior; by default it averages the model without learned
    features and the one with them.
"""
        + CLOSED_FORM_PARAMETERS.format(
            specific=_RIDGE_PARAMETERS.format(
                kind="regressor", base_inputs="one column per target"
            ),
            k_shot=20,
            unit="per task",
            n_way="",
            **_SHARED_TEXT,
        )
        + """
    Attributes
    ----------
    module_ : nn.Module or None
        The learned network ``g`` (None with ``n_components=0``).
    adapted_ : dict
        The posterior of each model kind after the last `adapt`.
    history_ : skorch.history.History
        Per epoch: ``train_loss`` (query negative log-likelihood) and, with
        ``early_stopping``, ``valid_loss_learned`` and ``valid_loss_linear``
        (the cross-validated query mean squared error, standardised units).
    best_iteration_ : dict
        With ``early_stopping``: the meta-iteration kept for each model kind.
    net_ : skorch.NeuralNet
        The skorch engine that ran meta-training.
    n_iter_ : int
        Meta-iterations run so far.
    base_estimator_ : estimator
        The ``base_estimator`` fitted on every training row.
    x_mean_, x_scale_ : ndarray of shape (n_inputs,) or None
        Mean and standard deviation of each input column (``n_features``
        with each categorical column one-hot) over the training rows (the
        base estimator's predictions are standardised as targets).
"""
        + CATEGORIES
        + """    y_mean_, y_scale_ : ndarray of shape (n_outputs,) or None
        Mean and standard deviation of the training targets.
    n_outputs_ : int
        Number of targets.
    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    MetaRidgeClassifier : The same head on one-hot targets (R2-D2).
    MAMLRegressor : Adaptation by gradient steps instead.

    Examples
    --------
    >>> from sktransfer import MetaRidgeRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=20, random_state=0)
    >>> est = MetaRidgeRegressor(max_iter=50, random_state=0).fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    def predict(self, X, return_std=False):
        """Predict targets with the current model.

        The posterior predictive mean after `adapt`, else the prior's.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.
        return_std : bool, default=False
            Also return the posterior predictive standard deviation (the
            noise and the head's uncertainty; with the linear ensemble, that
            of the equal mixture of the two models).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted targets.
        y_std : ndarray of the same shape
            Only with ``return_std``.
        """
        X = self._validate_inference_X(X)
        mean, var = self._predict_rows(X)
        mean = self._decode(mean, None)
        if not return_std:
            return mean
        std = np.sqrt(var)
        scale = getattr(self, "y_scale_", None)
        if scale is not None:
            std = std * scale
        return mean, (std.ravel() if self._y_ndim == 1 else std)

    def _combine(self, outputs, weights):
        """Weighted mean of the kinds' predictive means; the mixture's variance.

        ``outputs`` maps a kind to its means and variances (or None).
        """
        mean = sum(weights[name] * m for name, (m, _) in outputs.items())
        if any(var is None for _, var in outputs.values()):
            return mean, None
        second = sum(
            weights[name] * (var.unsqueeze(-1) + m.square())
            for name, (m, var) in outputs.items()
        )
        return mean, (second - mean.square()).clamp_min(0.0)

    def _n_outputs(self):
        return self.n_outputs_


class MetaRidgeClassifier(ClosedFormClassifierMixin, _BaseMetaRidge):
    __doc__ = (
        """Meta-learned ridge head on one-hot class targets (R2-D2) over many tasks.

    The classification counterpart of `MetaRidgeRegressor` (Bertinetto et al.,
    2019): a feature map ``phi(x) = [g(x), x, 1]`` and a Gaussian prior over a
    linear head are meta-learned; `adapt` solves the head's posterior mean
    for one-hot targets of a new task's support rows in closed form, and a
    learned scale turns its outputs into logits. In the shared label space
    the prior mean is learned (a pooled model that each task shifts); in the
    episodic label space (``n_way``) it is zero and the support set alone
    places the classes. By default (``kernel="ard"``) the head's covariance
    also has an RBF term on the inputs (kernel ridge regression over the
    support rows).
"""
        + CLOSED_FORM_PARAMETERS.format(
            specific=_RIDGE_PARAMETERS.format(
                kind="classifier with ``predict_proba``",
                base_inputs="its log-odds, or log-probabilities for more than two "
                "classes",
            ),
            k_shot=5,
            unit="per class",
            n_way="""    n_way : int, default=None
        ``None``: the shared label space (labels mean the same in every task).
        An int: the episodic label space, where every episode is an
        ``n_way``-class problem whose classes are drawn from its task and
        relabelled, and `adapt` accepts up to ``n_way`` new classes.
""",
            **_SHARED_TEXT,
        )
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Shared label space: the labels of all training tasks. Episodic label
        space: the labels of the last support set, set by `adapt`.
    module_ : nn.Module or None
        The learned network ``g`` (None with ``n_components=0``).
    adapted_ : dict
        The posterior of each model kind after the last `adapt`.
    history_ : skorch.history.History
        Per epoch: ``train_loss`` (query cross-entropy) and, with
        ``early_stopping``, ``valid_loss_learned`` and ``valid_loss_linear``
        (the cross-validated query cross-entropy).
    best_iteration_ : dict
        With ``early_stopping``: the meta-iteration kept for each model kind.
    net_ : skorch.NeuralNet
        The skorch engine that ran meta-training.
    n_iter_ : int
        Meta-iterations run so far.
    base_estimator_ : estimator
        The ``base_estimator`` fitted on every training row.
    x_mean_, x_scale_ : ndarray of shape (n_inputs,) or None
        Mean and standard deviation of each input column (``n_features``
        with each categorical column one-hot) over the training rows (the
        base estimator's predictions are standardised as targets).
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    MetaRidgeRegressor : The same head for regression (ALPaCA).
    ProtoNetClassifier : Class means in a learned embedding.

    Examples
    --------
    >>> from sktransfer import MetaRidgeClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=20, random_state=0)
    >>> est = MetaRidgeClassifier(max_iter=50, random_state=0).fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    _parameter_constraints: dict = {
        **_BaseMetaRidge._parameter_constraints,
        "base_estimator": [None, HasMethods(["fit", "predict_proba"])],
        "n_way": [None, Interval(Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(64, 64),
        n_components=16,
        linear_ensemble=True,
        kernel="ard",
        base_estimator=None,
        meta_lr=2e-3,
        weight_decay=1e-4,
        meta_batch_size=32,
        max_iter=2000,
        k_shot=5,
        n_query=None,
        n_way=None,
        early_stopping=True,
        cv=5,
        n_iter_no_change=10,
        tol=1e-4,
        standardize=True,
        categorical_features="from_dtype",
        device="cpu",
        batch_size=None,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        super().__init__(
            module,
            module_params=module_params,
            hidden_layer_sizes=hidden_layer_sizes,
            n_components=n_components,
            linear_ensemble=linear_ensemble,
            kernel=kernel,
            base_estimator=base_estimator,
            meta_lr=meta_lr,
            weight_decay=weight_decay,
            meta_batch_size=meta_batch_size,
            max_iter=max_iter,
            k_shot=k_shot,
            n_query=n_query,
            early_stopping=early_stopping,
            cv=cv,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            standardize=standardize,
            categorical_features=categorical_features,
            device=device,
            batch_size=batch_size,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
        )
        self.n_way = n_way
