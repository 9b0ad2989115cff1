"""Source-to-target transfer by fine-tuning, as scikit-learn estimators."""

import copy
import glob
import math
import warnings
from fnmatch import fnmatchcase
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Freezer, ProgressBar, Unfreezer
from skorch.dataset import ValidSplit, get_len
from skorch.utils import to_numpy
from torch import nn

from sktransfer.base import (
    BaseTransferEstimator,
    BodyTransformerMixin,
    TransferClassifierMixin,
    TransferRegressorMixin,
    early_stopping_callback,
    mean_and_scale,
    module_output_shape,
    resolve_device,
    restore_on_error,
    torch_seed,
)
from sktransfer.finetune._docstrings import (
    ADAPT_Y_STATISTICS,
    ATTRIBUTES,
    PARAMETERS,
)
from sktransfer.utils._categorical import (
    CATEGORICAL_CONSTRAINT,
    encode_categories,
)
from sktransfer.utils._divergence import (
    all_finite,
    divergence_error,
    finite_weights,
    restore_weights,
)
from sktransfer.utils._docstrings import (
    DEVICE,
    MODULE_PARAMETERS,
    STANDARDIZE,
    X_STATISTICS,
    Y_STATISTICS,
    verbose_doc,
    weight_decay_doc,
)
from sktransfer.utils._sklearn_compat import Interval, StrOptions, _fit_context
from sktransfer.utils._state import (
    interrupts_propagate,
    publish,
    working_copy,
)


def _layers(module):
    """The parameterised layers, input to output: ``[(name, [param names])]``."""
    layers = []
    for name, sub in module.named_modules():
        params = [p for p, _ in sub.named_parameters(recurse=False)]
        if params:
            prefix = f"{name}." if name else ""
            layers.append((name, [prefix + p for p in params]))
    if not layers:
        raise ValueError("The module has no parameters to fine-tune.")
    return layers


