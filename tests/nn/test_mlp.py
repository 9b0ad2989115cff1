"""The default tabular MLP."""

import pytest
import torch
from torch import nn

from sktransfer.nn import MLP


def test_shapes_and_layers():
    mlp = MLP(n_features=3, n_outputs=2, hidden_layer_sizes=(8, 4), activation="tanh")
    assert mlp(torch.zeros(5, 3)).shape == (5, 2)
    assert [type(layer) for layer in mlp] == [
        nn.Linear,
        nn.Tanh,
        nn.Linear,
        nn.Tanh,
        nn.Linear,
    ]
    assert MLP(hidden_layer_sizes=())(torch.zeros(2, 1)).shape == (2, 1)


def test_slicing_gives_the_body():
    mlp = MLP(n_features=3, n_outputs=2, hidden_layer_sizes=(8,))
    body = mlp[:-1]
    assert isinstance(body, nn.Sequential)
    assert body(torch.zeros(4, 3)).shape == (4, 8)
    assert body[0] is mlp[0]


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(activation="swish")
