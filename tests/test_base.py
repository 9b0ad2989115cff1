"""Shared mechanics: devices, seeding under threads."""

import copy
import re

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed
from scipy.special import expit, softmax
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
)
from sktransfer.base import resolve_device
from sktransfer.datasets import make_related_classification_tasks


@pytest.mark.parametrize("cls", [MAMLClassifier, FineTuneClassifier])
def test_fits_in_threads_are_reproducible(cls):
    # torch's default generator is shared by the threads of a process: seeded
    # sections must not interleave (joblib's threading back-end, dask threads).
    X, y, t = make_related_classification_tasks(n_tasks=6, n_samples=40, random_state=0)

    def fit(seed):
        est = cls(hidden_layer_sizes=(64, 64), max_iter=3, random_state=seed)
        return est.fit(X, y, task_ids=t).predict_proba(X)

    sequential = [fit(seed) for seed in range(6)]
    threaded = Parallel(n_jobs=6, backend="threading")(
        delayed(fit)(seed) for seed in range(6)
    )
    for a, b in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    # Neither a torch device nor one of ours: torch refuses "tpu", "meta" is a
    # torch device type the estimators cannot train on.
    for device in ["tpu", "meta"]:
        message = f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            resolve_device(device)


def test_auto_is_the_gpu_when_there_is_one_and_a_missing_gpu_is_refused():
    gpu = torch.cuda.is_available()
    assert resolve_device("auto") == torch.device("cuda" if gpu else "cpu")
    if gpu:
        assert resolve_device("cuda:0") == torch.device("cuda:0")
        return
    message = (
        "device='cuda' was requested but no CUDA GPU is available; use "
        "device='cpu' or device='auto'."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        resolve_device("cuda")


# -- class scores: decision_function, predict_proba and predict agree --------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_decision_function_predict_proba_and_predict_agree(n_classes):
    """As in scikit-learn: the probabilities are the softmax of the scores
    (for two classes, the sigmoid of the one score, that of ``classes_[1]``
    minus that of ``classes_[0]``), rows sum to one, and `predict` is the
    class of the highest score. String labels stay labels."""
    X, y, t = make_related_classification_tasks(
        n_tasks=4, n_samples=30, n_features=3, n_classes=n_classes, random_state=0
    )
    labels = np.array(["ant", "bee", "cat"])[:n_classes][y]
    est = FineTuneClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    est.fit(X, labels, task_ids=t)
    scores = est.decision_function(X)
    proba = est.predict_proba(X)
    assert est.classes_.tolist() == ["ant", "bee", "cat"][:n_classes]
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    if n_classes == 2:
        assert scores.shape == (len(X),)
        np.testing.assert_allclose(proba[:, 1], expit(scores), rtol=1e-10)
        winner = (scores > 0).astype(int)
    else:
        assert scores.shape == (len(X), n_classes)
        np.testing.assert_allclose(proba, softmax(scores, axis=1), rtol=1e-10)
        winner = np.argmax(scores, axis=1)
    # Different probabilities in different rows: a real model, not a constant.
    assert np.ptp(proba[:, 0]) > 1e-3
    np.testing.assert_array_equal(est.predict(X), est.classes_[winner])


# -- early stopping ----------------------------------------------------------------


def _stopping_epoch(losses, patience, tol, relative=False):
    """The documented criterion run by hand: an epoch improves when its held-out
    loss is more than ``tol`` below the best so far (``tol`` times the best
    with ``relative``); training stops after ``patience`` epochs in a row
    without improvement. Returns the epoch it stops at (from 1; None if it
    runs through ``losses``) and the last improving epoch."""
    threshold, best_epoch, misses = np.inf, 0, 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < threshold:
            threshold = loss - (tol * loss if relative else tol)
            best_epoch, misses = epoch, 0
        else:
            misses += 1
            if misses == patience:
                return epoch, best_epoch
    return None, best_epoch


def test_early_stopping_stops_on_the_documented_criterion_and_restores_the_best():
    X, y, _ = make_related_classification_tasks(
        n_tasks=4, n_samples=40, n_features=3, random_state=1
    )
    params = dict(
        hidden_layer_sizes=(16,),
        lr=0.05,
        max_iter=60,
        early_stopping=True,
        n_iter_no_change=3,
        tol=0.02,
        random_state=0,
    )
    est = FineTuneClassifier(**params).fit(X, y)
    losses = est.history_[:, "valid_loss"]
    stop, best = _stopping_epoch(losses, patience=3, tol=0.02)
    assert stop is not None and len(losses) == est.n_iter_ == stop
    # Patience and tolerance are the estimator's, the tolerance absolute:
    # skorch's defaults (patience 5, relative tolerance) run on here.
    assert _stopping_epoch(losses, patience=5, tol=0.02)[0] is None
    assert _stopping_epoch(losses, patience=3, tol=0.02, relative=True)[0] is None
    # The callback is skorch's EarlyStopping, under its name in the engine.
    assert dict(est.net_.callbacks_)["early_stopping"].best_epoch_ == best
    # The weights of the best epoch are restored: the same fit cut at that
    # epoch predicts the same.
    assert best < stop
    cut = FineTuneClassifier(**{**params, "max_iter": best}).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), cut.predict_proba(X))


