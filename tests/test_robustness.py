"""Robustness every family shares: threads, atomic calls, interrupts.

- Any number of threads may predict and adapt on one fitted estimator: every
  result equals a serial call's, and the model stays float32 and trainable.
- `fit`, `partial_fit` and `adapt` either complete or leave the estimator
  bit-identical to before (weights, optimiser state, adapted state, history,
  every attribute).
- Ctrl-C (SIGINT) at any point of `fit`, `partial_fit` and `adapt` raises
  ``KeyboardInterrupt``, with the previous state intact; a callback that
  raises ``KeyboardInterrupt`` (skorch's way to stop training) ends training
  there, with ``n_iter_``, ``history_`` and the weights in agreement.

``SKTRANSFER_ROBUSTNESS_SECONDS`` and ``SKTRANSFER_ROBUSTNESS_TRIALS`` set the
thread test's duration per family and the number of random failures per
family and call (small by default, to keep the suite fast).
"""

import copy
import functools
import inspect
import os
import pickle
import signal
import sys
import threading
import time

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from tests._marks import slow_except

SECONDS = float(os.environ.get("SKTRANSFER_ROBUSTNESS_SECONDS", "1.0"))
TRIALS = int(os.environ.get("SKTRANSFER_ROBUSTNESS_TRIALS", "3"))
N_THREADS = 32

CLOSED = dict(hidden_layer_sizes=(8,), n_components=3, k_shot=3, random_state=0)
FAMILIES = {
    "MAMLClassifier": lambda **kw: MAMLClassifier(
        hidden_layer_sizes=(8,), meta_batch_size=4, k_shot=3, random_state=0, **kw
    ),
    "MAMLRegressor": lambda **kw: MAMLRegressor(
        hidden_layer_sizes=(8,), meta_batch_size=4, k_shot=3, random_state=0, **kw
    ),
    "FineTuneClassifier": lambda **kw: FineTuneClassifier(
        hidden_layer_sizes=(8,), adapt_max_iter=2, batch_size=16, random_state=0, **kw
    ),
    "FineTuneRegressor": lambda **kw: FineTuneRegressor(
        hidden_layer_sizes=(8,), adapt_max_iter=2, batch_size=16, random_state=0, **kw
    ),
    "MetaRidgeClassifier": lambda **kw: MetaRidgeClassifier(**CLOSED, **kw),
    "MetaRidgeRegressor": lambda **kw: MetaRidgeRegressor(**CLOSED, **kw),
    "ProtoNetClassifier": lambda **kw: ProtoNetClassifier(n_way=3, **CLOSED, **kw),
}
# Iterations per fit: meta-iterations, or epochs for the fine-tuners.
MAX_ITER = {"FineTuneClassifier": 3, "FineTuneRegressor": 3}


def _is_classifier(name):
    return name.endswith("Classifier")


def _data(name):
    """Training tasks and three support sets whose adaptations differ.

    For the classifiers the second support set has other labels (a fresh head
    for the fine-tuner, new classes for the episodic model), for the
    fine-tuning regressor two targets: a prediction that mixes two
    adaptations shows as a wrong label or shape.
    """
    if _is_classifier(name):
        X, y, t = make_related_classification_tasks(
            n_tasks=8, n_samples=24, n_features=4, n_classes=3, random_state=0
        )
        X_new, y_new, t_new = make_related_classification_tasks(
            n_tasks=3, n_samples=24, n_features=4, n_classes=3, random_state=1
        )
    else:
        X, y, t = make_related_regression_tasks(
            n_tasks=8, n_samples=20, n_features=4, random_state=0
        )
        X_new, y_new, t_new = make_related_regression_tasks(
            n_tasks=3, n_samples=20, n_features=4, random_state=1
        )
    supports = [(X_new[t_new == i][:12], y_new[t_new == i][:12]) for i in range(3)]
    if name in ("FineTuneClassifier", "ProtoNetClassifier"):
        supports[1] = (supports[1][0], supports[1][1] + 10)
    if name == "MAMLClassifier" or name == "MetaRidgeClassifier":
        supports[1] = (supports[1][0], np.where(supports[1][1] == 2, 0, 1))
    if name == "FineTuneRegressor":
        supports[1] = (supports[1][0], np.c_[supports[1][1], -supports[1][1]])
    return X, y, t, supports, X_new


def _fitted(name, **params):
    X, y, t, supports, X_new = _data(name)
    est = FAMILIES[name](max_iter=MAX_ITER.get(name, 6), **params)
    return est.fit(X, y, task_ids=t), (X, y, t), supports, X_new


