"""Pure closed-form core of the meta-learners that adapt without gradient steps.

Two heads are solved exactly from a support set (no sklearn imports, no module
state): the Bayesian linear head of ALPaCA (Harrison, Sharma & Pavone 2018),
which is R2-D2's ridge head (Bertinetto et al. 2019) when its targets are
one-hot class indicators, and the class prototypes of prototypical networks
(Snell et al. 2017). The linear head can take an RBF term (a Gaussian process
whose covariance is the head's plus the RBF's), solved over the support rows.

Batched tensors carry the task axis first: features are
``(n_tasks, n_rows, n_features)``, targets ``(n_tasks, n_rows, n_outputs)``
and row weights ``(n_tasks, n_rows)``, with weight 0 for padding rows.
Parameters without the task axis broadcast over tasks.
"""

import math
from typing import NamedTuple

import numpy as np
import torch


class RidgePosterior(NamedTuple):
    """The Gaussian posterior over a linear head's weights, per task.

    The weights ``w`` of every output have the prior ``N(prior_mean,
    diag(prior_std ** 2))`` and the rows the noise variance ``noise_var``.
    The posterior is kept in whitened coordinates ``w = prior_mean + prior_std
    * u``: ``chol`` is the Cholesky factor of the precision of ``u``,
    ``I + Z^T W Z / noise_var`` with ``Z = features * prior_std``, whose
    eigenvalues are at least 1 whatever the features, so the factorisation is
    well conditioned in float32.
    """

    mean: torch.Tensor  # (n_tasks, n_features, n_outputs)
    chol: torch.Tensor  # (n_tasks, n_features, n_features)
    prior_std: torch.Tensor  # (n_tasks or 1, n_features)
    noise_var: torch.Tensor  # (n_tasks or 1,)


def _per_task(value, n_dims):
    """Give a parameter a leading task axis and ``n_dims`` dimensions in all."""
    while value.ndim < n_dims:
        value = value.unsqueeze(0)
    return value


def ridge_posterior(features, targets, weight, prior_mean, prior_std, noise_var):
    """Posterior of a Bayesian linear head given each task's support rows.

    Parameters
    ----------
    features : Tensor of shape (n_tasks, n_rows, n_features)
        The head's inputs on the support rows.
    targets : Tensor of shape (n_tasks, n_rows, n_outputs)
        The support targets (one-hot indicators for classes).
    weight : Tensor of shape (n_tasks, n_rows)
        Row weights; 0 for padding rows.
    prior_mean : Tensor of shape ([n_tasks,] n_features, n_outputs)
        Prior mean of the weights.
    prior_std : Tensor of shape ([n_tasks,] n_features)
        Prior standard deviation of each feature's weights (all outputs).
    noise_var : Tensor of shape ([n_tasks])
        Noise variance of the targets.

    Returns
    -------
    posterior : RidgePosterior
        The posterior mean and the factor of its precision.
    """
    prior_mean = _per_task(prior_mean, 3)
    prior_std = _per_task(prior_std, 2)
    noise_var = _per_task(noise_var, 1)
    whitened = features * prior_std.unsqueeze(1)
    weighted = whitened * (weight / noise_var.unsqueeze(-1)).unsqueeze(-1)
    precision = weighted.transpose(1, 2) @ whitened
    precision = precision + torch.eye(
        features.shape[-1], dtype=features.dtype, device=features.device
    )
    chol = torch.linalg.cholesky(precision)
    residual = targets - features @ prior_mean
    u = torch.cholesky_solve(weighted.transpose(1, 2) @ residual, chol)
    mean = prior_mean + prior_std.unsqueeze(-1) * u
    return RidgePosterior(mean, chol, prior_std, noise_var)