# -- user modules at inference -----------------------------------------------------


class Affine(nn.Module):
    """A linear map whose weight is the module's own parameter: no nn.Linear."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n_outputs, n_features), 0.1))

    def forward(self, X):
        return X @ self.weight.T


class NormedOutput(nn.Module):
    """Its last parameterised layer is a LayerNorm after the nn.Linear."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.hidden = nn.Linear(n_features, 4)
        self.out = nn.Linear(4, n_outputs)
        self.norm = nn.LayerNorm(n_outputs)

    def forward(self, X):
        return self.norm(self.out(self.hidden(X)))


class Columns(nn.Module):
    """Reads some columns of X through an integer buffer, then a linear layer."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.register_buffer("keep", torch.arange(0, n_features, 2))
        self.out = nn.Linear(len(self.keep), n_outputs)

    def forward(self, X):
        return self.out(X[:, self.keep])


def _regression_tasks():
    X, y, t = make_related_classification_tasks(
        n_tasks=4, n_samples=20, n_features=3, random_state=0
    )
    return X * [1.0, 5.0, 0.2] + 1.0, X[:, 0] - X[:, 2] + 0.1 * y, t


def test_transform_of_a_lone_linear_module_is_the_standardised_input():
    """A module that is one nn.Linear has no body: its output layer's input is
    the standardised X itself."""
    X, y, t = _regression_tasks()
    est = FineTuneRegressor(module=nn.Linear(3, 1), max_iter=2, random_state=0)
    est.fit(X, y)
    np.testing.assert_allclose(
        est.transform(X), (X - est.x_mean_) / est.x_scale_, atol=1e-12
    )


@pytest.mark.parametrize(
    "module, message",
    [
        (
            NormedOutput,
            "transform needs the module's output layer to be an nn.Linear, but its "
            "last parameterised layer 'norm' is LayerNorm.",
        ),
        (
            Affine,
            "transform needs the module's output layer to be an nn.Linear, but its "
            "last parameterised layer '(the module itself)' is Affine.",
        ),
    ],
)
def test_transform_names_an_output_layer_that_is_not_linear(module, message):
    X, y, t = _regression_tasks()
    est = FineTuneRegressor(module=module, max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=re.escape(message)):
        est.transform(X)


class Squeezed(nn.Module):
    """Its output layer is not applied last: a slice follows it."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.hidden = nn.Linear(n_features, 5)
        self.out = nn.Linear(5, 2)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))[:, :1]