def _engines(est):
    """The skorch engines of an estimator (pre-training and adaptation)."""
    return [
        engine
        for engine in (est.__dict__.get("net_"), est.__dict__.get("adapt_net_"))
        if engine is not None
    ]


# -- threads ------------------------------------------------------------------


def _methods(est):
    return [
        est.predict,
        *([est.predict_proba] if hasattr(est, "predict_proba") else []),
    ]


def _outputs(est, X):
    return [method(X) for method in _methods(est)]


def _same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", slow_except(FAMILIES, "MAMLRegressor"))
def test_threads_predict_and_adapt_as_serial_calls(name, record_property):
    est, train, supports, X_query = _fitted(name)
    expected = [_outputs(est.adapt(*support), X_query) for support in supports]
    few_shot = None
    if not name.startswith("FineTune"):
        X, y, t = train
        few_shot = est.score(X, y, task_ids=t)
    est.adapt(*supports[0])

    deadline = time.perf_counter() + SECONDS
    errors, mismatches, counts = [], [], [0, 0, 0]

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            while time.perf_counter() < deadline:
                draw = rng.random()
                if draw < 0.3:
                    est.adapt(*supports[rng.integers(len(supports))])
                    counts[0] += 1
                elif draw < 0.35 and few_shot is not None:
                    if est.score(X, y, task_ids=t) != few_shot:
                        mismatches.append("few-shot score")
                    counts[2] += 1
                else:
                    # Each call reads one adaptation: it equals a serial call.
                    i = rng.integers(len(expected[0]))
                    out = _methods(est)[i](X_query)
                    if not any(_same(out, e[i]) for e in expected):
                        mismatches.append(out)
                    counts[1] += 1
        except Exception as exc:  # noqa: BLE001 - every error is a failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert not mismatches, f"{len(mismatches)} results differ from serial calls"
    assert counts[0] > 0 and counts[1] > 0
    record_property("adapt_calls", counts[0])
    record_property("inference_calls", counts[1])
    record_property("few_shot_calls", counts[2])

    # Serial calls still give the same answers; the model is float32 and
    # trainable: its parameters are the optimiser's.
    for support, want in zip(supports, expected, strict=True):
        got = _outputs(est.adapt(*support), X_query)
        assert all(_same(a, b) for a, b in zip(got, want, strict=True))
    for engine in _engines(est):
        params = list(engine.module_.parameters())
        assert all(p.dtype == torch.float32 for p in params)
        optimised = {id(p) for g in engine.optimizer_.param_groups for p in g["params"]}
        assert {id(p) for p in params} <= optimised
    # (an adaptation's frozen layers do not train, by design)
    assert all(p.requires_grad for p in est.net_.module_.parameters())
    before = copy.deepcopy(est.net_.module_.state_dict())
    est.partial_fit(*train[:2], task_ids=train[2])
    after = est.net_.module_.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


# -- atomic calls and interrupts ----------------------------------------------


def _fingerprint(value, seen):
    """Everything observable of ``value``, comparable with ``==``: tensors and
    arrays by their bytes, objects by identity and (for the stateful kinds an
    estimator holds) their attributes, containers item by item."""
    if isinstance(value, (str, int, float, bool, type(None), np.generic)):
        return value
    if id(value) in seen:
        return ("seen", id(value))
    seen.add(id(value))
    if torch.is_tensor(value):
        data = value.detach().cpu()
        grad = value.grad if value.is_leaf else None
        return (
            "tensor",
            id(value),
            str(data.dtype),
            tuple(data.shape),
            data.numpy().tobytes(),
            value.requires_grad,
            None if grad is None else _fingerprint(grad, seen),
        )
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("array", id(value), value.shape, value.tolist())
        return ("array", id(value), value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.random.RandomState):
        state = value.get_state()
        return ("rng", id(value), state[1].tobytes(), state[2:])
    if isinstance(value, dict):
        return (
            type(value),
            id(value),
            [(_fingerprint(k, seen), _fingerprint(v, seen)) for k, v in value.items()],
        )
    if isinstance(value, (list, tuple)):
        return (type(value), id(value), [_fingerprint(v, seen) for v in value])
    if hasattr(value, "__dict__") and type(value).__module__.split(".")[0] in (
        "sktransfer",
        "skorch",
        "torch",
    ):
        return (type(value), id(value), _fingerprint(vars(value), seen))
    return (type(value), id(value))


def _state(est):
    return _fingerprint(est, set())


