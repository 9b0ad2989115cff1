"""An estimator's state: atomic calls, interrupts and private modules for threads.

Three rules every estimator follows, built here once:

- `fit` and `partial_fit` run under `restore_on_error`: a snapshot of the
  estimator's state taken before the call is restored if the call raises
  anything; Ctrl-C raises ``KeyboardInterrupt`` (`interrupts_propagate`), which
  skorch's training loop would otherwise take for a request to stop.
- `adapt` computes on a working copy (`working_copy`) and publishes its result
  in one assignment (`publish`), so a thread predicting meanwhile sees the old
  adaptation or the new one, never half of each, and a failing or interrupted
  `adapt` leaves the previous adaptation in place.
- Inference borrows a `private_module`, so that ``torch.func.functional_call``
  (which puts the tensors it is given into the module for the duration of the
  call) never touches the module other threads use.
"""

import copy
import signal
import threading
import weakref
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.history import History
from torch import nn


class TrainingInterrupted(BaseException):
    """Ctrl-C during a training call, on its way out of skorch.

    skorch's training loop reads a ``KeyboardInterrupt`` as a request to stop
    training (its ``EarlyStopping`` raises one) and returns as if training had
    ended. A real Ctrl-C must not be taken for that: while a call runs under
    `interrupts_propagate`, SIGINT raises this exception instead, which skorch
    does not catch, and the call turns it back into a ``KeyboardInterrupt``
    once the estimator is restored.
    """