def ridge_predict(posterior, features, *, return_var=False):
    """Posterior predictive mean (and variance) of a head at new rows.

    Parameters
    ----------
    posterior : RidgePosterior
        From `ridge_posterior`.
    features : Tensor of shape (n_tasks, n_rows, n_features)
        The head's inputs on the rows to predict.
    return_var : bool, default=False
        Also return the predictive variance: the noise variance plus the
        variance of the head's output under the posterior.

    Returns
    -------
    mean : Tensor of shape (n_tasks, n_rows, n_outputs)
    var : Tensor of shape (n_tasks, n_rows)
        Only with ``return_var``; the same for every output.
    """
    mean = features @ posterior.mean
    if not return_var:
        return mean
    whitened = features * posterior.prior_std.unsqueeze(1)
    half = torch.linalg.solve_triangular(
        posterior.chol, whitened.transpose(1, 2), upper=False
    )
    var = posterior.noise_var.unsqueeze(-1) + half.square().sum(1)
    return mean, var


class KernelPosterior(NamedTuple):
    """A Bayesian linear head plus an RBF term, solved over its support rows.

    The Gaussian process whose mean is ``phi(x) @ prior_mean`` and whose
    covariance is the linear head's plus an RBF term on the inputs::

        k(x, x') = phi(x) diag(prior_std ** 2) phi(x')
                   + rbf_std ** 2 exp(-|(x - x') / lengthscale| ** 2 / 2)

    With ``rbf_std`` 0 it is the `RidgePosterior` of the same prior, written
    over the support rows instead of the weights (kernel ridge regression).
    ``chol`` is the Cholesky factor of ``I + W^1/2 K W^1/2 / noise_var``,
    with ``K`` the kernel of the support rows and ``W`` their weights (a
    padding row's weight 0 removes it); ``dual`` is that matrix's solve of
    ``W^1/2 (y - phi @ prior_mean) / noise_var``. The cost grows with the
    cube of the support rows, not of the features.
    """

    features: torch.Tensor  # (n_tasks, n_rows, n_features) of the support rows
    inputs: torch.Tensor  # (n_tasks, n_rows, n_inputs) of the support rows
    root_weight: torch.Tensor  # (n_tasks, n_rows)
    dual: torch.Tensor  # (n_tasks, n_rows, n_outputs)
    chol: torch.Tensor  # (n_tasks, n_rows, n_rows)
    prior_mean: torch.Tensor  # (n_tasks or 1, n_features, n_outputs)
    prior_std: torch.Tensor  # (n_tasks or 1, n_features)
    noise_var: torch.Tensor  # (n_tasks or 1,)
    rbf_std: torch.Tensor  # (n_tasks or 1,)
    lengthscale: torch.Tensor  # (n_tasks or 1, 1 or n_inputs)


def _kernel(posterior, features_a, inputs_a, features_b, inputs_b):
    """``k(a, b)`` of `KernelPosterior`, ``(n_tasks, n_a, n_b)``."""
    std = posterior.prior_std.unsqueeze(1)
    linear = (features_a * std.square()) @ features_b.transpose(1, 2)
    scale = posterior.lengthscale.unsqueeze(1)
    a, b = inputs_a / scale, inputs_b / scale
    distance = (
        a.square().sum(-1, keepdim=True)
        - 2 * a @ b.transpose(1, 2)
        + b.square().sum(-1).unsqueeze(1)
    )
    rbf = torch.exp(-0.5 * distance.clamp_min(0.0))
    return linear + posterior.rbf_std.square().view(-1, 1, 1) * rbf


