"""A small tabular multi-layer perceptron, the default module of every estimator."""

from numbers import Integral

from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


class MLP(nn.Sequential):
    """Fully connected network for tabular data.

    ``Linear -> activation`` blocks sized by ``hidden_layer_sizes``, then a
    ``Linear`` output layer. It maps ``(n_samples, n_features)`` floats to
    ``(n_samples, n_outputs)`` scores. Every argument has a default, so the
    estimators can build it as ``MLP(n_features=..., n_outputs=..., **module_params)``.

    Parameters
    ----------
    n_features : int, default=1
        Number of input features.
    n_outputs : int, default=1
        Number of outputs (classes for a classifier, targets for a regressor).
    hidden_layer_sizes : tuple of int, default=(40, 40)
        Width of each hidden layer, as in scikit-learn's ``MLPClassifier``.
    activation : {"relu", "tanh", "logistic", "gelu", "identity"}, default="relu"
        Activation after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.nn import MLP
    >>> MLP(n_features=3, n_outputs=2)(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self, n_features=1, n_outputs=1, hidden_layer_sizes=(40, 40), activation="relu"
    ):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}."
            )
        sizes = _check_hidden_layer_sizes(hidden_layer_sizes)
        layers = []
        width = n_features
        for size in sizes:
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        super().__init__(*layers)

    def __getitem__(self, idx):
        # Slices (e.g. ``mlp[:-1]``, the body) are plain ``nn.Sequential``:
        # ``Sequential`` would rebuild this class from a dict of layers.
        if isinstance(idx, slice):
            return nn.Sequential(*list(self._modules.values())[idx])
        return super().__getitem__(idx)


def _check_hidden_layer_sizes(sizes):
    """The hidden widths as a tuple of positive ints, or a `ValueError`.

    An empty tuple is a linear model; a width of 0 would make a constant one.
    """
    try:
        widths = tuple(sizes)
    except TypeError:
        widths = None
    if widths is None or not all(
        isinstance(w, Integral) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(
            "hidden_layer_sizes must be a sequence of positive integers (the width "
            f"of each hidden layer; () for a linear model), got {sizes!r}."
        )
    return tuple(int(w) for w in widths)
