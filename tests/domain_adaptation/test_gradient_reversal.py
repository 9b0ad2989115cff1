"""The gradient-reversal layer and Ganin et al.'s schedules."""

import math

import pytest
import torch

from sktransfer.domain_adaptation._gradient_reversal import (
    GradientReversal,
    annealed_lr,
    reversal_weight,
)


@pytest.mark.parametrize("weight", [0.0, 0.5, 3.0])
def test_forward_is_identity_and_backward_reverses_the_gradient(weight):
    x = torch.randn(5, 3, requires_grad=True, dtype=torch.float64)
    probe = torch.randn(5, 3, dtype=torch.float64)
    out = GradientReversal(weight)(x)
    assert torch.equal(out, x)
    (out * probe).sum().backward()
    torch.testing.assert_close(x.grad, -weight * probe)


def test_reversal_feeds_the_opposite_gradient_to_the_layers_below():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    layer(x).pow(2).sum().backward()
    plain = layer.weight.grad.clone()
    layer.zero_grad()
    GradientReversal(2.0)(layer(x)).pow(2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, -2.0 * plain)


def test_schedules_follow_ganin_et_al():
    assert reversal_weight(0.0, 2.0) == 0.0
    assert reversal_weight(1.0, 2.0) == pytest.approx(2.0, abs=1e-3)
    for p in (0.1, 0.5):
        expected = 2.0 * (2.0 / (1.0 + math.exp(-10 * p)) - 1.0)
        assert reversal_weight(p, 2.0) == pytest.approx(expected)
    assert annealed_lr(0.0, 0.01) == 0.01
    assert annealed_lr(1.0, 0.01) == pytest.approx(0.01 / 11**0.75)