class _SigintHandler:
    """SIGINT handler of `interrupts_propagate`; it can hold a signal back
    while the estimator is being restored."""

    def __init__(self):
        self.deferring = False
        self.pending = False

    def __call__(self, signum, frame):
        if self.deferring:
            self.pending = True
            return
        raise TrainingInterrupted

    @contextmanager
    def defer(self):
        """Hold Ctrl-C back during the block; raise it after."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            self.pending = False
            raise TrainingInterrupted


@contextmanager
def interrupts_propagate():
    """Ctrl-C during the block raises ``KeyboardInterrupt`` out of it, even
    from inside a skorch training loop.

    Yields the SIGINT handler in place (None where none could be installed).
    The handler is installed only where Python's default one is in place, in
    the main thread (the only one that receives signals), and is removed at
    the end of the block; a nested block keeps the outer handler.
    """
    handler = None
    try:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            handler = _SigintHandler()
            signal.signal(signal.SIGINT, handler)
        yield handler
    except TrainingInterrupted:
        raise KeyboardInterrupt from None
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, signal.default_int_handler)


# -- snapshots ------------------------------------------------------------------
# Objects whose attributes are saved and restored (and searched for more
# state); anything else in the estimator's attributes is kept by reference.
_STATEFUL = (NeuralNet, Callback, nn.Module, torch.optim.Optimizer)
if hasattr(torch.optim.lr_scheduler, "LRScheduler"):
    _STATEFUL += (torch.optim.lr_scheduler.LRScheduler,)


class Snapshot:
    """Everything a training call may change in place, saved to restore it.

    Starting from the estimator's attributes, it saves the attributes of
    every skorch engine, callback, torch module, optimiser and scheduler it
    reaches (a shallow copy: rebinding an attribute is undone by putting the
    old object back), the contents of every list and dict among them, and a
    copy of every tensor (its values, gradient and ``requires_grad``) and of
    a ``RandomState`` passed as ``random_state``. A skorch ``History`` only
    grows: its rows are kept by reference, and the last (which training may
    still write to) saved as any dict. Restoring puts every saved object
    back in place (same objects, old contents), so references held
    elsewhere, such as the optimiser's to the parameters, stay valid.
    """

    def __init__(self, estimator):
        self._attributes = []  # (object, copy of its __dict__)
        self._lists = []  # (list, copy of its items)
        self._dicts = []  # (dict, copy of its items)
        self._tensors = []  # (tensor, values, grad, requires_grad)
        self._histories = []  # (history, its rows)
        self._rngs = []  # (RandomState, its state)
        self._seen = set()
        self._save_attributes(estimator)

    def _save_attributes(self, obj):
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        attributes = dict(obj.__dict__)
        self._attributes.append((obj, attributes))
        for value in attributes.values():
            self._save(value)

    def _save(self, value):
        if isinstance(value, (str, int, float, bool, type(None), np.ndarray)):
            return
        if torch.is_tensor(value):
            if id(value) not in self._seen:
                self._seen.add(id(value))
                grad = value.grad if value.is_leaf else None
                self._tensors.append(
                    (
                        value,
                        value.detach().clone(),
                        None if grad is None else grad.detach().clone(),
                        value.requires_grad,
                    )
                )
        elif isinstance(value, History):
            if id(value) not in self._seen:
                self._seen.add(id(value))
                self._histories.append((value, list(value)))
                if len(value):
                    self._save(value[-1])
        elif isinstance(value, np.random.RandomState):
            if id(value) not in self._seen:
                self._seen.add(id(value))
                self._rngs.append((value, value.get_state()))
        elif isinstance(value, _STATEFUL):
            self._save_attributes(value)
        elif isinstance(value, (list, dict)):
            if id(value) in self._seen:
                return
            self._seen.add(id(value))
            if isinstance(value, list):
                self._lists.append((value, list(value)))
                items = value
            else:
                self._dicts.append((value, dict(value)))
                # Optimiser state is keyed by parameter.
                items = [*value.keys(), *value.values()]
            for item in items:
                self._save(item)
        elif isinstance(value, tuple):
            for item in value:
                self._save(item)

    def restore(self):
        """Put every saved object back as it was."""
        for obj, attributes in self._attributes:
            obj.__dict__.clear()
            obj.__dict__.update(attributes)
        for items, saved in self._lists:
            items[:] = saved
        for items, saved in self._dicts:
            items.clear()
            items.update(saved)
        for history, rows in self._histories:
            history[:] = rows
        for rng, state in self._rngs:
            rng.set_state(state)
        with torch.no_grad():
            for tensor, values, grad, requires_grad in self._tensors:
                if (
                    tensor.shape == values.shape
                    and tensor.dtype == values.dtype
                    and tensor.device == values.device
                ):
                    tensor.copy_(values)
                else:
                    tensor.data = values
                if tensor.is_leaf:
                    tensor.requires_grad_(requires_grad)
                    tensor.grad = grad


@contextmanager
def restore_on_error(estimator):
    """Leave the estimator exactly as it was when a training call fails.

    A `Snapshot` of its state is taken before the call and restored if the
    call raises anything. Ctrl-C included: it raises ``KeyboardInterrupt``
    (see `interrupts_propagate`), held back while the state is restored.
    """
    snapshot = Snapshot(estimator)
    with interrupts_propagate() as handler:
        try:
            yield
        except BaseException:
            with nullcontext() if handler is None else handler.defer():
                snapshot.restore()
            raise


# Copying an estimator's attributes and publishing new ones exclude each
# other. The GIL alone does not make them atomic: freeing a replaced tensor
# can let other threads run in the middle of a dictionary update.
_ATTRIBUTES_LOCK = threading.Lock()


def working_copy(estimator):
    """A shallow copy of the estimator: the same attribute objects, read once.

    The attributes are copied in one step for other threads (`publish` runs
    before or after it, never during), so the copy holds one consistent state
    of the estimator: inference reads it instead of the estimator, and
    `adapt` sets its results on it before `publish`.
    """
    copy_ = object.__new__(type(estimator))
    with _ATTRIBUTES_LOCK:
        attributes = dict(estimator.__dict__)
    copy_.__dict__ = attributes
    return copy_


def publish(estimator, copy_):
    """Make the working copy's attributes the estimator's, in one step."""
    with _ATTRIBUTES_LOCK:
        # The replaced values are freed after the lock is released.
        replaced = dict(estimator.__dict__)
        estimator.__dict__.update(copy_.__dict__)
    del replaced


# -- private modules for concurrent inference ------------------------------------
_SHELLS = weakref.WeakKeyDictionary()
_SHELLS_LOCK = threading.Lock()


def _own_tensors(module):
    """Parameters and buffers of ``module`` and of modules held as attributes."""
    tensors, seen = [], set()

    def visit(mod):
        if id(mod) in seen:
            return
        seen.add(id(mod))
        for sub in mod.modules():
            seen.add(id(sub))
            tensors.extend(t for t in sub._parameters.values() if t is not None)
            tensors.extend(t for t in sub._buffers.values() if t is not None)
            for value in sub.__dict__.values():
                if isinstance(value, nn.Module):
                    visit(value)

    visit(module)
    return tensors


@contextmanager
def private_module(module, *, training=False):
    """A copy of ``module``'s structure for one call, sharing its tensors.

    ``torch.func.functional_call`` puts the tensors it is given into the
    module's attributes for the duration of the call: two threads calling it
    on one module see each other's tensors and can leave them behind. Each
    call borrows a module of its own instead: a copy of the layers whose
    parameters and buffers are ``module``'s own tensors (not copies), in
    train or eval mode as asked, from a pool that keeps one per concurrent
    caller. ``module`` itself is never changed.
    """
    tensors = _own_tensors(module)
    key = tuple(id(t) for t in tensors)
    with _SHELLS_LOCK:
        pool = _SHELLS.setdefault(module, [])
        shell = pool.pop() if pool else None
    if shell is None or shell[0] != key:
        memo = {id(t): t for t in tensors}
        shell = (key, copy.deepcopy(module, memo))
    shell[1].train(training)
    try:
        yield shell[1]
    finally:
        with _SHELLS_LOCK:
            _SHELLS.setdefault(module, []).append(shell)