def _first_difference(a, b, path="est"):
    """Where two fingerprints first differ (for the failure message)."""
    if a == b:
        return None
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if isinstance(x, list) and isinstance(y, list):
                if len(x) != len(y):
                    return f"{path}: {len(x)} items became {len(y)}"
                for j, (u, v) in enumerate(zip(x, y, strict=True)):
                    key = u[0] if isinstance(u, tuple) and len(u) == 2 else j
                    found = _first_difference(u, v, f"{path}[{key!r}]")
                    if found:
                        return found
            elif x != y:
                return (
                    _first_difference(x, y, path)
                    if isinstance(x, tuple)
                    else (f"{path} (field {i}): {str(x)[:200]} != {str(y)[:200]}")
                )
    return f"{path}: {str(a)[:200]} != {str(b)[:200]}"


CTRL_C = "Ctrl-C"


def _inject(exc):
    """Raise ``exc``; for `CTRL_C`, send SIGINT to this process, as Ctrl-C
    does (Python raises ``KeyboardInterrupt`` where the program then is)."""
    if exc == CTRL_C:
        signal.raise_signal(signal.SIGINT)
    else:
        raise exc


class Fail(Callback):
    """Counts training events in ``seen_``; raises ``exc`` at the ``at``-th
    ``event``."""

    EVENTS = ("on_batch_begin", "on_batch_end", "on_epoch_end")

    def __init__(self, event="on_batch_end", at=0, exc=None):
        self.event = event
        self.at = at
        self.exc = exc

    def _count(self, event):
        self.seen_ = dict(getattr(self, "seen_", {}))
        self.seen_[event] = self.seen_.get(event, 0) + 1
        if self.exc is not None and event == self.event:
            if self.seen_[event] == self.at:
                _inject(self.exc)

    def on_batch_begin(self, net, **kwargs):
        self._count("on_batch_begin")

    def on_batch_end(self, net, **kwargs):
        self._count("on_batch_end")

    def on_epoch_end(self, net, **kwargs):
        self._count("on_epoch_end")


class FailAtCall:
    """Raises ``exc`` when the ``at``-th Python function of the package,
    skorch or torch's optimisers starts (0: count only); the mechanism that
    restores state is left out, as a real Ctrl-C there cannot be undone, and
    so are generators, where Python may ignore an exception (on closing)."""

    PLACES = ("/sktransfer/", "/skorch/", "/torch/optim/", "/torch/func")

    def __init__(self, at=0, exc=None):
        self.at, self.exc, self.calls = at, exc, 0

    def __call__(self, frame, event, arg):
        name = frame.f_code.co_filename
        # Python ignores an exception raised where a generator is closed.
        generator = frame.f_code.co_flags & inspect.CO_GENERATOR
        if any(p in name for p in self.PLACES) and "_state.py" not in name:
            if generator:
                return
            self.calls += 1
            if self.calls == self.at:
                sys.settrace(None)
                _inject(self.exc)

    def run(self, call):
        sys.settrace(self)
        try:
            return call()
        finally:
            sys.settrace(None)


CALLS = ("fit", "partial_fit", "adapt")


def _call(est, call, train, supports):
    X, y, t = train
    if call == "adapt":
        return lambda: est.adapt(*supports[1])
    return lambda: getattr(est, call)(X, y, task_ids=t)


def _configured_fail(est, call):
    """The `Fail` callback whose settings the call will use: the fine-tuners
    train copies of the callbacks, made by `fit` (and used by `partial_fit`)
    and by every `adapt`."""
    if call == "partial_fit":
        return dict(est.net_.callbacks_)["fail"]
    return est.callbacks[0][1]


@functools.cache
def _fitted_and_adapted(name):
    """A pickled fitted estimator adapted to the first support set, with a
    `Fail` callback, and its data."""
    est, train, supports, X_query = _fitted(name, callbacks=[("fail", Fail())])
    return pickle.dumps(est.adapt(*supports[0])), train, supports, X_query


