"""Domain-adversarial neural networks (DANN, Ganin et al. 2016)."""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    ClassifierMixin,
    RegressorMixin,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import ProgressBar
from torch import nn

from sktransfer.base import (
    BaseTransferEstimator,
    BodyTransformerMixin,
    TransferClassifierMixin,
    TransferRegressorMixin,
    check_numeric_targets,
    mean_and_scale,
    resolve_device,
    restore_on_error,
    torch_seed,
)
from sktransfer.domain_adaptation._docstrings import (
    ATTRIBUTES,
    PARAMETERS,
    SHARED_TEXT,
    X_STATISTICS,
)
from sktransfer.domain_adaptation._domains import (
    check_sample_domain,
    check_two_domains,
    importance_weights,
    masked_rows,
)
from sktransfer.domain_adaptation._network import (
    DANNModule,
    DANNTrainer,
    EpochMeans,
    ReversalSchedule,
)
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.tasks._taskset import beyond_float32, missing_targets
from sktransfer.utils._categorical import (
    CATEGORICAL_CONSTRAINT,
    encode_categories,
    user_rows,
)
from sktransfer.utils._docstrings import DEVICE, STANDARDIZE, Y_STATISTICS
from sktransfer.utils._sklearn_compat import (
    Interval,
    _check_sample_weight,
    _fit_context,
)
from sktransfer.utils._state import private_module


class _DomainScoreMixin:
    """`score` with ``sample_domain``: importance-weighted source validation."""

    def score(self, X, y, sample_weight=None, sample_domain=None):
        """Plain score, or importance-weighted source score without target labels.

        Without ``sample_domain`` this is the accuracy (classifier) or R²
        (regressor) of `predict` on ``(X, y)``. With it, the labels of the
        target rows are not used: the score is the importance-weighted
        validation score of Sugiyama et al. (2007) on the source rows, each
        weighted by an estimate of ``p_target(x) / p_source(x)`` from a logistic
        regression that tells the given source rows from the given target rows.
        It estimates the target score without target labels, and lets a search
        pick hyper-parameters through metadata routing. Its limits: it assumes
        covariate shift (``p(y | x)`` the same in both domains) and fails
        silently under label shift or when the classes do not correspond; it
        needs source rows where the target lies (no weight can repair a target
        region without source rows), and few source rows with large weights make
        it noisy. Score rows held out of training.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels; target rows may carry the mask.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows (multiplied into the importance weights).
        sample_domain : array-like of shape (n_samples,), default=None
            Domain of each row (positive: source, negative: target), as in
            `fit`.

        Returns
        -------
        score : float
            Accuracy or R², plain or importance-weighted.
        """
        if sample_domain is None:
            return super().score(X, y, sample_weight=sample_weight)
        check_is_fitted(self)
        X, y = self._validate_X_y(X, y, reset=False)
        domains = check_sample_domain(sample_domain, y, self._classification, fit=False)
        sample_weight = _check_sample_weight(sample_weight, X)
        source = domains > 0
        if not source.any():
            raise ValueError(
                "score with sample_domain needs labelled source rows "
                "(sample_domain > 0) to weight; all rows are target rows."
            )
        if masked_rows(y[source], self._classification).any():
            raise ValueError("Source rows (sample_domain > 0) must have labels.")
        weights = sample_weight[source]
        if (~source).any():
            # The shift the network sees: each domain in its own units.
            weights = weights * importance_weights(
                self._standardize_source_X(X[source]),
                self._standardize_X(X[~source]),
                random_state=0,
            )
        # Validated rows go back to the values predict validates again.
        y_pred = self.predict(user_rows(self, self._source_as_target(X[source])))
        return float(self._metric(y[source], y_pred, sample_weight=weights))


