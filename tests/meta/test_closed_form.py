"""Tests of the pure closed-form core against independent references.

The Bayesian linear head (`ridge_posterior`, `ridge_predict`) is compared with
the textbook posterior computed here in float64 numpy, one task at a time, and
with scikit-learn's `Ridge` where the two coincide; the head with an RBF term
(`kernel_posterior`, `kernel_predict`) with the linear head, with
scikit-learn's `GaussianProcessRegressor` and with the textbook Gaussian
process; the Gaussian likelihood
with `scipy.stats.norm`; the prototypes with per-class means and the logits
with `scipy.spatial.distance.cdist`.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.special import expit, softmax
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel
from sklearn.linear_model import LinearRegression, Ridge

from sktransfer import MetaRidgeRegressor
from sktransfer.meta._closed_form import (
    base_targets,
    class_prototypes,
    gaussian_nll,
    kernel_posterior,
    kernel_predict,
    prototype_logits,
    random_intercept,
    ridge_posterior,
    ridge_predict,
)
from sktransfer.tasks._sampling import build_pool

N_TASKS = 4
N_ROWS = 7
N_FEATURES = 3
N_OUTPUTS = 2
N_NEW = 5


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _weights(rng, n_tasks=N_TASKS, n_rows=N_ROWS):
    """Row weights with zeros (padding), unequal values and no all-zero task."""
    weight = rng.uniform(0.5, 2.0, size=(n_tasks, n_rows))
    for t in range(1, n_tasks):
        weight[t, n_rows - t :] = 0.0
    return weight


def _problem(seed=0, n_rows=N_ROWS, n_outputs=N_OUTPUTS, per_task_prior=True):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(N_TASKS, n_rows, N_FEATURES))
    targets = rng.normal(size=(N_TASKS, n_rows, n_outputs))
    weight = _weights(rng, n_rows=n_rows)
    # Padding rows are wild: they must change nothing.
    features[weight == 0] = 1e3
    targets[weight == 0] = -1e3
    shape = (N_TASKS,) if per_task_prior else ()
    prior_mean = rng.normal(size=(*shape, N_FEATURES, n_outputs))
    prior_std = rng.uniform(0.3, 2.0, size=(*shape, N_FEATURES))
    noise_var = rng.uniform(0.2, 1.5, size=shape)
    new = rng.normal(size=(N_TASKS, N_NEW, N_FEATURES))
    return features, targets, weight, prior_mean, prior_std, noise_var, new


def _textbook(features, targets, weight, prior_mean, prior_std, noise_var):
    """Bayesian linear regression of one task in float64 numpy.

    Covariance ``(diag(1/s^2) + Phi^T W Phi / sigma^2)^-1`` and mean
    ``cov (diag(1/s^2) m0 + Phi^T W y / sigma^2)``.
    """
    prior_precision = np.diag(1.0 / prior_std**2)
    W = np.diag(weight)
    cov = np.linalg.inv(prior_precision + features.T @ W @ features / noise_var)
    mean = cov @ (prior_precision @ prior_mean + features.T @ W @ targets / noise_var)
    return mean, cov


def _per_task(value, t, per_task):
    return value[t] if per_task else value


def _solve(features, targets, weight, prior_mean, prior_std, noise_var, new):
    posterior = ridge_posterior(
        _t(features),
        _t(targets),
        _t(weight),
        _t(prior_mean),
        _t(prior_std),
        _t(noise_var),
    )
    mean, var = ridge_predict(posterior, _t(new), return_var=True)
    return posterior, mean.numpy(), var.numpy()


@pytest.mark.parametrize("per_task_prior", [True, False], ids=["per-task", "shared"])
def test_ridge_posterior_and_predictive_match_the_textbook(per_task_prior):
    problem = _problem(per_task_prior=per_task_prior)
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    posterior, mean, var = _solve(*problem)
    assert mean.shape == (N_TASKS, N_NEW, N_OUTPUTS)
    assert var.shape == (N_TASKS, N_NEW)
    for t in range(N_TASKS):
        keep = weight[t] > 0  # the textbook sees only the real rows
        s = _per_task(prior_std, t, per_task_prior)
        sigma2 = _per_task(noise_var, t, per_task_prior)
        w_mean, w_cov = _textbook(
            features[t][keep],
            targets[t][keep],
            weight[t][keep],
            _per_task(prior_mean, t, per_task_prior),
            s,
            sigma2,
        )
        np.testing.assert_allclose(posterior.mean[t].numpy(), w_mean, rtol=1e-9)
        np.testing.assert_allclose(mean[t], new[t] @ w_mean, rtol=1e-9, atol=1e-12)
        expected_var = sigma2 + np.einsum("rf,fg,rg->r", new[t], w_cov, new[t])
        np.testing.assert_allclose(var[t], expected_var, rtol=1e-9)


def test_padding_rows_change_nothing():
    problem = _problem()
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    _, mean, var = _solve(*problem)
    # The same tasks with different junk in the padding rows, and with more of it.
    pad = np.zeros((N_TASKS, 3))
    wider = [
        np.concatenate([features, np.full((N_TASKS, 3, N_FEATURES), -7.0)], 1),
        np.concatenate([targets, np.full((N_TASKS, 3, N_OUTPUTS), 99.0)], 1),
        np.concatenate([weight, pad], 1),
    ]
    _, mean2, var2 = _solve(*wider, prior_mean, prior_std, noise_var, new)
    np.testing.assert_allclose(mean2, mean, rtol=1e-10)
    np.testing.assert_allclose(var2, var, rtol=1e-10)


def test_batched_over_tasks_equals_a_loop_over_tasks():
    problem = _problem(seed=1)
    _, mean, var = _solve(*problem)
    for t in range(N_TASKS):
        one = [value[t : t + 1] for value in problem]
        _, mean_t, var_t = _solve(*one)
        np.testing.assert_allclose(mean_t[0], mean[t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(var_t[0], var[t], rtol=1e-10)


def test_multi_output_is_one_solve_per_output():
    # Each output column alone gives the same mean and the same variance.
    problem = _problem(seed=2, n_outputs=3)
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    _, mean, var = _solve(*problem)
    for j in range(3):
        _, mean_j, var_j = _solve(
            features,
            targets[..., j : j + 1],
            weight,
            prior_mean[..., j : j + 1],
            prior_std,
            noise_var,
            new,
        )
        np.testing.assert_allclose(mean_j[..., 0], mean[..., j], rtol=1e-10)
        np.testing.assert_allclose(var_j, var, rtol=1e-10)


def test_flat_prior_and_small_noise_give_least_squares():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(N_TASKS, 20, N_FEATURES))
    targets = rng.normal(size=(N_TASKS, 20, N_OUTPUTS))
    weight = np.ones((N_TASKS, 20))
    _, mean, _ = _solve(
        features,
        targets,
        weight,
        rng.normal(size=(N_FEATURES, N_OUTPUTS)),  # forgotten under a flat prior
        np.full(N_FEATURES, 1e3),
        np.asarray(1e-4),
        features,
    )
    for t in range(N_TASKS):
        ols = LinearRegression(fit_intercept=False).fit(features[t], targets[t])
        np.testing.assert_allclose(mean[t], ols.predict(features[t]), atol=1e-6)


def test_no_support_rows_leave_the_prior():
    problem = list(_problem(seed=4))
    problem[2] = np.zeros_like(problem[2])
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    posterior, mean, var = _solve(*problem)
    np.testing.assert_allclose(posterior.mean.numpy(), prior_mean, rtol=1e-12)
    for t in range(N_TASKS):
        prior_cov = np.diag(prior_std[t] ** 2)
        np.testing.assert_allclose(mean[t], new[t] @ prior_mean[t], rtol=1e-12)
        expected = noise_var[t] + np.einsum("rf,fg,rg->r", new[t], prior_cov, new[t])
        np.testing.assert_allclose(var[t], expected, rtol=1e-12)


def test_zero_prior_mean_and_equal_std_is_sklearn_ridge():
    # Ridge minimises ||y - Phi w||^2_W + alpha ||w||^2: the posterior mean with
    # prior N(0, s^2 I), noise sigma^2 and alpha = sigma^2 / s^2.
    rng = np.random.default_rng(5)
    features = rng.normal(size=(N_TASKS, N_ROWS, N_FEATURES))
    targets = rng.normal(size=(N_TASKS, N_ROWS, N_OUTPUTS))
    weight = _weights(rng)
    s, sigma2 = 0.7, 0.4
    new = rng.normal(size=(N_TASKS, N_NEW, N_FEATURES))
    posterior, mean, _ = _solve(
        features,
        targets,
        weight,
        np.zeros((N_FEATURES, N_OUTPUTS)),
        np.full(N_FEATURES, s),
        np.asarray(sigma2),
        new,
    )
    for t in range(N_TASKS):
        ridge = Ridge(alpha=sigma2 / s**2, fit_intercept=False, solver="cholesky")
        ridge.fit(features[t], targets[t], sample_weight=weight[t])
        np.testing.assert_allclose(posterior.mean[t].numpy(), ridge.coef_.T, rtol=1e-8)
        np.testing.assert_allclose(mean[t], ridge.predict(new[t]), rtol=1e-8)


def test_predictive_variance_shrinks_with_more_rows():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(1, 30, N_FEATURES))
    targets = rng.normal(size=(1, 30, 1))
    new = rng.normal(size=(1, N_NEW, N_FEATURES))
    prior = (np.zeros((N_FEATURES, 1)), np.ones(N_FEATURES), np.asarray(0.5))
    variances = []
    for n in (0, 3, 10, 30):
        weight = (np.arange(30) < n).astype(float)[None]
        variances.append(_solve(features, targets, weight, *prior, new)[2][0])
    for fewer, more in zip(variances, variances[1:], strict=False):
        assert (more < fewer).all()
    assert (variances[-1] > 0.5).all()  # never below the noise


def test_float32_is_close_to_float64_for_ill_conditioned_features():
    # Whitened coordinates keep the factorisation well conditioned in float32.
    rng = np.random.default_rng(7)
    base = rng.normal(size=(2, 40, 1))
    features = np.concatenate([base, base + 1e-3 * rng.normal(size=base.shape)], -1)
    targets = rng.normal(size=(2, 40, 1))
    args = (
        features,
        targets,
        np.ones((2, 40)),
        np.zeros((2, 1)),
        np.full(2, 3.0),
        np.asarray(0.1),
    )
    posterior64 = ridge_posterior(*(_t(a) for a in args))
    posterior32 = ridge_posterior(*(_t(a).float() for a in args))
    out64 = ridge_predict(posterior64, _t(features), return_var=True)
    out32 = ridge_predict(posterior32, _t(features).float(), return_var=True)
    assert torch.isfinite(out32[0]).all() and torch.isfinite(out32[1]).all()
    np.testing.assert_allclose(out32[0].numpy(), out64[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(out32[1].numpy(), out64[1].numpy(), rtol=1e-3)


# -- the head with an RBF term ----------------------------------------------------
def _kernel_solve(problem, inputs, new_inputs, rbf_std, lengthscale):
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    posterior = kernel_posterior(
        _t(features),
        _t(inputs),
        _t(targets),
        _t(weight),
        _t(prior_mean),
        _t(prior_std),
        _t(noise_var),
        _t(rbf_std),
        _t(lengthscale),
    )
    mean, var = kernel_predict(posterior, _t(new), _t(new_inputs), return_var=True)
    # Without return_var: the mean alone.
    torch.testing.assert_close(
        kernel_predict(posterior, _t(new), _t(new_inputs)), mean, rtol=0, atol=0
    )
    return mean.numpy(), var.numpy()


def _inputs(seed, n_inputs=2):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(N_TASKS, N_ROWS, n_inputs)),
        rng.normal(size=(N_TASKS, N_NEW, n_inputs)),
    )


@pytest.mark.parametrize("per_task_prior", [True, False], ids=["per-task", "shared"])
def test_kernel_head_without_rbf_is_the_linear_head(per_task_prior):
    problem = _problem(seed=3, per_task_prior=per_task_prior)
    _, mean, var = _solve(*problem)
    inputs, new_inputs = _inputs(3)
    inputs[problem[2] == 0] = 1e3  # padding rows: wild inputs too
    got_mean, got_var = _kernel_solve(problem, inputs, new_inputs, 0.0, [1.0])
    np.testing.assert_allclose(got_mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_var, var, rtol=1e-9)


@pytest.mark.parametrize("lengthscale", [[0.7], [0.5, 2.0]], ids=["one", "per-input"])
def test_kernel_head_rbf_alone_matches_sklearn_gaussian_process(lengthscale):
    # No linear part (prior std 0), unit row weights: a zero-mean Gaussian
    # process with an RBF kernel and noise, which sklearn solves its own way.
    features, targets, _, _, _, _, new = _problem(seed=4, n_outputs=1)
    inputs, new_inputs = _inputs(4)
    problem = (
        features,
        targets,
        np.ones((N_TASKS, N_ROWS)),
        np.zeros((N_FEATURES, 1)),
        np.zeros(N_FEATURES),
        np.asarray(0.3),
        new,
    )
    mean, var = _kernel_solve(problem, inputs, new_inputs, 1.7, lengthscale)
    for t in range(N_TASKS):
        kernel = ConstantKernel(1.7**2, "fixed") * RBF(lengthscale, "fixed")
        gp = GaussianProcessRegressor(kernel, alpha=0.3, optimizer=None)
        gp.fit(inputs[t], targets[t, :, 0])
        expected_mean, expected_std = gp.predict(new_inputs[t], return_std=True)
        np.testing.assert_allclose(mean[t, :, 0], expected_mean, rtol=1e-7, atol=1e-10)
        # sklearn's std is of the latent function: the noise is added here.
        np.testing.assert_allclose(var[t], expected_std**2 + 0.3, rtol=1e-7)


def test_kernel_head_matches_the_textbook_gaussian_process():
    # Linear part with a prior mean, RBF term, per-input lengthscales and
    # weighted rows: the posterior of a Gaussian process whose row noise is
    # noise_var / weight, the padding rows left out, in numpy.
    problem = _problem(seed=5)
    features, targets, weight, prior_mean, prior_std, noise_var, new = problem
    inputs, new_inputs = _inputs(5, n_inputs=3)
    rbf_std = np.array([0.5, 1.0, 1.5, 2.0])
    lengthscale = np.array([[0.5, 1.0, 2.0]] * N_TASKS)
    mean, var = _kernel_solve(problem, inputs, new_inputs, rbf_std, lengthscale)

    def k(phi_a, x_a, phi_b, x_b, t):
        d = cdist(x_a / lengthscale[t], x_b / lengthscale[t], "sqeuclidean")
        return (phi_a * prior_std[t] ** 2) @ phi_b.T + rbf_std[t] ** 2 * np.exp(-d / 2)

    for t in range(N_TASKS):
        keep = weight[t] > 0
        phi, x, y = features[t][keep], inputs[t][keep], targets[t][keep]
        gram = k(phi, x, phi, x, t) + np.diag(noise_var[t] / weight[t][keep])
        cross = k(new[t], new_inputs[t], phi, x, t)
        residual = y - phi @ prior_mean[t]
        expected = new[t] @ prior_mean[t] + cross @ np.linalg.solve(gram, residual)
        np.testing.assert_allclose(mean[t], expected, rtol=1e-9, atol=1e-12)
        prior_var = np.diag(k(new[t], new_inputs[t], new[t], new_inputs[t], t))
        latent = prior_var - np.einsum(
            "qs,sq->q", cross, np.linalg.solve(gram, cross.T)
        )
        np.testing.assert_allclose(var[t], noise_var[t] + latent, rtol=1e-9)


# -- Gaussian likelihood --------------------------------------------------------
def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(8)
    mean = rng.normal(size=(N_TASKS, N_ROWS, N_OUTPUTS))
    targets = rng.normal(size=(N_TASKS, N_ROWS, N_OUTPUTS))
    var = rng.uniform(0.1, 3.0, size=(N_TASKS, N_ROWS))
    weight = _weights(rng)
    got = gaussian_nll(_t(mean), _t(var), _t(targets), _t(weight)).numpy()
    assert got.shape == (N_TASKS,)
    for t in range(N_TASKS):
        per_row = -norm.logpdf(
            targets[t], loc=mean[t], scale=np.sqrt(var[t])[:, None]
        ).mean(1)
        expected = np.average(per_row, weights=weight[t])
        np.testing.assert_allclose(got[t], expected, rtol=1e-12)


def test_gaussian_nll_of_a_task_without_rows_is_zero():
    mean = torch.zeros(1, 3, 1, dtype=torch.float64)
    var = torch.ones(1, 3, dtype=torch.float64)
    got = gaussian_nll(mean, var, mean + 1.0, torch.zeros(1, 3, dtype=torch.float64))
    assert float(got) == 0.0


# -- prototypes -------------------------------------------------------------------
N_CLASSES = 4
N_COMPONENTS = 3


def _embedded(seed=9):
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(N_TASKS, N_ROWS, N_COMPONENTS))
    # Class 3 never appears; class 2 appears only on padding rows of task 1.
    labels = rng.integers(0, 2, size=(N_TASKS, N_ROWS))
    labels[:, 0] = 0
    labels[:, 1] = 1
    weight = _weights(rng)
    labels[1, -1] = 2
    return embedding, labels, weight


def _numpy_prototypes(embedding, labels, weight, prior=None, count=0.0):
    out = np.zeros((N_TASKS, N_CLASSES, N_COMPONENTS))
    for t in range(N_TASKS):
        for c in range(N_CLASSES):
            w = weight[t] * (labels[t] == c)
            total = (w[:, None] * embedding[t]).sum(0)
            n = w.sum()
            if prior is None:
                out[t, c] = total / n if n > 0 else 0.0
            else:
                out[t, c] = (total + count[t] * prior[c]) / (n + count[t])
    return out


def test_class_prototypes_are_weighted_class_means():
    embedding, labels, weight = _embedded()
    prototypes, counts = class_prototypes(
        _t(embedding), torch.as_tensor(labels), _t(weight), N_CLASSES
    )
    np.testing.assert_allclose(
        prototypes.numpy(), _numpy_prototypes(embedding, labels, weight), rtol=1e-12
    )
    for c in range(N_CLASSES):
        np.testing.assert_allclose(
            counts[:, c].numpy(), (weight * (labels == c)).sum(1), rtol=1e-12
        )
    # Absent classes (and a class on padding rows only) are zeros, not NaN.
    assert (prototypes[:, 3] == 0).all() and (prototypes[1, 2] == 0).all()


@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
def test_class_prototypes_shrink_toward_the_prior(per_task):
    embedding, labels, weight = _embedded(seed=10)
    rng = np.random.default_rng(11)
    prior = rng.normal(size=(N_CLASSES, N_COMPONENTS))
    count = rng.uniform(0.5, 3.0, size=N_TASKS) if per_task else 1.7
    prototypes, _ = class_prototypes(
        _t(embedding),
        torch.as_tensor(labels),
        _t(weight),
        N_CLASSES,
        prior=_t(prior),
        prior_count=_t(count) if per_task else count,
    )
    expected = _numpy_prototypes(
        embedding, labels, weight, prior, np.broadcast_to(count, N_TASKS)
    )
    np.testing.assert_allclose(prototypes.numpy(), expected, rtol=1e-12)
    # A class without support rows keeps its prior prototype.
    np.testing.assert_allclose(prototypes[:, 3].numpy(), np.tile(prior[3], (4, 1)))


def test_prototype_logits_are_negative_squared_distances():
    rng = np.random.default_rng(12)
    embedding = rng.normal(size=(N_TASKS, N_ROWS, N_COMPONENTS))
    prototypes = rng.normal(size=(N_TASKS, N_CLASSES, N_COMPONENTS))
    logits = prototype_logits(_t(embedding), _t(prototypes)).numpy()
    assert logits.shape == (N_TASKS, N_ROWS, N_CLASSES)
    for t in range(N_TASKS):
        expected = -cdist(embedding[t], prototypes[t], "sqeuclidean")
        np.testing.assert_allclose(logits[t], expected, rtol=1e-10, atol=1e-12)


def test_prototype_logits_have_a_finite_gradient_at_the_prototype():
    # A class with a single support row: its prototype is that row.
    embedding = torch.tensor(
        [[[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]], dtype=torch.float64
    ).requires_grad_()
    labels = torch.tensor([[0, 1, 1]])
    prototypes, _ = class_prototypes(
        embedding, labels, torch.ones(1, 3, dtype=torch.float64), 2
    )
    logits = prototype_logits(embedding, prototypes)
    assert logits[0, 0, 0] == 0.0
    loss = torch.nn.functional.cross_entropy(logits[0], labels[0])
    (grad,) = torch.autograd.grad(loss, embedding)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def _random_intercept_by_hand(inputs, targets, task_codes):
    """The empirical-Bayes random-intercept fit, one output at a time, in loops."""
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    mean = Ridge(alpha=1e-3 * len(inputs), fit_intercept=False).fit(design, targets)
    mean = mean.coef_.T
    residual = targets - design @ mean
    tasks = np.unique(task_codes)
    within, spread = [], []
    for j in range(targets.shape[1]):
        task_means = np.array([residual[task_codes == t, j].mean() for t in tasks])
        within.append(
            sum(
                ((residual[task_codes == t, j] - m) ** 2).sum()
                for t, m in zip(tasks, task_means, strict=True)
            )
        )
        spread.append(task_means.var(ddof=1))
    counts = np.array([(task_codes == t).sum() for t in tasks])
    noise = np.mean(within) / (counts - 1).sum()
    between = np.maximum(np.array(spread) - (noise / counts).mean(), 0).mean()
    return mean, np.sqrt(between), noise


@pytest.mark.parametrize("class_codes", [False, True])
def test_random_intercept_matches_a_loop_over_outputs(class_codes):
    # 300 classes make two blocks of one-hot columns when given as codes.
    rng = np.random.default_rng(0)
    n_classes = 300
    inputs = rng.normal(size=(900, 3))
    task_codes = rng.integers(0, 30, size=900)
    labels = rng.integers(0, n_classes, size=900)
    one_hot = np.eye(n_classes)[labels]
    expected_mean, expected_std, expected_noise = _random_intercept_by_hand(
        inputs, one_hot, task_codes
    )
    if class_codes:
        mean, std, noise = random_intercept(
            inputs, labels, task_codes, n_classes=n_classes
        )
    else:
        mean, std, noise = random_intercept(inputs, one_hot, task_codes)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-10)
    np.testing.assert_allclose(noise, expected_noise, rtol=1e-10)
    np.testing.assert_allclose(std[-1], max(expected_std, 0.01), rtol=1e-8)


def test_gaussian_nll_is_the_weighted_mean_for_fractional_weights():
    # Total weights between 1 and 2 (one row of weight 1.5, two rows of 0.6 and
    # 0.7): still the weighted mean, not a sum divided by a larger floor.
    rng = np.random.default_rng(13)
    mean = rng.normal(size=(2, 3, 1))
    targets = rng.normal(size=(2, 3, 1))
    var = rng.uniform(0.2, 2.0, size=(2, 3))
    weight = np.array([[1.5, 0.0, 0.0], [0.6, 0.7, 0.0]])
    got = gaussian_nll(_t(mean), _t(var), _t(targets), _t(weight)).numpy()
    for t in range(2):
        per_row = -norm.logpdf(targets[t, :, 0], mean[t, :, 0], np.sqrt(var[t]))
        expected = np.average(per_row, weights=weight[t])
        np.testing.assert_allclose(got[t], expected, rtol=1e-12)


def test_class_prototypes_with_weights_below_one_are_weighted_means():
    # Each class's support weight is below 1: the prototype is still its mean.
    embedding, labels, _ = _embedded(seed=14)
    weight = np.random.default_rng(15).uniform(0.01, 0.2, size=(N_TASKS, N_ROWS))
    prototypes, _ = class_prototypes(
        _t(embedding), torch.as_tensor(labels), _t(weight), N_CLASSES
    )
    np.testing.assert_allclose(
        prototypes.numpy(), _numpy_prototypes(embedding, labels, weight), rtol=1e-10
    )


def _random_intercept_data(task_sizes, n_outputs, seed=16):
    """Rows of tasks whose targets share slopes and differ by a task intercept."""
    rng = np.random.default_rng(seed)
    task_codes = np.repeat(np.arange(len(task_sizes)) * 3 + 5, task_sizes)
    inputs = rng.normal(size=(len(task_codes), 2))
    slopes = rng.normal(size=(2, n_outputs))
    intercepts = 2.0 * rng.normal(size=(len(task_sizes), n_outputs))
    _, index = np.unique(task_codes, return_inverse=True)
    targets = (
        inputs @ slopes
        + intercepts[index]
        + 0.5 * rng.normal(size=(len(task_codes), n_outputs))
    )
    return inputs, targets, task_codes


@pytest.mark.parametrize(
    "task_sizes",
    [[20] * 12, [15, 25], [2, 1]],
    ids=["twelve-tasks", "two-tasks", "three-rows"],
)
@pytest.mark.parametrize("n_outputs", [2, 3])
def test_random_intercept_estimates_the_task_spread(task_sizes, n_outputs):
    # Real task intercepts (std 2): the method-of-moments between-task variance
    # is positive, so the intercept's prior std is estimated, not the floor.
    inputs, targets, task_codes = _random_intercept_data(task_sizes, n_outputs)
    mean, std, noise = random_intercept(inputs, targets, task_codes)
    expected_mean, expected_std, expected_noise = _random_intercept_by_hand(
        inputs, targets, task_codes
    )
    np.testing.assert_allclose(mean, expected_mean, atol=1e-10)
    np.testing.assert_allclose(noise, expected_noise, rtol=1e-10)
    assert std.dtype == np.float64 and std.shape == (3,)
    np.testing.assert_allclose(std[:-1], 0.01)  # the slopes: the fixed start
    if len(task_sizes) == 12:
        assert expected_std > 0.5  # the spread is there to find
    np.testing.assert_allclose(std[-1], max(expected_std, 0.01), rtol=1e-8)


def test_random_intercept_of_one_task_has_no_task_spread():
    # One task: no spread of task means to estimate; the intercept's prior std
    # is the floor, not NaN, and the noise is the residual variance (ddof 1).
    inputs, targets, task_codes = _random_intercept_data([30], 2)
    mean, std, noise = random_intercept(inputs, targets, task_codes)
    assert np.isfinite(std).all()
    np.testing.assert_allclose(std, 0.01)
    residual = targets - np.hstack([inputs, np.ones((30, 1))]) @ mean
    within = ((residual - residual.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(noise, within.mean() / 29, rtol=1e-10)


def test_base_targets_are_the_predictions_or_their_class_probabilities():
    rng = np.random.default_rng(17)
    columns = rng.normal(scale=3.0, size=(6, 3))
    # Regression: the base predictions themselves.
    np.testing.assert_array_equal(base_targets(columns, 3, False), columns)
    # Classes: the softmax of the offset logits, finite for huge logits too.
    np.testing.assert_allclose(
        base_targets(columns, 3, True), softmax(columns, axis=1), rtol=1e-12
    )
    huge = columns + 1000.0
    np.testing.assert_allclose(
        base_targets(huge, 3, True), softmax(columns, axis=1), rtol=1e-10
    )
    # Two classes from one column of log-odds of class 1.
    log_odds = columns[:, :1]
    expected = np.hstack([1 - expit(log_odds), expit(log_odds)])
    np.testing.assert_allclose(base_targets(log_odds, 2, True), expected, rtol=1e-12)
    # Two classes from two columns of logits: a softmax, not log-odds.
    np.testing.assert_allclose(
        base_targets(columns[:, :2], 2, True),
        softmax(columns[:, :2], axis=1),
        rtol=1e-12,
    )


def test_base_targets_are_finite_for_rows_on_very_different_scales():
    # Each row is shifted by its own largest logit: a row of huge logits next
    # to a row of small ones must not underflow the small row to 0 / 0.
    columns = np.array([[1000.0, 999.0, 998.0], [0.0, 1.0, -1.0], [-900.0, -901, -899]])
    np.testing.assert_allclose(
        base_targets(columns, 3, True),
        softmax(columns, axis=1),
        rtol=1e-12,
    )


# -- the held-out episodes of early stopping -----------------------------------------
def _pool_of_tasks(n_tasks, rows=12):
    """Regression rows whose first feature is the task, the second the row."""
    task = np.repeat(np.arange(n_tasks), rows)
    X = np.column_stack([task, np.tile(np.arange(rows), n_tasks)]).astype(float)
    return build_pool(
        X,
        np.zeros(len(X)),
        task,
        np.zeros(len(X), dtype=np.int64),
        n_tasks,
        1,
        device="cpu",
        dtype=torch.float64,
    )


@pytest.mark.parametrize("k, sizes", [(8, [2, 4, 8]), (3, [1, 3])])
def test_validation_episodes_follow_their_contract(k, sizes):
    """Every fold's held-out tasks in turn, each with support sizes k // 4,
    k // 2 and k (distinct, at least 1); at least 48 episodes; units numbered
    by task across folds (by episode for a fold of one task); the last member
    a weight-0 copy of the first fold."""
    pools = [_pool_of_tasks(3), _pool_of_tasks(2), _pool_of_tasks(1)]
    generator = torch.Generator().manual_seed(0)
    support, query, units = MetaRidgeRegressor()._validation_episodes(
        pools, k, 2, None, generator
    )
    n_episodes = 48
    assert support[0].shape[:2] == query[0].shape[:2] == (4, n_episodes)
    turn = np.arange(n_episodes) // len(sizes)
    for member, n_tasks in enumerate([3, 2, 1]):
        task = turn % n_tasks
        # Every row of an episode comes from its task.
        for part in (support, query):
            rows = part[0][member, :, :, 0].numpy()
            weight = part[2][member].numpy()
            assert np.all((rows == task[:, None]) | (weight == 0))
        np.testing.assert_array_equal(
            (support[2][member] > 0).sum(1).numpy(), np.resize(sizes, n_episodes)
        )
    np.testing.assert_array_equal(
        units.numpy(),
        [turn % 3, turn % 2 + 3, np.arange(n_episodes) + 5, turn % 3],
    )
    # The last member: the first fold's episodes with weight 0.
    for part in (support, query):
        torch.testing.assert_close(part[0][3], part[0][0])
        torch.testing.assert_close(part[1][3], part[1][0])
        assert not part[2][3].any()


def _kind_weights(learned, linear, target):
    """MetaRidgeRegressor's choice of kind weights on one member's held-out
    episodes (one unit per episode)."""
    n_episodes = target.shape[1]
    query = (None, target, torch.ones(target.shape[:-1], dtype=target.dtype))
    units = torch.arange(n_episodes).unsqueeze(0)
    return MetaRidgeRegressor()._choose_weights(
        {"learned": learned, "linear": linear}, (None, query, units)
    )


def test_kind_weights_are_chosen_on_the_grid_by_the_one_standard_error_rule():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(1, 30, 10, 1, generator=gen, dtype=torch.float64)
    error = torch.randn(target.shape, generator=gen, dtype=torch.float64)
    # Errors of opposite signs: the even mix is exact, and every other weight
    # of the 0, 0.05, ..., 1 grid is clearly worse.
    assert _kind_weights(target + error, target - error, target) == {
        "learned": 0.5,
        "linear": 0.5,
    }
    # A learned model no better than the linear one: the linear one keeps it.
    assert _kind_weights(target + error, target + 0.9 * error, target) == {
        "learned": 0.0,
        "linear": 1.0,
    }
    # A much better learned model takes the weight that is within noise of
    # its best: 0.95 leaves 5% of the linear model's error, within noise here.
    weights = _kind_weights(target + 0.01 * error, target + error, target)
    assert weights["learned"] in np.linspace(0.0, 1.0, 21)[15:]
    assert weights["learned"] + weights["linear"] == 1.0