def _replace_head(module, head, n_outputs):
    """Put a freshly initialised output layer with ``n_outputs`` in place."""
    old = module.get_submodule(head) if head else module
    if not head or not isinstance(old, nn.Linear):
        raise ValueError(
            f"A fresh head needs the module's output layer to be an nn.Linear, but "
            f"its last parameterised layer {head or '(the module itself)'!r} is "
            f"{type(old).__name__}; use head='keep' or a module whose output layer "
            "is nn.Linear."
        )
    parent, _, child = head.rpartition(".")
    new = nn.Linear(
        old.in_features,
        n_outputs,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    setattr(module.get_submodule(parent) if parent else module, child, new)


def _output_width(module, n_features):
    """Number of outputs of ``module`` for ``n_features`` inputs."""
    shape = module_output_shape(module, n_features)
    if len(shape) != 2:
        raise ValueError(
            f"The module maps (2, {n_features}) inputs to {shape}; "
            "expected (n_samples, n_outputs)."
        )
    return shape[1]


def _holdout_problem(n_rows, fraction, labels=None):
    """Why ``fraction`` of ``n_rows`` cannot be held out, and which way to move
    it, or None if it can.

    ``labels`` are given when the split is stratified by class: then both
    sides need a row of every class, and every class two rows.
    """
    n_valid = math.ceil(fraction * n_rows)
    n_train = n_rows - n_valid
    if n_train < 1:
        return (
            f"validation_fraction={fraction} of {n_rows} rows holds out {n_valid} "
            "and leaves no row to train on: lower validation_fraction"
        )
    if labels is None:
        return None
    counts = np.unique(labels, return_counts=True)[1]
    if counts.min() < 2 or min(n_valid, n_train) < len(counts):
        move = "raise" if n_valid < len(counts) else "lower"
        return (
            f"validation_fraction={fraction} of {n_rows} rows holds out {n_valid} "
            f"and trains on {n_train}, but a split stratified by class needs a row "
            f"of each of the {len(counts)} classes on both sides: {move} "
            "validation_fraction"
        )
    return None


class _HoldOut(ValidSplit):
    """skorch's ``ValidSplit`` saying what is too small for early stopping
    (instead of scikit-learn's message about a ``test_size``)."""

    def __call__(self, dataset, y=None, groups=None):
        problem = _holdout_problem(
            get_len(dataset), self.cv, to_numpy(y) if self.stratified else None
        )
        if problem is not None:
            raise ValueError(
                f"early_stopping holds out rows for validation, but {problem}, give "
                "more rows, or set early_stopping=False."
            )
        return super().__call__(dataset, y, groups)


class _Trainer(NeuralNet):
    """skorch engine of pre-training and of each adaptation.

    A plain `NeuralNet` on already encoded targets (class codes or float
    targets): skorch supplies the data loop, callbacks, history, device and
    optimiser; the public estimators do validation and label encoding.
    """

    # The divergence guard: skorch reads every batch's loss already; at the
    # end of each epoch the weights are checked too. On a non-finite value
    # the weights of the last finite epoch are restored and the error names
    # the epoch and ``learning_rates``, the parameters to lower.
    learning_rates = "lr"

    def __init__(self, *args, learning_rates="lr", **kwargs):
        super().__init__(*args, **kwargs)
        self.learning_rates = learning_rates

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.last_finite_ = finite_weights(self.module_)

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        losses = [batch.get("train_loss", 0.0) for batch in self.history[-1, "batches"]]
        if not (
            np.isfinite(losses).all() and bool(all_finite(self.module_.parameters()))
        ):
            restore_weights(self.module_, self.last_finite_)
            raise divergence_error(f"epoch #{len(self.history)}", self.learning_rates)
        self.last_finite_ = finite_weights(self.module_)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self.__dict__.pop("last_finite_", None)


class _BaseFineTune(BodyTransformerMixin, BaseTransferEstimator):
    """Shared implementation of `FineTuneClassifier` and `FineTuneRegressor`."""

    # Task labels routed by a meta-estimator reach fit (where the tasks are
    # pooled), as for the meta-learners, so one search can hold both families.
    __metadata_request__fit = {"task_ids": True}
    __metadata_request__partial_fit = {"task_ids": True}

    _parameter_constraints: dict = {
        "module": [None, type, nn.Module],
        "module_params": [None, dict],
        "hidden_layer_sizes": ["array-like"],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "pretrained": ["boolean"],
        "freeze": [
            None,
            StrOptions({"body"}),
            Interval(Integral, 0, None, closed="left"),
            list,
        ],
        "head": [StrOptions({"auto", "reset", "keep"})],
        "adapt_lr": [None, Interval(Real, 0, None, closed="neither")],
        "adapt_max_iter": [Interval(Integral, 1, None, closed="left")],
        "unfreeze_every": [None, Interval(Integral, 1, None, closed="left")],
        "layer_lr_decay": [None, Interval(Real, 0, 1, closed="right")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "categorical_features": CATEGORICAL_CONSTRAINT,
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(40, 40),
        lr=1e-3,
        weight_decay=0.0,
        max_iter=100,
        batch_size=None,
        pretrained=False,
        freeze="body",
        head="auto",
        adapt_lr=None,
        adapt_max_iter=100,
        unfreeze_every=None,
        layer_lr_decay=None,
        early_stopping=False,
        validation_fraction=0.1,
        tol=1e-4,
        n_iter_no_change=10,
        standardize=True,
        categorical_features="from_dtype",
        device="cpu",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.module_params = module_params
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.pretrained = pretrained
        self.freeze = freeze
        self.head = head
        self.adapt_lr = adapt_lr
        self.adapt_max_iter = adapt_max_iter
        self.unfreeze_every = unfreeze_every
        self.layer_lr_decay = layer_lr_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # -- fitted state exposed from the skorch engines ------------------------
    @property
    def pretrained_module_(self):
        """The network after pre-training (or the given pretrained module)."""
        return self.net_.module_

    @property
    def module_(self):
        """The network `predict` uses: the adapted one after `adapt`."""
        net = getattr(self, "adapt_net_", None) or self.net_
        return net.module_

    @property
    def history_(self):
        """skorch ``History`` of pre-training: one row per epoch."""
        return self.net_.history

    @property
    def adapt_history_(self):
        """skorch ``History`` of the last `adapt`: one row per epoch."""
        if getattr(self, "adapt_net_", None) is None:
            raise AttributeError("adapt_history_ exists after adapt.")
        return self.adapt_net_.history

    # -- fit -----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, task_ids=None):
        """Pre-train the whole network on the (pooled) source data.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The source data: task pairs (or a `TaskSet`), or flat rows with or
            without ``task_ids``. All forms are pooled into one training set.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), \
                default=None
            Targets of the flat forms; ``None`` when ``X`` holds the tasks.
        task_ids : array-like of shape (n_samples,), default=None
            Task label of each row of the flat form; accepted for
            compatibility with the other forms, the rows are pooled.

        Returns
        -------
        self : object
            The pre-trained estimator, without adaptation.
        """
        with restore_on_error(self):
            return self._fit(X, y, task_ids, reset=True, epochs=self.max_iter)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, task_ids=None, **kwargs):
        """One more epoch of pre-training over the given rows.

        The first call initialises the network like `fit`; later calls go on
        from the current pre-trained weights and optimiser state. Any
        adaptation is dropped.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The source data, in any of the forms `fit` accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), \
                default=None
            Targets of the flat forms.
        task_ids : array-like of shape (n_samples,), default=None
            Task label of each row of the flat form (the rows are pooled).
        **kwargs : dict
            ``classes`` for classifiers: all labels, required on the first
            call (sklearn's incremental contract).

        Returns
        -------
        self : object
            The estimator after one more epoch.
        """
        reset = not hasattr(self, "net_")
        with restore_on_error(self):
            return self._fit(X, y, task_ids, reset=reset, epochs=1, **kwargs)

    def _fit(self, X, y, task_ids, *, reset, epochs, **kwargs):
        tasks, _ = self._validate_tasks(X, y, task_ids, reset)
        self._drop_adaptation()
        X, y = tasks.X, tasks.y
        if reset:
            self._fit_standardization(X, y if is_regressor(self) else None)
        targets, n_outputs = self._encode_source(y, reset=reset, **kwargs)
        device = resolve_device(self.device)
        if reset:
            self._random_seed = self._draw_seed(self._make_rng())
            with torch_seed(self._random_seed, device):
                module = self._build_module(self._n_module_inputs(), n_outputs)
            self.net_ = self._make_engine(
                module, lr=self.lr, targets=targets, device=device
            )
            self.n_iter_ = 0
        self._after_drop_adaptation()
        X = np.asarray(self._standardize_X(X), dtype=np.float32)
        before = len(self.net_.history)
        with torch_seed(self._random_seed + self.n_iter_, device):
            self.net_.partial_fit(X, targets, epochs=epochs)
        self.n_iter_ += len(self.net_.history) - before
        return self

    def _drop_adaptation(self):
        """Forget the last `adapt`; `_after_drop_adaptation` restores the rest."""
        for name in ("adapt_net_", "adapt_n_iter_", "adapt_y_mean_", "adapt_y_scale_"):
            self.__dict__.pop(name, None)

    def _make_engine(
        self,
        module,
        *,
        lr,
        targets,
        device,
        callbacks=(),
        early_stopping=None,
        **kwargs,
    ):
        """A fresh, initialised skorch engine training ``module``.

        ``early_stopping`` None follows the parameter.
        """
        callbacks = [*callbacks, *copy.deepcopy(list(self.callbacks or []))]
        train_split = None
        if early_stopping is None:
            early_stopping = self.early_stopping
        if early_stopping:
            train_split = _HoldOut(
                self.validation_fraction,
                stratified=self._stratify(targets),
                random_state=self._random_seed,
            )
            callbacks.append(early_stopping_callback(self))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        engine = _Trainer(
            module,
            criterion=self._criterion,
            optimizer=torch.optim.AdamW,
            lr=lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=1,
            batch_size=self.batch_size or min(200, len(targets)),
            iterator_train__shuffle=True,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            # The log line per epoch (and early stopping's) from verbose=2.
            verbose=int(self.verbose >= 2),
            **kwargs,
        )
        return engine.initialize()

    # -- adaptation ----------------------------------------------------------
    def adapt(self, X, y):
        """Fine-tune the pre-trained network on a target set.

        Always starts from the pre-trained weights, never from a previous
        adaptation, so adapting twice to the same data gives the same model
        as adapting once. The layers chosen by ``freeze`` keep their weights
        bit for bit; ``head`` decides whether the output layer is kept or
        replaced by a fresh one; the rest is trained for ``adapt_max_iter``
        epochs at ``adapt_lr``. Later calls to `predict` use the adapted
        network. A failing call leaves the estimator as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The target set's features, with the source's columns.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target set's targets.

        Returns
        -------
        self : object
            The adapted estimator.
        """
        self._validate_params()
        from_module = (
            not hasattr(self, "net_")
            and self.pretrained
            and isinstance(self.module, nn.Module)
        )
        if not from_module:
            try:
                check_is_fitted(self)
            except NotFittedError as exc:
                raise NotFittedError(
                    f"This {type(self).__name__} is not fitted: call fit first, or "
                    "pass a trained nn.Module instance as module with "
                    "pretrained=True to adapt it without fit."
                ) from exc
        # Computed on a working copy and published in one assignment: threads
        # predicting meanwhile see the previous adaptation or this one, and a
        # failing or interrupted call leaves the previous one in place.
        est = working_copy(self)
        with interrupts_propagate():
            if from_module:
                est._wrap_pretrained(X)
            X, y = est._validate_support(X, y)
            targets, n_outputs, fresh, classes = est._encode_target(y)
            device = est.net_.device
            with torch_seed(est._random_seed, torch.device(device)):
                module = copy.deepcopy(est.net_.module_)
                layers = _layers(module)
                head_name = layers[-1][0]
                if fresh:
                    _replace_head(module, head_name, n_outputs)
                    layers = _layers(module)
                callbacks, kwargs = est._adapt_schedule(layers)
                engine = est._make_engine(
                    module,
                    lr=est.adapt_lr if est.adapt_lr is not None else est.lr,
                    targets=targets,
                    device=device,
                    callbacks=callbacks,
                    early_stopping=est._adapt_early_stopping(targets),
                    learning_rates="adapt_lr",
                    **kwargs,
                )
                engine.partial_fit(
                    np.asarray(est._standardize_X(X), dtype=np.float32),
                    targets,
                    epochs=est.adapt_max_iter,
                )
            est.adapt_net_ = engine
            est.adapt_n_iter_ = len(engine.history)
            if classes is not None:
                est.classes_ = classes
        publish(self, est)
        return self

    def _adapt_early_stopping(self, targets):
        """Whether `adapt` stops early: off, with a warning, when the target
        set is too small to hold rows out."""
        if not self.early_stopping:
            return False
        problem = _holdout_problem(
            len(targets),
            self.validation_fraction,
            targets if self._stratify(targets) else None,
        )
        if problem is None:
            return True
        warnings.warn(
            f"The target set is too small for early stopping: {problem}. Adapting "
            f"without early stopping, for adapt_max_iter={self.adapt_max_iter} "
            "epochs on all rows.",
            UserWarning,
            stacklevel=3,
        )
        return False

    def _build_module(self, n_features, n_outputs):
        """The module as the base class builds it, refused without parameters
        (before skorch builds an optimiser for it)."""
        module = super()._build_module(n_features, n_outputs)
        _layers(module)
        return module

    def _wrap_pretrained(self, X):
        """Use the ``module`` instance as the pre-trained network, without fit."""
        X = encode_categories(self, X, reset=True)
        X = validate_data(self, X, reset=True, dtype=np.float64)
        device = resolve_device(self.device)
        self._random_seed = self._draw_seed(self._make_rng())
        probe = copy.deepcopy(self.module).float()
        n_outputs = _output_width(probe, self._n_module_inputs())
        module = self._build_module(self._n_module_inputs(), n_outputs)
        self.net_ = self._make_engine(
            module, lr=self.lr, targets=np.zeros(len(X)), device=device
        )
        self.n_iter_ = 0
        # The module was trained elsewhere: its units are unknown.
        self._fit_standardization(None)
        self._init_from_module(n_outputs)

    def _frozen_layers(self, layers):
        """Names of the frozen parameters, grouped by layer (input first)."""
        freeze = self.freeze
        names = [n for _, layer in layers for n in layer]
        if freeze is None:
            groups = []
        elif isinstance(freeze, str):  # "body"
            groups = [layer for _, layer in layers[:-1]]
        elif isinstance(freeze, Integral):
            if freeze > len(layers):
                raise ValueError(
                    f"freeze={freeze} but the module has only {len(layers)} "
                    f"parameterised layers: {[n or '(root)' for n, _ in layers]}."
                )
            groups = [layer for _, layer in layers[:freeze]]
        else:
            frozen = set()
            for pattern in freeze:
                if not isinstance(pattern, str):
                    raise ValueError(
                        f"freeze patterns must be strings, got {pattern!r}."
                    )
                matched = [n for n in names if fnmatchcase(n, pattern)]
                if not matched:
                    raise ValueError(
                        f"The freeze pattern {pattern!r} matches no parameter of "
                        f"the module; its parameters are {names}."
                    )
                frozen.update(matched)
            groups = [
                [n for n in layer if n in frozen]
                for _, layer in layers
                if any(n in frozen for n in layer)
            ]
        if sum(len(g) for g in groups) == len(names):
            raise ValueError(
                f"freeze={freeze!r} freezes every parameter: nothing is left for "
                "adapt to train."
            )
        return groups

    def _adapt_schedule(self, layers):
        """skorch callbacks (freezing, gradual unfreezing) and optimiser groups."""
        groups = self._frozen_layers(layers)
        callbacks = []
        if groups:
            callbacks.append(
                ("freezer", Freezer([glob.escape(n) for g in groups for n in g]))
            )
        if self.unfreeze_every is not None:
            # The top frozen layer thaws first, then the ones below it.
            for i, group in enumerate(reversed(groups), start=1):
                patterns = [glob.escape(n) for n in group]
                at = i * self.unfreeze_every + 1
                callbacks.append((f"unfreezer_{i}", Unfreezer(patterns, at=at)))
        kwargs = {}
        if self.layer_lr_decay is not None:
            lr = self.adapt_lr if self.adapt_lr is not None else self.lr
            kwargs["optimizer__param_groups"] = [
                (glob.escape(n), {"lr": lr * self.layer_lr_decay**depth})
                for depth, (_, layer) in enumerate(reversed(layers))
                for n in layer
            ]
        return callbacks, kwargs

    # -- inference plumbing --------------------------------------------------
    def _n_outputs(self):
        return _output_width(self.module_, self._n_module_inputs())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


_SHARED_TEXT = {
    "weight_decay": weight_decay_doc(
        default="0.0",
        weights="the network's weights",
        calls="`fit`, `partial_fit` and `adapt`",
        lr="``lr``; ``adapt_lr`` in `adapt`",
        note="Frozen weights are not decayed: they stay bit-identical.",
    ),
    "verbose": verbose_doc(
        bar=" per epoch",
        epoch=", in `fit` and in `adapt` alike",
    ),
}


class FineTuneClassifier(TransferClassifierMixin, ClassifierMixin, _BaseFineTune):
    __doc__ = (
        """Transfer classifier: pre-train on source data, fine-tune on a target.

    `fit` trains the whole network on the pooled source data (the three task
    forms are read as one training set); `adapt` copies the pre-trained
    network, keeps the layers chosen by ``freeze`` fixed, gives it a fresh
    output layer when the target's classes differ from the source's, and
    trains the rest on the target set. skorch is the training engine inside
    (its callbacks, history and device handling).
"""
        + PARAMETERS.format(
            module_parameters=MODULE_PARAMETERS,
            standardize=STANDARDIZE,
            device=DEVICE,
            **_SHARED_TEXT,
            pretrained_note=(
                "; the source classes are then unknown and ``head='auto'`` keeps "
                "the head when its width equals the number of target classes"
            ),
            head_auto="the target's classes are the source's classes",
        )
        + ATTRIBUTES.format(
            classes="""
    classes_ : ndarray of shape (n_classes,)
        The labels `predict` returns: the source's after `fit`, the target's
        after an `adapt` that replaced the head.""",
            statistics=X_STATISTICS,
        )
        + """
    See Also
    --------
    FineTuneRegressor : The same for regression.
    MAMLClassifier : Meta-learning over many tasks.

    Examples
    --------
    >>> from sktransfer import FineTuneClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=6, random_state=0)
    >>> est = FineTuneClassifier(max_iter=20, random_state=0)
    >>> est = est.fit(X[t > 0], y[t > 0])
    >>> est.adapt(X[t == 0][:20], y[t == 0][:20]).predict(X[t == 0][20:22]).shape
    (2,)
    """
    )

    _criterion = nn.CrossEntropyLoss

    def _y_checks(self):
        return {}

    def _stratify(self, targets):
        return bool(np.bincount(targets).min() >= 2) if len(targets) else False

    def _encode_source(self, y, *, reset, classes=None):
        check_classification_targets(y)
        if reset:
            self.classes_ = np.unique(y) if classes is None else np.unique(classes)
            self._source_classes = self.classes_
        unknown = np.setdiff1d(np.unique(y), self._source_classes)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown.tolist()} that are not among the classes "
                f"{self._source_classes.tolist()} of the first fit; pass all labels "
                "as classes= on the first partial_fit."
            )
        return np.searchsorted(self._source_classes, y), len(self._source_classes)

    def _after_drop_adaptation(self):
        if getattr(self, "_source_classes", None) is not None:
            self.classes_ = self._source_classes

    def _init_from_module(self, n_outputs):
        self._source_classes = None
        self._source_outputs = n_outputs

    def _encode_target(self, y):
        """Target codes, head width, whether the head is fresh, new classes_."""
        check_classification_targets(y)
        labels = np.unique(y)
        source = self._source_classes
        if source is None:  # a pretrained module without fit
            same = len(labels) == self._source_outputs
        else:
            same = np.array_equal(labels, source)
        if self.head == "reset" or (self.head == "auto" and not same):
            return np.searchsorted(labels, y), len(labels), True, labels
        if source is None:
            if not same:
                raise ValueError(
                    f"head='keep' but the target has {len(labels)} classes and "
                    f"the pretrained module {self._source_outputs} outputs; use "
                    "head='auto' for a fresh head."
                )
            return np.searchsorted(labels, y), len(labels), False, labels
        unknown = np.setdiff1d(labels, source)
        if len(unknown):
            raise ValueError(
                f"head='keep' but the target has labels {unknown.tolist()} that "
                f"are not among the source classes {source.tolist()}; use "
                "head='auto' or 'reset' for a fresh head."
            )
        return np.searchsorted(source, y), len(source), False, source

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class FineTuneRegressor(TransferRegressorMixin, RegressorMixin, _BaseFineTune):
    __doc__ = (
        """Transfer regressor: pre-train on source data, fine-tune on a target.

    `fit` trains the whole network on the pooled source data (the three task
    forms are read as one training set); `adapt` copies the pre-trained
    network, keeps the layers chosen by ``freeze`` fixed, gives it a fresh
    output layer when the target's number of outputs differs, and trains the
    rest on the target set with the squared error.
"""
        + PARAMETERS.format(
            module_parameters=MODULE_PARAMETERS,
            standardize=STANDARDIZE,
            device=DEVICE,
            **_SHARED_TEXT,
            pretrained_note="",
            head_auto="the target has as many outputs as the source",
        )
        + ATTRIBUTES.format(
            classes="", statistics=X_STATISTICS + Y_STATISTICS + ADAPT_Y_STATISTICS
        )
        + """
    See Also
    --------
    FineTuneClassifier : The same for classification.
    MAMLRegressor : Meta-learning over many tasks.

    Examples
    --------
    >>> from sktransfer import FineTuneRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=10, random_state=0)
    >>> est = FineTuneRegressor(max_iter=20, random_state=0)
    >>> est = est.fit(X[t > 0], y[t > 0])
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    _criterion = nn.MSELoss

    def _y_checks(self):
        return {"y_numeric": True, "multi_output": True}

    def _stratify(self, targets):
        return False

    def _encode_source(self, y, *, reset):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if reset:
            self._source_ndim = y.ndim
            self._source_outputs = n_outputs
        elif n_outputs != self._source_outputs:
            raise ValueError(
                f"y has {n_outputs} outputs but the model was fitted with "
                f"{self._source_outputs}."
            )
        y = self._standardize_y(y.reshape(len(y), -1))
        return np.asarray(y, dtype=np.float32), n_outputs

    def _after_drop_adaptation(self):
        self._y_ndim = self._source_ndim

    def _init_from_module(self, n_outputs):
        self._source_outputs = n_outputs
        self._source_ndim = self._y_ndim = 1 if n_outputs == 1 else 2
        self.y_mean_ = self.y_scale_ = None

    def _encode_target(self, y):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        fresh = self.head == "reset" or (
            self.head == "auto" and n_outputs != self._source_outputs
        )
        if not fresh and n_outputs != self._source_outputs:
            raise ValueError(
                f"head='keep' but the target has {n_outputs} outputs and the "
                f"source {self._source_outputs}; use head='auto' for a fresh head."
            )
        self._y_ndim = y.ndim
        y = y.reshape(len(y), -1)
        # A fresh head for targets without training statistics (another number
        # of outputs, or a module trained elsewhere) learns them standardised
        # with the target set's own.
        own = (
            fresh
            and self.standardize
            and (self.y_mean_ is None or len(self.y_mean_) != n_outputs)
        )
        self.adapt_y_mean_, self.adapt_y_scale_ = (
            mean_and_scale(y) if own else (None, None)
        )
        y = np.asarray(self._standardize_y(y), dtype=np.float32)
        return y, n_outputs, fresh, None

    def _y_statistics(self):
        if getattr(self, "adapt_y_mean_", None) is not None:
            return self.adapt_y_mean_, self.adapt_y_scale_
        return super()._y_statistics()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