class _BaseDANN(BodyTransformerMixin, BaseTransferEstimator):
    """Shared implementation of `DANNClassifier` and `DANNRegressor`."""

    # With metadata routing enabled, the domains given to a meta-estimator
    # (Pipeline, GridSearchCV, cross_validate) reach fit and score by default.
    __metadata_request__fit = {"sample_domain": True}
    __metadata_request__score = {"sample_domain": True}

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like"],
        "domain_hidden_layer_sizes": ["array-like"],
        "activation": [str],
        "domain_weight": [Interval(Real, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "anneal_lr": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "standardize": ["boolean"],
        "categorical_features": CATEGORICAL_CONSTRAINT,
        "standardize_per_domain": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        *,
        domain_hidden_layer_sizes=(64, 64),
        activation="relu",
        domain_weight=1.0,
        lr=1e-3,
        weight_decay=0.0,
        anneal_lr=False,
        max_iter=100,
        batch_size=None,
        validation_fraction=0.1,
        standardize=True,
        categorical_features="from_dtype",
        standardize_per_domain=False,
        device="cpu",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.domain_hidden_layer_sizes = domain_hidden_layer_sizes
        self.activation = activation
        self.domain_weight = domain_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.anneal_lr = anneal_lr
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.standardize_per_domain = standardize_per_domain
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # -- fit -------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_domain=None):
        """Train on labelled source rows and unlabelled target rows together.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels of the source rows; target rows carry the mask (-1 for
            classifiers, NaN for regressors), as in skada.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain of each row: a positive integer for a source domain, a
            negative one for a target domain (several of each are allowed; all
            sources, and all targets, are pooled). Target rows must have masked
            labels. ``None``: for a regressor, rows with NaN targets are the
            target and the others the source (skada's rule); for a classifier,
            every row is a source row, because -1 is an ordinary class label
            in scikit-learn. Without any target row the network is trained on
            the source alone, with a warning.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with restore_on_error(self):
            return self._fit(X, y, sample_domain)

    def _validate_fit_input(self, X, y, sample_domain):
        X, y = self._validate_X_y(X, y, reset=True)
        if beyond_float32(X) is not None:
            raise ValueError(
                "X has values beyond the float32 range, which the network cannot "
                "represent; rescale it (e.g. with StandardScaler) first."
            )
        explicit = sample_domain is not None
        domains = check_sample_domain(sample_domain, y, self._classification, fit=True)
        if explicit or (domains < 0).all():
            check_two_domains(domains)
        elif not (domains < 0).any():
            warnings.warn(
                f"{type(self).__name__} got no target rows, so it trains on the "
                "source alone, as a plain network. Pass sample_domain (negative for "
                "the unlabelled target rows, whose labels are masked) for "
                "domain-adversarial training.",
                UserWarning,
                stacklevel=3,
            )
        return X, y, domains

    def _fit(self, X, y, sample_domain):
        X, y, domains = self._validate_fit_input(X, y, sample_domain)
        source = domains > 0
        targets, n_outputs = self._encode_source(y[source])
        self._fit_standardization(X, y[source] if not self._classification else None)
        self._fit_domain_statistics(X, source)
        if not self._classification:
            targets = self._standardize_y(targets.reshape(len(targets), -1))
        device = resolve_device(self.device)
        rng = self._make_rng()
        self._random_seed = self._draw_seed(rng)
        Xs = np.array(self._standardize_X(X), dtype=np.float32)
        Xs[source] = self._standardize_source_X(X[source])
        if source.all():  # no target: nothing to compare with the source-only net
            train, held = np.flatnonzero(source), None
        else:
            train, held = self._holdout(np.flatnonzero(source), targets, rng)
        self.source_domains_ = np.unique(domains[source])
        self.target_domains_ = np.unique(domains[~source])
        rows = np.r_[train, np.flatnonzero(~source)]
        label_of = np.zeros(len(X), dtype=np.int64)
        label_of[np.flatnonzero(source)] = np.arange(source.sum())
        y_train = self._placeholder_targets(targets, len(X))
        y_train[np.flatnonzero(source)] = targets
        with torch_seed(self._random_seed, device):
            module = DANNModule(
                self._n_module_inputs(),
                n_outputs,
                self.hidden_layer_sizes,
                self.domain_hidden_layer_sizes,
                self.activation,
                source_only=held is not None,
            )
            batch_size = self.batch_size or min(64, len(rows))
            steps = self.max_iter * int(np.ceil(len(rows) / batch_size))
            net = self._make_engine(module, batch_size, steps, device)
            net.partial_fit(
                {"X": Xs[rows], "domain": source[rows].astype(np.float32)},
                y_train[rows],
                epochs=self.max_iter,
            )
        self.module_ = net.module_
        self.module_.reversal.weight = 0.0
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        self._check_finite()
        self._check_negative_transfer(Xs, targets, label_of, held)
        return self

    def _fit_domain_statistics(self, X, source):
        """Per-domain statistics: the target's become ``x_mean_`` and ``x_scale_``.

        With ``standardize_per_domain`` (and target rows), the source rows
        (all source domains pooled) are standardised with their own mean and
        scale, ``source_x_mean_`` and ``source_x_scale_``, and the target rows
        (all target domains pooled) with theirs, ``x_mean_`` and ``x_scale_``,
        which `predict`, `transform` and `score` use. Otherwise the source
        statistics are ``x_mean_`` and ``x_scale_``: those of every row.
        """
        if self.standardize and self.standardize_per_domain and not source.all():
            if self.is_categorical_ is not None:
                # Source rows could not be moved into the target's units.
                raise ValueError(
                    "standardize_per_domain=True works on numeric columns only; "
                    "X has categorical columns. Use standardize_per_domain=False, "
                    "or encode them first (e.g. OneHotEncoder in a Pipeline)."
                )
            self.source_x_mean_, self.source_x_scale_ = mean_and_scale(X[source])
            self.x_mean_, self.x_scale_ = mean_and_scale(X[~source])
        else:
            self.source_x_mean_, self.source_x_scale_ = self.x_mean_, self.x_scale_

    def _standardize_source_X(self, X):
        """Source rows in the module's units (the source statistics)."""
        X = self._expand_categories(X)
        if self.source_x_mean_ is None:
            return X
        return (X - self.source_x_mean_) / self.source_x_scale_

    def _source_as_target(self, X):
        """Source rows moved to where `predict` reads them as source rows.

        ``X`` standardised with the source statistics, then unstandardised
        with the target's (``x_mean_``, ``x_scale_``): `predict` and
        `transform` of the result are those of the source rows.
        """
        if self.source_x_mean_ is None or self.source_x_mean_ is self.x_mean_:
            return X
        return self._standardize_source_X(X) * self.x_scale_ + self.x_mean_

    def _holdout(self, source_rows, targets, rng):
        """Split the source rows into training and held-out ones (or None)."""
        n_held = (
            0
            if self.validation_fraction is None
            else int(np.ceil(self.validation_fraction * len(source_rows)))
        )
        if n_held < 2 or len(source_rows) - n_held < 2:
            return source_rows, None
        stratify = self._stratify(targets) and min(
            n_held, len(source_rows) - n_held
        ) >= len(np.unique(targets))
        train, held = train_test_split(
            source_rows,
            test_size=n_held,
            random_state=rng.randint(np.iinfo(np.int32).max),
            stratify=targets if stratify else None,
        )
        return np.sort(train), np.sort(held)

    def _make_engine(self, module, batch_size, steps, device):
        callbacks = [
            (
                "schedule",
                ReversalSchedule(steps, self.domain_weight, self.lr, self.anneal_lr),
            ),
            ("epoch_means", EpochMeans()),
            *copy.deepcopy(list(self.callbacks or [])),
        ]
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        engine = DANNTrainer(
            module,
            criterion=self._criterion,
            criterion__reduction="none",
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_iter,
            batch_size=batch_size,
            iterator_train__shuffle=True,
            train_split=None,
            callbacks=callbacks,
            device=device,
            verbose=int(self.verbose >= 2),
        )
        return engine.initialize()

    def _check_finite(self):
        if not all(torch.isfinite(p).all() for p in self.module_.parameters()):
            raise ValueError(
                "Training diverged: the network's weights are not finite. Lower lr "
                "or domain_weight, or keep standardize=True."
            )

    def _check_negative_transfer(self, Xs, targets, label_of, held):
        """Compare with the source-only network on the held-out source rows."""
        self.source_validation_score_ = None
        self.source_only_validation_score_ = None
        if held is None:
            return
        X_held = Xs[held].astype(np.float64)
        truth = targets[label_of[held]]
        module = self.module_
        with torch.no_grad():
            state = {k: v.double() for k, v in module.state_dict().items()}
            x = torch.as_tensor(X_held, device=next(module.parameters()).device)
            dann = torch.func.functional_call(module, state, (x,))
            twin = torch.func.functional_call(
                module.source_only,
                {
                    k.removeprefix("source_only."): v
                    for k, v in state.items()
                    if k.startswith("source_only.")
                },
                (x,),
            )
        dann_rows = self._row_scores(dann.cpu().numpy(), truth)
        twin_rows = self._row_scores(twin.cpu().numpy(), truth)
        self.source_validation_score_ = self._held_score(dann.cpu().numpy(), truth)
        self.source_only_validation_score_ = self._held_score(twin.cpu().numpy(), truth)
        diff = twin_rows - dann_rows
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        if diff.mean() > max(2 * se, 0.0) and diff.mean() > 0.01:
            warnings.warn(
                f"Domain alignment cost source accuracy: on {len(diff)} held-out "
                f"source rows the domain-adversarial model scores "
                f"{self.source_validation_score_:.3f} and the same network trained "
                f"on the source alone {self.source_only_validation_score_:.3f} "
                f"(paired difference {diff.mean():.3f} +/- {2 * se:.3f}). The "
                "features that fool the domain classifier lost information about "
                "the labels: the domains may differ in their labels (class "
                "proportions, or classes that do not correspond), not only in "
                "their features. Lower domain_weight, or prefer the source-only "
                "model.",
                NegativeTransferWarning,
                stacklevel=4,
            )

    def _validate_X_y(self, X, y, reset):
        """Validated ``X`` and ``y``; a regressor's NaN targets (masks) kept."""
        kwargs = dict(reset=reset, dtype=np.float64, ensure_all_finite=False)
        X = encode_categories(self, X, reset=reset)
        labels = None if y is None else np.asarray(y)
        if (
            self._classification
            and labels is not None
            and labels.ndim
            and labels.dtype.kind in "fO"
        ):
            labels = labels.reshape(len(labels), -1)
            missing = (
                np.isnan(labels).any(axis=1)
                if labels.dtype.kind == "f"
                else missing_targets(labels)
            )
            if missing.any():
                # sklearn would say "Input contains NaN", or None would pass
                # as a label: name the mask instead.
                raise ValueError(
                    f"y has a missing label (None or NaN) in {missing.sum()} row(s), "
                    f"the first in row {int(np.argmax(missing))}: mask the labels of "
                    "target rows with -1 (skada's convention), and give every "
                    "source row a label."
                )
        if self._classification or y is None:
            X, y = validate_data(self, X, y, **kwargs, **self._y_checks())
        else:
            check_numeric_targets(y)
            y = check_array(
                y,
                ensure_2d=False,
                dtype=np.float64,
                ensure_all_finite="allow-nan",
                input_name="y",
            )
            nan = np.isnan(y)
            X, y = validate_data(
                self, X, np.where(nan, 0.0, y), **kwargs, **self._y_checks()
            )
            y = np.where(nan.reshape(y.shape), np.nan, y)
        assert_all_finite(X, input_name="X")
        return X, y

    # -- inference -------------------------------------------------------------
    def _n_outputs(self):
        return self.module_.head.out_features

    def _body_outputs(self, X):
        """The feature extractor's outputs (the body shared by both heads)."""
        X = self._standardize_X(X)
        module = self.module_
        device = next(module.parameters()).device
        state = {k: v.detach().double() for k, v in module.named_parameters()}
        batch_size = self.batch_size or len(X) or 1
        outputs = []
        # A private copy of the layers: threads may share the fitted module.
        with private_module(module) as private, torch.no_grad():
            for start in range(0, len(X), batch_size):
                chunk = torch.as_tensor(
                    X[start : start + batch_size], dtype=torch.float64, device=device
                )
                out = torch.func.functional_call(
                    private, state, (chunk,), {"output": "features"}
                )
                outputs.append(out.cpu().numpy())
        if not outputs:
            return np.empty((0, self.module_.head.in_features))
        return np.concatenate(outputs)

    def __getstate__(self):
        # A copy of __dict__ (Python 3.11+ returns it itself); a network
        # trained on a GPU is pickled on the CPU, so that it loads anywhere.
        state = dict(super().__getstate__())
        module = state.get("module_")
        if module is not None and next(module.parameters()).device.type != "cpu":
            state["module_"] = copy.deepcopy(module).cpu()
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class DANNClassifier(
    _DomainScoreMixin, TransferClassifierMixin, ClassifierMixin, _BaseDANN
):
    __doc__ = (
        """Domain-adversarial neural network classifier (DANN).

    Learns features that predict the labels of the source rows and from which
    a domain classifier cannot tell source rows from target rows (Ganin et
    al., 2016): a feature extractor, a label predictor and a domain
    classifier, joined by a gradient-reversal layer. Unlabelled target rows
    take part in `fit`, following skada's ``sample_domain`` convention
    (positive for source domains, negative for target domains, target labels
    masked with -1). skorch is the training engine inside.
"""
        + PARAMETERS.format(standardize=STANDARDIZE, device=DEVICE, **SHARED_TEXT)
        + ATTRIBUTES.format(
            classes="""    classes_ : ndarray of shape (n_classes,)
        The labels of the source rows.
""",
            statistics=X_STATISTICS,
        )
        + """
    See Also
    --------
    DANNRegressor : The same for regression.
    FineTuneClassifier : Transfer to a target with a few labelled rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from sktransfer import DANNClassifier
    >>> Xs, ys = make_moons(100, noise=0.1, random_state=0)
    >>> Xt, _ = make_moons(100, noise=0.1, random_state=1)
    >>> X = np.vstack([Xs, Xt + [1.0, 0.8]])
    >>> y = np.r_[ys, -np.ones(100, dtype=int)]  # target labels masked
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)].astype(int)
    >>> est = DANNClassifier(max_iter=5, random_state=0)
    >>> est.fit(X, y, sample_domain=sample_domain).predict(X[100:103]).shape
    (3,)
    """
    )

    _classification = True
    _criterion = nn.CrossEntropyLoss

    def _y_checks(self):
        return {}

    def _stratify(self, targets):
        return bool(np.bincount(targets).min() >= 2)

    def _encode_source(self, y):
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return codes.astype(np.int64), len(self.classes_)

    def _placeholder_targets(self, targets, n):
        return np.zeros(n, dtype=np.int64)

    def _row_scores(self, outputs, truth):
        return (outputs.argmax(axis=1) == truth).astype(np.float64)

    def _held_score(self, outputs, truth):
        return float(self._row_scores(outputs, truth).mean())

    @staticmethod
    def _metric(y_true, y_pred, sample_weight=None):
        return accuracy_score(y_true, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class DANNRegressor(
    _DomainScoreMixin, TransferRegressorMixin, RegressorMixin, _BaseDANN
):
    __doc__ = (
        """Domain-adversarial neural network regressor (DANN).

    Learns features that predict the targets of the source rows and from
    which a domain classifier cannot tell source rows from target rows (Ganin
    et al., 2016), with the squared error as the label loss. Unlabelled target
    rows take part in `fit`, following skada's ``sample_domain`` convention
    (positive for source domains, negative for target domains, target values
    masked with NaN). skorch is the training engine inside.
"""
        + PARAMETERS.format(standardize=STANDARDIZE, device=DEVICE, **SHARED_TEXT)
        + ATTRIBUTES.format(classes="", statistics=X_STATISTICS + Y_STATISTICS)
        + """
    See Also
    --------
    DANNClassifier : The same for classification.
    FineTuneRegressor : Transfer to a target with a few labelled rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import DANNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> X[100:] += 1.0  # the target rows are shifted
    >>> y = X @ [1.0, -2.0, 0.5]
    >>> y[100:] = np.nan  # target values masked
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)].astype(int)
    >>> est = DANNRegressor(max_iter=5, random_state=0)
    >>> est.fit(X, y, sample_domain=sample_domain).predict(X[:3]).shape
    (3,)
    """
    )

    _classification = False
    _criterion = nn.MSELoss

    def _y_checks(self):
        return {"y_numeric": True, "multi_output": True}

    def _stratify(self, targets):
        return False

    def _encode_source(self, y):
        self._y_ndim = y.ndim
        if beyond_float32(y.reshape(len(y), -1)) is not None:
            raise ValueError(
                "y has values beyond the float32 range, which the network cannot "
                "represent; rescale it first."
            )
        assert_all_finite(y, input_name="y")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        return y.reshape(len(y), -1).astype(np.float64), n_outputs

    def _placeholder_targets(self, targets, n):
        return np.zeros((n, targets.shape[1]), dtype=np.float32)

    def _row_scores(self, outputs, truth):
        # Negative squared error per row (standardised units): greater is better.
        return -((outputs - truth) ** 2).mean(axis=1)

    def _held_score(self, outputs, truth):
        # R² is the same in standardised units as in the user's.
        return float(r2_score(truth, outputs))

    @staticmethod
    def _metric(y_true, y_pred, sample_weight=None):
        return r2_score(y_true, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
