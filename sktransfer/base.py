"""Bases shared by all sktransfer estimators: device, seeding, modules, inference."""

import copy
import inspect
import threading
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from torch import nn

from sktransfer.nn import MLP
from sktransfer.tasks._taskset import (
    TaskSet,
    beyond_float32,
    is_task_sequence,
    missing_targets,
)
from sktransfer.utils._categorical import (
    categorical_mask,
    encode_categories,
    expand_categories,
    n_model_inputs,
)
from sktransfer.utils._divergence import check_finite_outputs
from sktransfer.utils._state import (  # noqa: F401 - the estimators' import
    private_module,
    restore_on_error,
    working_copy,
)


def resolve_device(device):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` is the first GPU when one is present, else the CPU. Asking for a
    GPU that is not there is a ``ValueError``.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is available; "
                "use device='cpu' or device='auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} GPU(s) found."
            )
    elif resolved.type != "cpu":
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        )
    return resolved


# torch has one process-wide default generator: seeded sections of concurrent
# threads (joblib's threading back-end, dask with threads) must not interleave.
_GLOBAL_RNG_LOCK = threading.RLock()


@contextmanager
def torch_seed(seed, device):
    """Seed torch inside a forked RNG so the global random state is untouched.

    Holds a process-wide lock, so that fits running in threads of one process
    stay reproducible: torch's default generator is shared by all threads.
    """
    devices = [device] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


def uses_global_rng(module):
    """Whether the module draws random numbers itself (dropout layers).

    Layers are looked for among the submodules and in the ``template`` that a
    stacked network (`sktransfer.meta._heads.StackedNetwork`) runs its
    forward pass with but does not register as a submodule.
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.dropout._DropoutNd):
            return True
        template = layer.__dict__.get("template")
        if isinstance(template, nn.Module) and uses_global_rng(template):
            return True
    return False


def check_float32_range(values, name):
    """Refuse values beyond the float32 range, which the networks cannot hold."""
    row = beyond_float32(np.reshape(values, (len(values), -1)))
    if row is not None:
        raise ValueError(
            f"{name} has values beyond the float32 range (|value| > "
            f"{np.finfo(np.float32).max:.3g}) in row {row}, which the networks "
            "cannot represent; rescale it (e.g. with StandardScaler) first."
        )


def check_targets(y):
    """Refuse a missing target (None or NaN in an object ``y``) and huge ones."""
    y = np.reshape(y, (len(y), -1))
    if y.dtype.kind in "fcO":
        missing = missing_targets(y)
        if missing.any():
            raise ValueError(
                f"y has a missing or non-finite target (None, NaN or infinity) in "
                f"row {int(np.argmax(missing))}; impute or drop those rows first."
            )
    check_float32_range(y, "y")


def check_numeric_targets(y):
    """Refuse a regressor's ``y`` of strings, naming its dtype.

    scikit-learn's ``validate_data(y_numeric=True)`` converts an object ``y``
    to float64 but leaves a string one as it is, to fail later inside
    training. Strings, in a string array or an object one, are refused here
    before anything is fitted; other values go on to ``validate_data``.
    """
    values = np.asarray(y)
    if values.dtype.kind not in ("O", "S", "U"):
        return
    strings = [v for v in values.ravel().tolist() if isinstance(v, (str, bytes))]
    if strings:
        raise ValueError(
            f"y must be numeric for a regressor, got dtype {values.dtype} with "
            f"strings such as {strings[0]!r}; convert y to numbers (for class "
            "labels, use a classifier)."
        )


def validate_xy(estimator, X, y, **kwargs):
    """``validate_data(estimator, X, y, **kwargs)`` with the estimator's checks
    of ``y`` (its ``_y_checks()``); a regressor's (``y_numeric``) ``y`` of
    strings is refused first (`check_numeric_targets`)."""
    checks = estimator._y_checks()
    if checks.get("y_numeric"):
        check_numeric_targets(y)
    return validate_data(estimator, X, y, **kwargs, **checks)


def check_no_batch_norm(module):
    """Refuse batch normalisation, whose statistics mix the rows of a task."""
    for name, layer in module.named_modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            raise ValueError(
                f"The module's layer {name!r} is {type(layer).__name__}: batch "
                "normalisation is not supported, because its batch statistics mix "
                "the rows of a task and its running statistics would change at "
                "every inner step. Use nn.LayerNorm instead."
            )


def module_output_shape(module, n_features):
    """Shape of ``module``'s output for two rows of ``n_features`` zeros.

    The one probe of a user's module: a module that fails on such input gets
    a ValueError saying so, before any training.
    """
    parameter = next(module.parameters(), None)
    device = "cpu" if parameter is None else parameter.device
    with torch.no_grad():
        try:
            out = module(torch.zeros(2, n_features, device=device))
        except Exception as exc:  # noqa: BLE001 - the user's module failed
            raise ValueError(
                f"The module cannot take (n_samples, {n_features}) inputs: {exc}"
            ) from exc
    return tuple(out.shape)


def early_stopping_callback(estimator):
    """skorch's ``EarlyStopping`` on the held-out loss, named as a callback.

    The one set-up of every family: patience ``n_iter_no_change`` epochs,
    an improvement is a drop of more than ``tol``, and the best weights are
    restored at the end.
    """
    return (
        "early_stopping",
        EarlyStopping(
            monitor="valid_loss",
            patience=estimator.n_iter_no_change,
            threshold=estimator.tol,
            threshold_mode="abs",
            load_best=True,
        ),
    )


def mean_and_scale(a):
    """Column means and standard deviations of 2-D ``a``; scale 1 where constant."""
    scaler = StandardScaler().fit(np.asarray(a, dtype=np.float64))
    return scaler.mean_, scaler.scale_


def identity_output_layer(module, params):
    """Parameters that make the module's output layer the identity.

    The output layer is the module's last parameterised layer (the head),
    and must be an ``nn.Linear``. Returns the replacements of its weight (an
    identity matrix, ``in_features`` square) and bias (zeros) in the dtype
    and on the device of ``params``, the module's parameters by name: with
    them, `torch.func.functional_call` gives the layer's input, the body's
    output, when the layer is applied last. No module is changed.
    """
    owners = [
        (name, layer)
        for name, layer in module.named_modules()
        if any(True for _ in layer.parameters(recurse=False))
    ]
    if not owners:
        raise ValueError("The module has no parameters: it has no output layer.")
    name, layer = owners[-1]
    if not isinstance(layer, nn.Linear):
        raise ValueError(
            "transform needs the module's output layer to be an nn.Linear, but "
            f"its last parameterised layer {name or '(the module itself)'!r} is "
            f"{type(layer).__name__}."
        )
    prefix = f"{name}." if name else ""
    weight = params[prefix + "weight"]
    out = {
        prefix + "weight": torch.eye(
            weight.shape[1], dtype=weight.dtype, device=weight.device
        )
    }
    if layer.bias is not None:
        out[prefix + "bias"] = weight.new_zeros(weight.shape[1])
    return out


class BaseTransferEstimator(BaseEstimator):
    """Shared mechanics of every sktransfer estimator.

    Subclasses provide ``_parameter_constraints`` and ``fit``. This base builds
    the torch module, resolves the device, seeds torch from ``random_state``,
    validates inference inputs and runs batched, gradient-free inference.

    Standardisation: an estimator with a ``standardize`` parameter calls
    `_fit_standardization` once on its training rows (in `fit` and the first
    `partial_fit`), then passes every ``X`` and, for regressors, every target
    through `_standardize_X` and `_standardize_y` before the module sees them
    (training, `adapt`, few-shot episodes) and its predicted targets through
    `_unstandardize_y`. `_raw_predict` standardises ``X`` itself. Estimators
    without the statistics (``x_mean_`` absent or None) see data as given.
    """

    # -- standardisation of X and y ------------------------------------------
    def _fit_standardization(self, X, y=None):
        """Store the training statistics, or None where there are none.

        Sets ``x_mean_`` and ``x_scale_`` (the mean and standard deviation of
        each column of ``X`` after `_expand_categories`) and, when ``y`` is
        given, ``y_mean_`` and ``y_scale_`` (of each target column; a 1-D
        ``y`` is one column), as float64 arrays; a constant column gets scale 1, as in
        `~sklearn.preprocessing.StandardScaler`. All are None when
        ``standardize`` is False or ``X`` is None (a module trained elsewhere,
        whose units are unknown).
        """
        fit = X is not None and self.standardize
        if fit:
            X = self._expand_categories(X)
        self.x_mean_, self.x_scale_ = mean_and_scale(X) if fit else (None, None)
        if y is not None:
            y = np.asarray(y).reshape(len(y), -1)
            self.y_mean_, self.y_scale_ = mean_and_scale(y) if fit else (None, None)

    def _expand_categories(self, X):
        """Validated rows with each categorical column one-hot (see
        `sktransfer.utils._categorical`); ``X`` itself without such columns."""
        return expand_categories(self, X)

    def _n_module_inputs(self):
        """The width of the module's input: `_expand_categories`'s columns."""
        return n_model_inputs(self)

    def _standardize_X(self, X):
        """``X`` in the module's units: categorical columns one-hot, then
        ``(X - x_mean_) / x_scale_``, float64.

        ``X`` itself when there are neither categorical columns nor
        statistics.
        """
        X = self._expand_categories(X)
        mean = getattr(self, "x_mean_", None)
        if mean is None:
            return X
        return (X - mean) / self.x_scale_

    def _y_statistics(self):
        """``(mean, scale)`` of the targets the current model predicts, or None.

        The training targets' ``y_mean_`` and ``y_scale_``; an estimator whose
        adapted model predicts other targets overrides it.
        """
        mean = getattr(self, "y_mean_", None)
        return None if mean is None else (mean, self.y_scale_)

    def _standardize_y(self, y):
        """2-D targets ``(n_samples, n_outputs)`` in the module's units, float64.

        ``y`` itself when there are no statistics.
        """
        stats = self._y_statistics()
        if stats is None:
            return y
        return (y - stats[0]) / stats[1]

    def _unstandardize_y(self, y):
        """2-D module outputs back in the user's units (``y`` when unscaled)."""
        stats = self._y_statistics()
        if stats is None:
            return y
        return y * stats[1] + stats[0]

    def _draw_seed(self, rng):
        return int(rng.randint(np.iinfo(np.int32).max))

    def _make_rng(self):
        return check_random_state(self.random_state)

    def _build_module(self, n_features, n_outputs):
        """Instantiate or copy ``module`` and check it maps features to outputs."""
        module = self.module
        params = dict(self.module_params or {})
        if module is None:
            params.setdefault("hidden_layer_sizes", tuple(self.hidden_layer_sizes))
            module = MLP(n_features=n_features, n_outputs=n_outputs, **params)
        elif isinstance(module, nn.Module):
            if params:
                raise ValueError(
                    "module_params only applies when module is a class; module is "
                    "an instance."
                )
            # Built on the CPU like a class would be; fit moves it to `device`.
            module = copy.deepcopy(module).cpu()
        elif inspect.isclass(module) and issubclass(module, nn.Module):
            module = module(n_features=n_features, n_outputs=n_outputs, **params)
        else:
            raise TypeError(
                f"module must be an nn.Module class or instance, got {module!r}."
            )
        # Trained in float32: probed as it will run (a float64 module too).
        module = module.float()
        check_no_batch_norm(module)
        shape = module_output_shape(module, n_features)
        if shape != (2, n_outputs):
            raise ValueError(
                f"The module maps (2, {n_features}) inputs to {shape}; "
                f"expected (2, {n_outputs}) (n_samples, n_outputs)."
            )
        return module

    def _inference_params(self):
        """The parameters inference uses: adapted ones if any, else the module's."""
        return None

    def _raw_predict(self, X, *, body=False):
        """Module outputs for validated ``X`` as a float64 numpy array.

        ``X`` is in the user's units and standardised here; the outputs are
        in the module's units (regressors pass them through
        `_unstandardize_y`). Inference runs in float64 (training runs in
        float32): float32 matrix products can round differently with the
        batch size, and predictions must not depend on which other rows are
        in the batch. ``body=True`` gives the outputs of the body instead:
        the module runs with its output layer as the identity (see
        `identity_output_layer`), so what comes out is that layer's input.
        """
        X = self._standardize_X(X)
        module = self.module_
        device = next(module.parameters()).device
        params = self._inference_params()
        if params is None:
            params = dict(module.named_parameters())
        state = {
            name: value.detach().double() if value.is_floating_point() else value
            for name, value in {**dict(module.named_buffers()), **params}.items()
        }
        width = None
        if body:
            identity = identity_output_layer(module, state)
            state.update(identity)
            width = next(iter(identity.values())).shape[0]
        batch_size = self.batch_size or len(X) or 1
        outputs = []
        # A module of this call's own, in eval mode: threads never meet.
        with private_module(module) as private, torch.no_grad():
            for start in range(0, len(X), batch_size):
                chunk = torch.as_tensor(
                    X[start : start + batch_size],
                    dtype=torch.float64,
                    device=device,
                )
                out = torch.func.functional_call(private, state, (chunk,))
                outputs.append(out.cpu().numpy())
        if not outputs:
            return np.empty((0, self._n_outputs() if width is None else width))
        outputs = np.concatenate(outputs)
        if width is not None and outputs.shape[1:] != (width,):
            raise ValueError(
                "transform runs the module with its output layer as the identity, "
                f"which gives the {width} inputs of that layer only when the layer "
                "is applied last (as in sktransfer.nn.MLP); this module then maps "
                f"rows to shape {outputs.shape[1:]}."
            )
        return check_finite_outputs(outputs)

    def _validate_tasks(self, X, y, task_ids, reset):
        """Validate any of the three task forms into a `TaskSet`.

        Returns the tasks and whether they are the plain single-task form
        ``fit(X, y)``. Errors name the offending task; ``n_features_in_`` and
        ``feature_names_in_`` are set (``reset``) or checked as in sklearn.
        """
        if reset:  # set again by encode_categories where there are categories
            self.is_categorical_ = self.categories_ = None
        empty = isinstance(X, (list, tuple)) and len(X) == 0 and y is None
        if is_task_sequence(X) or empty:
            if y is not None or task_ids is not None:
                raise ValueError(
                    "Give either tasks as (X, y) pairs, or flat X and y (with "
                    "task_ids), not both."
                )
            if empty:
                raise ValueError("The task list is empty: give at least one task.")
            tasks = TaskSet(self._encode_task_frames(X, reset))
            X_flat = tasks.X
            if tasks.feature_names is not None:
                import pandas as pd  # the tasks were frames, so pandas is there

                X_flat = pd.DataFrame(tasks.X, columns=tasks.feature_names)
            _, tasks.y = validate_xy(self, X_flat, tasks.y, reset=reset)
            return tasks, False
        X = encode_categories(self, X, reset=reset)
        if task_ids is None:
            X, y = validate_xy(self, X, y, reset=reset, dtype=np.float64)
            return TaskSet.from_arrays(X, y, np.zeros(len(y), dtype=np.int64)), True
        # NaN and infinity are reported per task by TaskSet.
        X, y = validate_xy(
            self, X, y, reset=reset, dtype=np.float64, ensure_all_finite=False
        )
        return TaskSet.from_arrays(X, y, task_ids), False

    def _encode_task_frames(self, tasks, reset):
        """The ``(X_i, y_i)`` pairs (or the `TaskSet`) with the categorical
        columns of their ``X_i`` encoded as one table (`encode_categories`),
        so that the categories come from all tasks. Tasks without categorical
        columns, or not all 2-D with the same columns, are returned as they
        are (`TaskSet` names the problem)."""
        if isinstance(tasks, TaskSet):
            table = tasks.X
            if tasks.feature_names is not None:
                import pandas as pd  # the tasks were frames, so pandas is there

                table = pd.DataFrame(table, columns=tasks.feature_names)
            encoded = encode_categories(self, table, reset=reset)
            if encoded is table:
                return tasks
            return TaskSet.from_arrays(encoded, tasks.y, tasks.task_ids)
        if not all(isinstance(t, (list, tuple)) and len(t) == 2 for t in tasks):
            return tasks
        Xs = [X_i for X_i, _ in tasks]
        if all(hasattr(X_i, "iloc") for X_i in Xs):
            if any(list(X_i.columns) != list(Xs[0].columns) for X_i in Xs):
                return tasks
            import pandas as pd  # the tasks are frames, so pandas is there

            table = pd.concat(Xs, ignore_index=True)
        else:
            if {np.ndim(X_i) for X_i in Xs} != {2} or len(
                {np.shape(X_i)[1] for X_i in Xs}
            ) != 1:
                return tasks
            categorical = (
                categorical_mask(self.categorical_features, Xs[0])
                if reset
                else getattr(self, "is_categorical_", None)
            )
            if categorical is None:
                return tasks
            table = np.concatenate([np.asarray(X_i, dtype=object) for X_i in Xs])
        encoded = encode_categories(self, table, reset=reset)
        if encoded is table:
            return tasks
        bounds = np.cumsum([0] + [len(X_i) for X_i in Xs])
        return [
            (encoded[a:b] if not hasattr(encoded, "iloc") else encoded.iloc[a:b], y_i)
            for a, b, (_, y_i) in zip(bounds[:-1], bounds[1:], tasks, strict=True)
        ]

    def _validate_inference_X(self, X):
        check_is_fitted(self)
        X = encode_categories(self, X, reset=False)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        check_float32_range(X, "X")
        return X

    def _validate_support(self, X, y):
        """Validate a support set ``(X, y)`` for `adapt`, as `fit` validates a task.

        Beyond `validate_data`: a missing target (None or NaN in an object
        ``y``) and values beyond the float32 range are refused.
        """
        X = encode_categories(self, X, reset=False)
        X, y = validate_xy(self, X, y, reset=False, dtype=np.float64)
        check_float32_range(X, "X")
        check_targets(y)
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _body_available(estimator):
    return estimator._has_body()


class BodyTransformerMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """`transform`: the network's body as a feature map for other estimators.

    An estimator provides ``_body_outputs(X)``, the body's float64 outputs
    for validated rows in the user's units (by default the module run with
    its output layer as the identity, see `BaseTransferEstimator._raw_predict`),
    and may override ``_has_body``, whether its parameters give it a body at
    all; without one, `transform`, `fit_transform` and
    `get_feature_names_out` are absent, as sklearn's ``available_if`` does.
    The feature names are the class name in lower case and a number, as for
    sklearn's decompositions.
    """

    def _has_body(self):
        return True

    def _body_outputs(self, X):
        return self._raw_predict(X, body=True)

    @property
    def _n_features_out(self):
        # NotFittedError is an AttributeError: hasattr is False before fit.
        check_is_fitted(self)
        return self._body_outputs(np.zeros((1, self.n_features_in_))).shape[1]

    def transform(self, X):
        """The outputs of the network's body: features for other estimators.

        The body is the network without its output layer: for the MAML
        family and the fine-tuners, the module's layers before its last
        parameterised layer, which must be an ``nn.Linear`` applied last (as
        in `sktransfer.nn.MLP`); for `MetaRidgeRegressor`,
        `MetaRidgeClassifier` and `ProtoNetClassifier`, the learned network
        ``g(x)`` (the learned features of the ridge head, without the raw
        features and the constant it also sees; the embedding where the
        prototypes lie); for `DANNClassifier` and `DANNRegressor`, the
        feature extractor that the label and domain heads share. ``X`` is
        standardised as in `predict`. Before any
        `adapt` the meta-learned or pre-trained body is used; after `adapt`,
        the adapted body where adaptation changes it (MAML with
        ``adapt_layers="all"``, a fine-tuner whose body is not frozen). Put
        the fitted estimator in a `~sklearn.pipeline.Pipeline` through
        `~sklearn.frozen.FrozenEstimator`, so that fitting the pipeline does
        not fit the network again.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out)
            The body's outputs, float64, named by `get_feature_names_out`.
        """
        return self._body_outputs(self._validate_inference_X(X))

    def fit_transform(self, X, y=None, **fit_params):
        """Fit on tasks, then transform their rows.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The tasks, in any of the forms `fit` accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), \
                default=None
            Targets of the flat forms.
        **fit_params : dict
            Passed to `fit`, for example ``task_ids``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out)
            The body's outputs for the training rows; for tasks given as
            pairs or a `TaskSet`, for their rows task by task.
        """
        self.fit(X, y, **fit_params)
        if is_task_sequence(X):
            return self._body_outputs(TaskSet(X).X)
        return self.transform(X)

    get_feature_names_out = available_if(_body_available)(
        ClassNamePrefixFeaturesOutMixin.get_feature_names_out
    )


# sklearn's set_output wraps `transform` and `fit_transform` when the class is
# made; made conditional afterwards, the wrapped methods keep both behaviours.
BodyTransformerMixin.transform = available_if(_body_available)(
    BodyTransformerMixin.transform
)
BodyTransformerMixin.fit_transform = available_if(_body_available)(
    BodyTransformerMixin.fit_transform
)


class TransferClassifierMixin:
    """`predict`, `predict_proba` and `decision_function` from class scores.

    Subclasses may override ``_class_scores`` (validated raw scores, one
    column per entry of ``classes_``). Every method reads one consistent
    state of the estimator (a `working_copy`), so that an `adapt` in another
    thread, which changes the adaptation and ``classes_``, is seen whole or
    not at all.
    """

    def _class_scores(self, X):
        return self._raw_predict(self._validate_inference_X(X))

    def decision_function(self, X):
        """Class scores (logits) of the current model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the score of ``classes_[1]`` minus that of
            ``classes_[0]``.
        """
        raw = working_copy(self)._class_scores(X)
        if raw.shape[1] == 2:
            return raw[:, 1] - raw[:, 0]
        return raw

    def predict_proba(self, X):
        """Class probabilities of the current model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        raw = working_copy(self)._class_scores(X)
        raw -= raw.max(axis=1, keepdims=True)
        proba = np.exp(raw)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predict class labels with the current model.

        The current model is the adapted one after `adapt`, else the
        meta-learned or pre-trained one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        # One consistent state: a concurrent adapt changes classes_ too.
        est = working_copy(self)
        scores = est._class_scores(X)
        return est.classes_[np.argmax(scores, axis=1)]


class TransferRegressorMixin:
    """`predict` of the regressors: 1-D for a 1-D training target."""

    def predict(self, X):
        """Predict targets with the current model.

        The current model is the adapted one after `adapt`, else the
        meta-learned or pre-trained one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted targets.
        """
        # One consistent state: a concurrent adapt changes the statistics too.
        est = working_copy(self)
        raw = est._raw_predict(est._validate_inference_X(X))
        raw = est._unstandardize_y(raw)
        return raw.ravel() if est._y_ndim == 1 else raw
