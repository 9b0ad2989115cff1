"""Bases shared by all sktransfer estimators: device, seeding, modules, inference."""

import copy
import inspect
import threading
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from sktransfer.nn import MLP
from sktransfer.tasks._taskset import TaskSet, is_task_sequence


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
    """Whether the module draws random numbers itself (dropout layers)."""
    return any(
        isinstance(layer, nn.modules.dropout._DropoutNd) for layer in module.modules()
    )


@contextmanager
def restore_on_error(estimator):
    """Leave the estimator as it was when a call fails."""
    state = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(state)
        raise


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


def mean_and_scale(a):
    """Column means and standard deviations of 2-D ``a``; scale 1 where constant."""
    scaler = StandardScaler().fit(np.asarray(a, dtype=np.float64))
    return scaler.mean_, scaler.scale_


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
        each column of ``X``) and, when ``y`` is given, ``y_mean_`` and
        ``y_scale_`` (of each target column; a 1-D ``y`` is one column), as
        float64 arrays; a constant column gets scale 1, as in
        `~sklearn.preprocessing.StandardScaler`. All are None when
        ``standardize`` is False or ``X`` is None (a module trained elsewhere,
        whose units are unknown).
        """
        fit = X is not None and self.standardize
        self.x_mean_, self.x_scale_ = mean_and_scale(X) if fit else (None, None)
        if y is not None:
            y = np.asarray(y).reshape(len(y), -1)
            self.y_mean_, self.y_scale_ = mean_and_scale(y) if fit else (None, None)

    def _standardize_X(self, X):
        """``X`` in the module's units: ``(X - x_mean_) / x_scale_``, float64.

        ``X`` itself when there are no statistics.
        """
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
                "module must be an nn.Module class or instance, got "
                f"{type(module).__name__}."
            )
        check_no_batch_norm(module)
        with torch.no_grad():
            try:
                out = module(torch.zeros(2, n_features))
            except Exception as exc:  # noqa: BLE001 - the user's module failed
                raise ValueError(
                    f"The module cannot take (n_samples, {n_features}) inputs: {exc}"
                ) from exc
        if tuple(out.shape) != (2, n_outputs):
            raise ValueError(
                f"The module maps (2, {n_features}) inputs to {tuple(out.shape)}; "
                f"expected (2, {n_outputs}) (n_samples, n_outputs)."
            )
        return module.float()

    def _inference_params(self):
        """The parameters inference uses: adapted ones if any, else the module's."""
        return None

    def _raw_predict(self, X):
        """Module outputs for validated ``X`` as a float64 numpy array.

        ``X`` is in the user's units and standardised here; the outputs are
        in the module's units (regressors pass them through
        `_unstandardize_y`). Inference runs in float64 (training runs in
        float32): float32 matrix products can round differently with the
        batch size, and predictions must not depend on which other rows are
        in the batch.
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
        batch_size = self.batch_size or len(X) or 1
        outputs = []
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(X), batch_size):
                    chunk = torch.as_tensor(
                        X[start : start + batch_size],
                        dtype=torch.float64,
                        device=device,
                    )
                    out = torch.func.functional_call(module, state, (chunk,))
                    outputs.append(out.cpu().numpy())
        finally:
            module.train(was_training)
        if not outputs:
            return np.empty((0, self._n_outputs()))
        return np.concatenate(outputs)

    def _validate_tasks(self, X, y, task_ids, reset):
        """Validate any of the three task forms into a `TaskSet`.

        Returns the tasks and whether they are the plain single-task form
        ``fit(X, y)``. Errors name the offending task; ``n_features_in_`` and
        ``feature_names_in_`` are set (``reset``) or checked as in sklearn.
        """
        empty = isinstance(X, (list, tuple)) and len(X) == 0 and y is None
        if is_task_sequence(X) or empty:
            if y is not None or task_ids is not None:
                raise ValueError(
                    "Give either tasks as (X, y) pairs, or flat X and y (with "
                    "task_ids), not both."
                )
            if empty:
                raise ValueError("The task list is empty: give at least one task.")
            tasks = TaskSet(X)
            X_flat = tasks.X
            if tasks.feature_names is not None:
                import pandas as pd  # the tasks were frames, so pandas is there

                X_flat = pd.DataFrame(tasks.X, columns=tasks.feature_names)
            _, tasks.y = validate_data(
                self, X_flat, tasks.y, reset=reset, **self._y_checks()
            )
            return tasks, False
        if task_ids is None:
            X, y = validate_data(
                self, X, y, reset=reset, dtype=np.float64, **self._y_checks()
            )
            return TaskSet.from_arrays(X, y, np.zeros(len(y), dtype=np.int64)), True
        # NaN and infinity are reported per task by TaskSet.
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=np.float64,
            ensure_all_finite=False,
            **self._y_checks(),
        )
        return TaskSet.from_arrays(X, y, task_ids), False

    def _validate_inference_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class TransferClassifierMixin:
    """`predict`, `predict_proba` and `decision_function` from class scores.

    Subclasses may override ``_class_scores`` (validated raw scores, one
    column per entry of ``classes_``).
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
        raw = self._class_scores(X)
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
        raw = self._class_scores(X)
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
        scores = self._class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]


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
        raw = self._raw_predict(self._validate_inference_X(X))
        raw = self._unstandardize_y(raw)
        return raw.ravel() if self._y_ndim == 1 else raw