def _trials(name, call, make_exc, seed):
    """Fail ``call`` at random points of a fitted and adapted estimator;
    every time the exception comes out and the estimator is bit-identical.

    Half the failures are raised by a callback at a random training event,
    where the call has any, the others at the start of a random function
    (`FailAtCall`).
    """
    rng = np.random.default_rng(seed)
    blob, train, supports, X_query = _fitted_and_adapted(name)
    # Count the points where the call can fail, on a copy.
    copy_ = pickle.loads(blob)
    _configured_fail(copy_, call).seen_ = {}
    counter = FailAtCall()
    counter.run(_call(copy_, call, train, supports))
    n_calls = counter.calls
    engine = copy_.__dict__.get("adapt_net_") if call == "adapt" else None
    fail = dict((engine or copy_.net_).callbacks_)["fail"]
    events = fail.seen_ if call != "adapt" or engine is not None else {}
    for _ in range(TRIALS):
        est = pickle.loads(blob)
        exc = make_exc()
        expected = KeyboardInterrupt if exc == CTRL_C else type(exc)
        injected = FailAtCall(int(rng.integers(1, n_calls + 1)), exc)
        run = injected.run
        if events and rng.random() < 0.5:
            event = rng.choice(sorted(events))
            fail = _configured_fail(est, call)
            fail.event, fail.exc = event, exc
            fail.at = rng.integers(1, events[event] + 1)
            fail.seen_ = {}
            run = lambda call: call()  # noqa: E731
        before = _state(est)
        predictions = est.predict(X_query)
        with pytest.raises(BaseException) as info:
            run(_call(est, call, train, supports))
        # Exactly the failure injected, never another exception (the
        # fine-tuners train copies of the callbacks, so of exc: compared by
        # type and arguments).
        assert type(info.value) is expected
        assert exc == CTRL_C or info.value.args == exc.args
        after = _state(est)
        assert after == before, _first_difference(before, after)
        np.testing.assert_array_equal(est.predict(X_query), predictions)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "name", slow_except(FAMILIES, "MAMLClassifier", "MAMLRegressor")
)
def test_failing_call_leaves_estimator_bit_identical(name, call):
    _trials(name, call, lambda: RuntimeError("injected"), seed=0)


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler, as in a terminal: a process started in
    the background (a CI job under ``nohup`` or ``&``) inherits SIGINT
    ignored, and Ctrl-C then does nothing at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "name", slow_except(FAMILIES, "MAMLClassifier", "MAMLRegressor")
)
def test_ctrl_c_raises_keyboard_interrupt_with_state_intact(name, call, ctrl_c_raises):
    _trials(name, call, lambda: CTRL_C, seed=1)


class StopAt(Callback):
    """Asks skorch to stop training after the ``at``-th step, as its
    ``EarlyStopping`` does: by raising ``KeyboardInterrupt``."""

    def __init__(self, at=1):
        self.at = at

    def on_train_begin(self, net, **kwargs):
        self.steps_ = 0

    def on_batch_end(self, net, **kwargs):
        self.steps_ += 1
        if self.steps_ == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", FAMILIES)
def test_callback_stopping_training_leaves_a_consistent_model(name):
    rng = np.random.default_rng(2)
    X, y, t, supports, X_query = _data(name)
    fine_tuner = name.startswith("FineTune")
    for at in rng.integers(1, 7, size=2):
        est = FAMILIES[name](max_iter=6, callbacks=[("stop", StopAt(int(at)))])
        est.fit(X, y, task_ids=t)
        history = est.history_
        if fine_tuner:
            # skorch's own loop: the epoch where training stopped is a row.
            assert est.n_iter_ == len(history) >= 1
        else:
            # Meta-iterations: exactly the steps taken.
            assert est.n_iter_ == sum(history[:, "train_batch_count"]) == at
        est.adapt(*supports[0])
        assert all(np.isfinite(out).all() for out in _outputs(est, X_query))


# -- dropout ------------------------------------------------------------------


class _Dropped(nn.Sequential):
    """A user's network with dropout: it draws random numbers while training."""

    def __init__(self, n_features, n_outputs):
        super().__init__(
            nn.Linear(n_features, 8),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(8, n_outputs),
        )


@pytest.mark.parametrize("name", FAMILIES)
def test_dropout_follows_random_state_not_torch_global_seed(name):
    # Dropout's masks come from a generator seeded by random_state, in fit,
    # partial_fit and adapt, and torch's global random state is left alone:
    # the same random_state gives the same model under any global seed.
    X, y, t, supports, X_query = _data(name)
    outputs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        est = FAMILIES[name](max_iter=MAX_ITER.get(name, 6), module=_Dropped)
        est.fit(X, y, task_ids=t)
        est.partial_fit(X, y, task_ids=t)
        est.adapt(*supports[0])
        assert torch.equal(torch.get_rng_state(), state)
        outputs.append(_outputs(est, X_query))
    for first, second in zip(*outputs, strict=True):
        np.testing.assert_array_equal(first, second)
