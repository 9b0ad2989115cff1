"""The gradient-reversal layer of domain-adversarial training and its schedule."""

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-weight`` backward."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.weight * grad_output, None


def reverse_gradient(x, weight=1.0):
    """``x`` unchanged; its gradient is multiplied by ``-weight`` on the way back."""
    return _ReverseGradient.apply(x, float(weight))


class GradientReversal(nn.Module):
    """Layer form of `reverse_gradient`, with a mutable ``weight`` (not a parameter).

    The training loop sets ``weight`` before each step (the schedule below); it is
    a plain float, so it takes no part in ``state_dict`` and in inference.
    """

    def __init__(self, weight=1.0):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return reverse_gradient(x, self.weight)

    def extra_repr(self):
        return f"weight={self.weight}"


def reversal_weight(progress, max_weight=1.0):
    """Ganin et al.'s schedule: ``max_weight * (2 / (1 + exp(-10 p)) - 1)``.

    ``progress`` ``p`` runs from 0 (first step) to 1 (last step): the domain
    classifier's reversed gradient is switched on gradually, while its
    predictions are still noise.
    """
    return max_weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def annealed_lr(progress, lr):
    """Ganin et al.'s learning-rate annealing: ``lr / (1 + 10 p) ** 0.75``."""
    return lr / (1.0 + 10.0 * progress) ** 0.75
