"""The divergence guard: non-finite losses, weights and outputs named, not kept.

The training loops check on the device and read the result where they already
synchronise (once per epoch), keep a copy of the weights at the last finite
check, and on divergence restore it and raise `divergence_error`, worded as
scikit-learn's SGD words it.
"""

import numpy as np
import torch


def tensors_in(value):
    """Every tensor in ``value``: a tensor, or dicts, lists and tuples of them."""
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)


def all_finite(tensors):
    """Whether every tensor is finite, as a 0-d bool tensor on their device.

    No host synchronisation: the caller reads it when it already syncs.
    """
    flags = [torch.isfinite(t).all() for t in tensors]
    if not flags:
        return torch.tensor(True)
    return torch.stack(flags).all()


def finite_weights(module):
    """A copy of the module's weights and buffers, on its device."""
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def restore_weights(module, weights):
    """Put the weights saved by `finite_weights` back in place."""
    with torch.no_grad():
        module.load_state_dict(weights)


def divergence_error(where, learning_rates):
    """The `ValueError` of a training run whose loss or weights left the floats.

    ``where`` names the iteration (``"meta-iteration #12 (epoch #3)"``),
    ``learning_rates`` the parameters to lower (``"meta_lr or inner_lr"``).
    """
    return ValueError(
        f"Floating-point under-/overflow occurred at {where}: the training loss or "
        "the weights became NaN or infinite, so training stopped. A smaller "
        f"{learning_rates}, standardize=True (the default), or scaling the "
        "features and targets to similar ranges (StandardScaler or MinMaxScaler) "
        "might help."
    )


def adaptation_error(estimator):
    """The `ValueError` of an `adapt` whose adapted weights left the floats."""
    cure = (
        "A smaller inner_lr or n_adapt_steps, or support rows"
        if hasattr(estimator, "inner_lr")
        else "Support rows"
    )
    return ValueError(
        "Floating-point under-/overflow occurred while adapting to the support "
        f"set: the adapted weights are NaN or infinite. {cure} on the scale of "
        "the training data might help."
    )


def check_finite_outputs(outputs, where="the model"):
    """Refuse non-finite model outputs (a float array) instead of returning them."""
    finite = np.isfinite(outputs)
    if not finite.all():
        rows = int((~finite.reshape(len(outputs), -1).all(axis=1)).sum())
        raise ValueError(
            f"The outputs of {where} are NaN or infinite for {rows} of "
            f"{len(outputs)} rows (floating-point overflow): the rows may lie far "
            "outside the range of the training data, or adaptation diverged "
            "(a smaller step size or fewer adaptation steps might help)."
        )
    return outputs