def kernel_posterior(
    features,
    inputs,
    targets,
    weight,
    prior_mean,
    prior_std,
    noise_var,
    rbf_std,
    lengthscale,
):
    """Posterior of a linear head plus an RBF term given each task's support rows.

    Parameters
    ----------
    features, targets, weight, prior_mean, prior_std, noise_var
        As for `ridge_posterior`.
    inputs : Tensor of shape (n_tasks, n_rows, n_inputs)
        What the RBF term measures distances on.
    rbf_std : Tensor of shape ([n_tasks])
        Standard deviation of the RBF term.
    lengthscale : Tensor of shape ([n_tasks,] 1 or n_inputs)
        One lengthscale for all inputs, or one per input.

    Returns
    -------
    posterior : KernelPosterior
    """
    posterior = KernelPosterior(
        features,
        inputs,
        weight.sqrt(),
        None,
        None,
        _per_task(prior_mean, 3),
        _per_task(prior_std, 2),
        _per_task(noise_var, 1),
        _per_task(rbf_std, 1),
        _per_task(lengthscale, 2),
    )
    root = posterior.root_weight
    noise = posterior.noise_var.view(-1, 1, 1)
    gram = _kernel(posterior, features, inputs, features, inputs)
    gram = root.unsqueeze(-1) * gram * root.unsqueeze(1) / noise
    eye = torch.eye(features.shape[1], dtype=features.dtype, device=features.device)
    chol = torch.linalg.cholesky(gram + eye)
    residual = targets - features @ posterior.prior_mean
    dual = torch.cholesky_solve(root.unsqueeze(-1) * residual, chol) / noise
    # Row-major, as a saved and loaded copy is: the products that use them
    # then sum in the same order, and predictions match to the bit.
    return posterior._replace(dual=dual.contiguous(), chol=chol.contiguous())


def kernel_predict(posterior, features, inputs, *, return_var=False):
    """Posterior predictive mean (and variance) of a `KernelPosterior`.

    ``features`` and ``inputs`` are the rows to predict, as in
    `kernel_posterior`; the rest as `ridge_predict`.
    """
    cross = _kernel(posterior, features, inputs, posterior.features, posterior.inputs)
    cross = cross * posterior.root_weight.unsqueeze(1)
    mean = features @ posterior.prior_mean + cross @ posterior.dual
    if not return_var:
        return mean
    half = torch.linalg.solve_triangular(
        posterior.chol, cross.transpose(1, 2), upper=False
    )
    noise = posterior.noise_var.unsqueeze(-1)
    prior_var = (features * posterior.prior_std.unsqueeze(1)).square().sum(-1)
    prior_var = prior_var + posterior.rbf_std.square().unsqueeze(-1)
    var = noise + (prior_var - half.square().sum(1) / noise).clamp_min(0.0)
    return mean, var


def gaussian_nll(mean, var, targets, weight):
    """Weighted mean Gaussian negative log-likelihood of each task's rows.

    ``mean`` and ``targets`` are ``(n_tasks, n_rows, n_outputs)``, ``var`` and
    ``weight`` ``(n_tasks, n_rows)``; the result is ``(n_tasks,)``, averaged
    over outputs.
    """
    per_row = 0.5 * (
        torch.log(2 * math.pi * var).unsqueeze(-1)
        + (targets - mean).square() / var.unsqueeze(-1)
    ).mean(-1)
    return (per_row * weight).sum(1) / weight.sum(1).clamp_min(1.0)


def class_prototypes(
    embedding, labels, weight, n_classes, *, prior=None, prior_count=None
):
    """Weighted mean embedding of each class in each task's support set.

    Parameters
    ----------
    embedding : Tensor of shape (n_tasks, n_rows, n_components)
        The support rows, embedded.
    labels : LongTensor of shape (n_tasks, n_rows)
        Class index of each row, in ``0 .. n_classes - 1``.
    weight : Tensor of shape (n_tasks, n_rows)
        Row weights; 0 for padding rows.
    n_classes : int
        Number of prototypes per task.
    prior : Tensor of shape ([n_tasks,] n_classes, n_components), default=None
        Prototypes before any support row (the shared label space): each class
        mean is shrunk toward its prior prototype as if ``prior_count`` rows
        sat there, so a class absent from the support set keeps its prior.
    prior_count : float or Tensor of shape (n_tasks,), default=None
        The weight of ``prior``, in rows.

    Returns
    -------
    prototypes : Tensor of shape (n_tasks, n_classes, n_components)
        Class means; a class without support rows and no prior is all zeros.
    counts : Tensor of shape (n_tasks, n_classes)
        The support weight of every class.
    """
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(embedding.dtype)
    one_hot = one_hot * weight.unsqueeze(-1)
    sums = one_hot.transpose(1, 2) @ embedding
    counts = one_hot.sum(1)
    if prior is None:
        return sums / counts.clamp_min(1e-12).unsqueeze(-1), counts
    count = torch.as_tensor(prior_count, dtype=embedding.dtype).reshape(-1, 1)
    total = counts + count
    return (sums + count.unsqueeze(-1) * prior) / total.unsqueeze(-1), counts


