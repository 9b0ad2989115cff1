"""A bit-exact fingerprint of an estimator's state, to check that a call
that raised left it exactly as it was.

Independent of the package's own snapshot mechanism: it walks the
estimator's attributes and everything they reach (skorch engines and their
callbacks, histories, torch modules, optimisers, tensors, arrays, random
generators) and turns it into nested tuples of plain values, tensors and
arrays by their bytes.
"""

import types

import numpy as np
import torch
from torch import nn


def fingerprint(obj, _seen=None):
    """Nested tuples that are equal exactly when the states are bit-identical."""
    # Objects by id, kept alive: a temporary (a state_dict) freed while
    # walking would free its id for the next one.
    seen = {} if _seen is None else _seen
    if isinstance(obj, (str, int, bool, type(None), bytes)):
        return obj
    if isinstance(obj, float):
        return ("float", repr(obj))
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        return ("callable", getattr(obj, "__qualname__", repr(obj)))
    if isinstance(obj, np.generic):
        return ("scalar", obj.dtype.str, obj.tobytes())
    if torch.is_tensor(obj):
        value = obj.detach().cpu().contiguous()
        grad = obj.grad if obj.is_leaf else None
        return (
            "tensor",
            str(obj.dtype),
            tuple(obj.shape),
            obj.device.type,
            obj.requires_grad,
            value.reshape(-1).view(torch.uint8).numpy().tobytes(),
            None if grad is None else fingerprint(grad, seen),
        )
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "O":
            return ("objects", obj.shape, tuple(fingerprint(v, seen) for v in obj.flat))
        return ("array", obj.dtype.str, obj.shape, np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, torch.Generator):
        return ("generator", fingerprint(obj.get_state(), seen))
    if isinstance(obj, np.random.RandomState):
        return ("random_state", fingerprint(obj.get_state(), seen))
    if id(obj) in seen:
        return ("seen", type(obj).__name__)
    seen[id(obj)] = obj
    if isinstance(obj, dict):
        return (
            "dict",
            tuple(
                (fingerprint(k, seen), fingerprint(v, seen))
                for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0]))
            ),
        )
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(fingerprint(v, seen) for v in obj))
    if isinstance(obj, (set, frozenset)):
        return ("set", tuple(sorted(repr(fingerprint(v, seen)) for v in obj)))
    if isinstance(obj, nn.Module):
        return (
            "module",
            type(obj).__name__,
            obj.training,
            fingerprint(dict(obj.state_dict(keep_vars=True)), seen),
            fingerprint(
                {
                    k: v
                    for k, v in vars(obj).items()
                    if not k.startswith("_") and k != "training"
                },
                seen,
            ),
        )
    if isinstance(obj, torch.optim.Optimizer):
        return ("optimizer", type(obj).__name__, fingerprint(obj.state_dict(), seen))
    if hasattr(obj, "__dict__"):
        return ("object", type(obj).__name__, fingerprint(vars(obj), seen))
    return ("other", type(obj).__name__, repr(obj))


def fitted_state(estimator):
    """The fingerprint of everything but the constructor parameters."""
    params = set(estimator.get_params(deep=False))
    return fingerprint({k: v for k, v in vars(estimator).items() if k not in params})