def test_transform_names_an_output_layer_that_is_not_applied_last():
    X, y, t = _regression_tasks()
    est = FineTuneRegressor(module=Squeezed, max_iter=2, random_state=0).fit(X, y)
    message = (
        "transform runs the module with its output layer as the identity, which "
        "gives the 5 inputs of that layer only when the layer is applied last (as "
        "in sktransfer.nn.MLP); this module then maps rows to shape (1,)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        est.transform(X)


def test_integer_buffers_of_a_module_stay_integers_at_inference():
    """Inference runs in float64, but a buffer of indices stays an index."""
    X, y, t = _regression_tasks()
    est = FineTuneRegressor(module=Columns, max_iter=2, random_state=0).fit(X, y)
    module = copy.deepcopy(est.module_).double()
    with torch.no_grad():
        expected = module(torch.as_tensor((X - est.x_mean_) / est.x_scale_))
    expected = expected.numpy().ravel() * est.y_scale_ + est.y_mean_
    np.testing.assert_allclose(est.predict(X), expected, rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_inference_and_transform_run_where_the_module_is():
    """A model on the GPU predicts and transforms there: the rows go to the
    module's device, and so does the identity output layer of transform."""
    X, y, _ = _regression_tasks()
    est = FineTuneRegressor(
        hidden_layer_sizes=(8,), max_iter=2, random_state=0, device="cuda"
    ).fit(X, y)
    assert next(est.module_.parameters()).device.type == "cuda"
    module = copy.deepcopy(est.module_).cpu().double()
    rows = torch.as_tensor((X - est.x_mean_) / est.x_scale_)
    with torch.no_grad():
        expected = module(rows).numpy().ravel() * est.y_scale_ + est.y_mean_
        body = module[:-1](rows).numpy()
    np.testing.assert_allclose(est.predict(X), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), body, rtol=1e-9, atol=1e-12)


class Normed(nn.Sequential):
    """An MLP with batch normalisation, which mixes the rows of a task."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__(
            nn.Linear(n_features, 4), nn.BatchNorm1d(4), nn.Linear(4, n_outputs)
        )


class FirstColumn(nn.Module):
    """A module without parameters: it returns the first column."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()

    def forward(self, X):
        return X[:, :1]


def test_modules_refused_before_training_are_named():
    X, y, _ = _regression_tasks()
    message = (
        "The module's layer '1' is BatchNorm1d: batch normalisation is not "
        "supported, because its batch statistics mix the rows of a task and its "
        "running statistics would change at every inner step. Use nn.LayerNorm "
        "instead."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        FineTuneRegressor(module=Normed, max_iter=2).fit(X, y)
    # A module without parameters is probed on the CPU, then refused.
    with pytest.raises(
        ValueError, match="^The module has no parameters to fine-tune[.]$"
    ):
        FineTuneRegressor(module=FirstColumn, max_iter=2).fit(X, y)


class NarrowInput(nn.Module):
    """Takes five features whatever the data has."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.out = nn.Linear(5, n_outputs)

    def forward(self, X):
        return self.out(X)


class TwoOutputs(nn.Module):
    """Ignores ``n_outputs``: always two outputs."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.out = nn.Linear(n_features, 2)

    def forward(self, X):
        return self.out(X)


@pytest.mark.parametrize(
    "module, module_params, error, message",
    [
        (
            NarrowInput,
            None,
            ValueError,
            "The module cannot take (n_samples, 3) inputs: mat1 and mat2 shapes "
            "cannot be multiplied (2x3 and 5x1)",
        ),
        (
            TwoOutputs,
            None,
            ValueError,
            "The module maps (2, 3) inputs to (2, 2); expected (2, 1) "
            "(n_samples, n_outputs).",
        ),
        (
            nn.Linear(3, 1),
            {"bias": False},
            ValueError,
            "module_params only applies when module is a class; module is an instance.",
        ),
        (
            dict,
            None,
            TypeError,
            "module must be an nn.Module class or instance, got <class 'dict'>.",
        ),
    ],
    ids=["input width", "output width", "params of an instance", "not a module"],
)
@pytest.mark.parametrize("cls", [FineTuneRegressor, MAMLRegressor])
def test_a_module_that_cannot_serve_is_refused_with_the_reason(
    cls, module, module_params, error, message
):
    X, y, t = _regression_tasks()
    est = cls(module=module, module_params=module_params, max_iter=2)
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        est.fit(X, y, task_ids=t)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize("cls", [FineTuneRegressor, MAMLRegressor])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_missing_value_in_flat_tasks_is_refused_naming_its_task(cls, value):
    X, y, t = _regression_tasks()
    task_ids = np.array(["north", "south", "east", "west"])[t]
    X[np.flatnonzero(task_ids == "east")[2], 1] = value
    message = (
        "task 'east' contains NaN or infinity in X or y; impute or drop those "
        "rows first."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls(max_iter=2).fit(X, y, task_ids=task_ids)


@pytest.mark.parametrize("cls", [FineTuneRegressor, MAMLRegressor])
def test_partial_fit_keeps_the_feature_names_of_fit(cls):
    """As in scikit-learn: a later call with or without column names warns
    and leaves the names of the first fit as they were."""
    pd = pytest.importorskip("pandas")
    X, y, t = _regression_tasks()
    frame = pd.DataFrame(X, columns=["dose", "age", "weight"])
    # Flat rows, and (for the meta-learner) the task_ids form.
    tasks = {} if cls is FineTuneRegressor else {"task_ids": t}
    est = cls(max_iter=2).fit(frame, y, **tasks)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.partial_fit(X, y, **tasks)
    np.testing.assert_array_equal(est.feature_names_in_, ["dose", "age", "weight"])
    est = cls(max_iter=2).fit(X, y, **tasks)
    with pytest.warns(UserWarning, match="X has feature names, but"):
        est.partial_fit(frame, y, **tasks)
    assert not hasattr(est, "feature_names_in_")