def prototype_logits(embedding, prototypes):
    """Negative squared Euclidean distance of every row to every prototype.

    ``embedding`` is ``(n_tasks, n_rows, n_components)``, ``prototypes``
    ``(n_tasks, n_classes, n_components)``; the result is
    ``(n_tasks, n_rows, n_classes)``.
    """
    # Expanded rather than cdist: the gradient of a distance is undefined at 0,
    # which a row that is its class's only support row reaches.
    cross = embedding @ prototypes.transpose(1, 2)
    return (
        2 * cross
        - embedding.square().sum(-1, keepdim=True)
        - prototypes.square().sum(-1).unsqueeze(1)
    )


# The prior standard deviation of the slopes where meta-training starts: the
# pooled model with a random intercept, every random slope to be earned.
_SLOPE_STD = 0.01


def random_intercept(inputs, targets, task_codes, *, n_classes=None):
    """Empirical-Bayes random-intercept model of targets on ``[x, 1]``.

    Least squares (a tiny ridge) for the pooled weights; from its residuals,
    the pooled within-task variance (the noise) and, by the method of
    moments, the variance of the task means less their sampling variance
    (the intercept's), averaged over outputs. Returns the prior mean, the
    prior standard deviations (``_SLOPE_STD`` for the slopes) and the noise
    variance.

    With ``n_classes``, ``targets`` are class codes and the outputs their
    one-hot columns, made a block of classes at a time: memory grows with
    the rows times the block, not times the classes.
    """
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    gram = design.T @ design + 1e-3 * len(inputs) * np.eye(design.shape[1])
    codes = np.unique(task_codes, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_outputs = targets.shape[1] if n_classes is None else n_classes
    block = 256
    means, within, spread = [], [], []
    for first in range(0, n_outputs, block):
        columns = np.arange(first, min(first + block, n_outputs))
        if n_classes is None:
            part = targets[:, columns]
        else:
            part = (targets[:, None] == columns).astype(np.float64)
        mean = np.linalg.solve(gram, design.T @ part)
        residual = part - design @ mean
        task_means = np.add.reduceat(residual[order], starts) / counts[:, None]
        means.append(mean)
        within.append(((residual - task_means[codes]) ** 2).sum(0))
        if len(counts) > 1:
            spread.append(task_means.var(axis=0, ddof=1))
    dof = max(int((counts - 1).sum()), 1)
    noise = float(np.concatenate(within).mean() / dof)
    between = 0.0
    if spread:
        spread = np.concatenate(spread) - (noise / counts).mean()
        between = float(np.maximum(spread, 0.0).mean())
    std = np.full(design.shape[1], _SLOPE_STD)
    std[-1] = max(np.sqrt(between), _SLOPE_STD)
    return np.hstack(means), std, np.float64(max(noise, 1e-6))


def base_targets(columns, n_outputs, classification):
    """What the base predictions (the last input columns) say of the targets.

    Regression: the predictions themselves. Classification: the class
    probabilities of the offset logits (log-odds of class 1 for two classes).
    """
    if not classification:
        return columns
    if n_outputs == 2 and columns.shape[1] == 1:
        columns = np.hstack([np.zeros_like(columns), columns])
    columns = columns - columns.max(1, keepdims=True)
    proba = np.exp(columns)
    return proba / proba.sum(1, keepdims=True)
