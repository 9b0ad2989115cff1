"""Tests of the members of the closed-form meta-learners.

Several independently initialised members train as one batched computation:
member ``i`` must compute, keep and learn exactly what copy ``i`` alone would.
The offset of a base estimator's predictions is checked against the textbook
posterior of what the offset leaves.
"""

import copy

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from torch import nn

from sktransfer.meta._heads import (
    PriorInit,
    ProtoMembers,
    RidgeMembers,
    StackedNetwork,
)
from sktransfer.nn import MLP

N_INPUTS = 3
N_COMPONENTS = 4
N_MEMBERS = 3


class Gated(nn.Module):
    """Not a plain Sequential (LayerNorm, a product, a buffer): the vmap path."""

    def __init__(self, n_features=N_INPUTS, n_outputs=N_COMPONENTS):
        super().__init__()
        self.inp = nn.Linear(n_features, 6)
        self.gate = nn.Linear(n_features, 6)
        self.norm = nn.LayerNorm(6)
        self.out = nn.Linear(6, n_outputs)
        self.register_buffer("shift", torch.linspace(-1.0, 1.0, 6))

    def forward(self, X):
        h = torch.tanh(self.inp(X)) * torch.sigmoid(self.gate(X))
        return self.out(self.norm(h + self.shift))


def _copies(kind, n=N_MEMBERS, seed=0, n_inputs=N_INPUTS, dtype=torch.float64):
    """Independently initialised copies; heads are built on float32 ones, as in fit."""
    torch.manual_seed(seed)
    if kind == "mlp":
        nets = [MLP(n_inputs, N_COMPONENTS, hidden_layer_sizes=(8,)) for _ in range(n)]
    else:
        nets = [Gated(n_inputs) for _ in range(n)]
    return [net.to(dtype) for net in nets]


@pytest.mark.parametrize("kind", ["mlp", "gated"])
def test_stacked_member_computes_what_its_copy_computes(kind):
    copies = _copies(kind)
    stacked = StackedNetwork(copies)
    X = torch.randn(N_MEMBERS, 5, N_INPUTS, dtype=torch.float64)
    out = stacked(X)
    assert out.shape == (N_MEMBERS, 5, N_COMPONENTS)
    for i, net in enumerate(copies):
        with torch.no_grad():
            torch.testing.assert_close(out[i], net(X[i]), rtol=1e-12, atol=1e-12)
    # The copies were initialised independently: the members differ.
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("kind", ["mlp", "gated"])
def test_member_returns_a_module_equal_to_its_copy(kind):
    copies = _copies(kind)
    stacked = StackedNetwork(copies)
    X = torch.randn(5, N_INPUTS, dtype=torch.float64)
    for i, net in enumerate(copies):
        member = stacked.member(i)
        assert type(member) is type(net)
        expected = net.state_dict()
        got = member.state_dict()
        assert got.keys() == expected.keys()
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
        with torch.no_grad():
            torch.testing.assert_close(member(X), net(X), rtol=0, atol=0)
        # A copy: editing it leaves the stacked weights alone.
        with torch.no_grad():
            next(member.parameters()).add_(1.0)
        torch.testing.assert_close(
            stacked.member(i).state_dict(), expected, rtol=0, atol=0
        )
    assert StackedNetwork(_copies(kind, dtype=torch.float32)).n_outputs(N_INPUTS) == 4


def test_members_are_independent_trainable_modules():
    # module_ of a closed-form estimator is member 0: a plain module of its own
    # that a user can train further, sharing nothing with the other members.
    copies = _copies("mlp")
    stacked = StackedNetwork(copies)
    members = [stacked.member(i) for i in range(N_MEMBERS)]
    X = torch.randn(5, N_INPUTS, dtype=torch.float64)
    for member, net in zip(members, copies, strict=True):
        assert all(p.requires_grad for p in member.parameters())
        with torch.no_grad():
            torch.testing.assert_close(member(X), net(X), rtol=0, atol=0)
    loss = members[0](X).square().sum()
    loss.backward()
    with torch.no_grad():
        for p in members[0].parameters():
            p.sub_(p.grad)
    with torch.no_grad():
        torch.testing.assert_close(members[1](X), copies[1](X), rtol=0, atol=0)
        assert not torch.allclose(members[0](X), copies[0](X))
        torch.testing.assert_close(
            stacked(X.expand(N_MEMBERS, *X.shape))[0],
            copies[0](X),
            rtol=1e-12,
            atol=1e-12,
        )


def test_stacked_network_only_trains_and_saves_the_stacked_weights():
    stacked = StackedNetwork(_copies("gated"))
    names = {name for name, _ in stacked.named_parameters()}
    assert names == {"weights." + n.replace(".", "__") for n in stacked.names}
    assert set(stacked.state_dict()) == names
    stacked.float()  # the template moves with the module
    X = torch.randn(N_MEMBERS, 2, N_INPUTS)
    assert stacked(X).dtype == torch.float32


# -- keeping and restoring members ---------------------------------------------
def _prior(n_members, n_outputs, *, mean=None, std=None, noise_var=None, seed=0):
    """A `PriorInit` for the weights of ``[x, 1]`` (random where not given)."""
    rng = np.random.default_rng(seed)
    shape = (n_members, N_INPUTS + 1)
    return PriorInit(
        rng.normal(size=(*shape, n_outputs))
        if mean is None
        else np.full((*shape, n_outputs), mean),
        rng.uniform(0.2, 1.0, size=shape) if std is None else np.full(shape, std),
        rng.uniform(0.2, 1.0, size=n_members)
        if noise_var is None
        else np.full(n_members, noise_var),
    )


def _ridge(body, n_members, *, classification=False, shared=True, **kw):
    """Ridge members, float64; ``shared``: with a `PriorInit` (a learned mean)."""
    n_outputs = 3 if classification else 2
    prior = _prior(n_members, n_outputs) if shared else None
    members = RidgeMembers(
        body,
        n_members,
        N_INPUTS,
        n_outputs,
        classification=classification,
        prior=prior,
        **kw,
    )
    return members.double()


def test_prior_init_starts_each_member_where_it_says():
    prior = _prior(2, 2, seed=5)
    torch.manual_seed(0)
    body = StackedNetwork([MLP(N_INPUTS, N_COMPONENTS, hidden_layer_sizes=(8,))] * 2)
    members = RidgeMembers(
        body, 2, N_INPUTS, 2, classification=False, prior=prior, learned_std=0.3
    )
    mean, _, std, noise_var = members.prior()
    assert isinstance(members.prior_mean, nn.Parameter)  # learned
    np.testing.assert_allclose(mean[:, N_COMPONENTS:].detach(), prior.mean, rtol=1e-6)
    assert (mean[:, :N_COMPONENTS] == 0).all()
    np.testing.assert_allclose(std[:, N_COMPONENTS:].detach(), prior.std, rtol=1e-5)
    np.testing.assert_allclose(std[:, :N_COMPONENTS].detach(), 0.3, rtol=1e-5)
    np.testing.assert_allclose(noise_var.detach(), prior.noise_var, rtol=1e-5)


def _scramble(module, seed=1):
    """Give every member's head parameters distinct values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.parameters():
            value.add_(0.3 * torch.randn(value.shape, generator=generator).double())
        for value in module.buffers():
            value.add_(torch.randn(value.shape, generator=generator).double())
    return module


def _support_query(n_members, *, classification, n_episodes=2, seed=0, n_out=2):
    generator = torch.Generator().manual_seed(seed)

    def split(n_rows):
        X = torch.randn(
            n_members, n_episodes, n_rows, N_INPUTS, generator=generator
        ).double()
        if classification:
            y = torch.randint(3, (n_members, n_episodes, n_rows), generator=generator)
        else:
            y = torch.randn(
                n_members, n_episodes, n_rows, n_out, generator=generator
            ).double()
        weight = torch.ones(n_members, n_episodes, n_rows, dtype=torch.float64)
        weight[:, -1, -2:] = 0.0  # padding in the last episode
        return X, y, weight

    return split(6), split(5)


@pytest.mark.parametrize("shared", [True, False])
def test_keep_member_keeps_the_right_member(shared):
    members = _scramble(
        _ridge(
            StackedNetwork(_copies("mlp", dtype=torch.float32)),
            N_MEMBERS,
            shared=shared,
        )
    )
    support, query = _support_query(N_MEMBERS, classification=False)
    with torch.no_grad():
        before = members.predict(members.posterior(*support), query[0])
    states = [members.member_state(i) for i in range(N_MEMBERS)]
    network = members.body.member(1)
    members.keep_member(1)
    assert members.n_members == 1
    for name, value in members.member_state(0).items():
        torch.testing.assert_close(value, states[1][name], rtol=0, atol=0)
    torch.testing.assert_close(
        members.body.member(0).state_dict(), network.state_dict(), rtol=0, atol=0
    )
    with torch.no_grad():
        after = members.predict(
            members.posterior(*(part[1:2] for part in support)), query[0][1:2]
        )
    torch.testing.assert_close(after[0][0], before[0][1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(after[1][0], before[1][1], rtol=1e-12, atol=1e-12)
    # What is kept is still trainable (or not) as before.
    assert isinstance(members.prior_mean, nn.Parameter) == shared
    assert all(p.requires_grad for p in members.parameters())


def test_member_state_and_load_member_state_restore_one_member():
    members = _scramble(
        _ridge(
            StackedNetwork(_copies("gated", dtype=torch.float32)),
            N_MEMBERS,
            classification=True,
        )
    )
    states = [members.member_state(i) for i in range(N_MEMBERS)]
    # member_state is a detached copy: later training does not change it.
    with torch.no_grad():
        for value in members.parameters():
            value.mul_(2.0)
    for name, value in members.member_state(0).items():
        assert not torch.equal(value, states[0][name]), name
    members.load_member_state(2, states[0])
    for name, value in members.member_state(2).items():
        torch.testing.assert_close(value, states[0][name], rtol=0, atol=0)
    members.load_member_state(0, states[0])
    members.load_member_state(1, states[1])
    for i in range(2):
        for name, value in members.member_state(i).items():
            torch.testing.assert_close(value, states[i][name], rtol=0, atol=0)


# -- members learn independently ------------------------------------------------------
def _make(kind, copies):
    body = StackedNetwork(copies)
    if kind == "proto":
        return ProtoMembers(body, len(copies), N_INPUTS, 3, shared=True).double()
    kernel = kind.rpartition("-")[2] if kind.count("-") == 2 else "linear"
    return _ridge(
        body,
        len(copies),
        classification="classification" in kind,
        kernel=kernel,
    )


@pytest.mark.parametrize(
    "kind",
    [
        "ridge-regression",
        "ridge-classification",
        "proto",
        "ridge-regression-ard",
        "ridge-classification-rbf",
    ],
)
def test_each_member_learns_as_if_trained_alone(kind):
    # Two members on different data: the summed loss gives member i only its
    # own gradient, and AdamW is elementwise, so each member follows the path
    # of a single-member model started from the same weights.
    classification = not kind.startswith("ridge-regression")
    copies = _copies("mlp", n=2, dtype=torch.float32)
    both = _scramble(_make(kind, copies))
    alone = []
    for i in range(2):
        single = _make(kind, [copy.deepcopy(copies[i])])
        single.load_member_state(0, both.member_state(i))
        alone.append(single)
    support, query = _support_query(2, classification=classification, seed=3)

    def train(module, support, query):
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.05, weight_decay=1e-2)
        for _ in range(5):
            optimizer.zero_grad()
            module.episode_losses(support, query).mean(1).sum().backward()
            optimizer.step()

    start = both.member_state(0)
    train(both, support, query)
    for i, single in enumerate(alone):
        train(
            single,
            *[tuple(part[i : i + 1] for part in side) for side in (support, query)],
        )
        for name, value in both.member_state(i).items():
            torch.testing.assert_close(
                value, single.member_state(0)[name], rtol=1e-9, atol=1e-10
            )
    # And training did move the weights.
    moved = [not torch.equal(v, start[n]) for n, v in both.member_state(0).items()]
    assert all(moved)


# -- the offset of a base estimator -------------------------------------------------
def _textbook_posterior(features, targets, prior_std, noise_var):
    cov = np.linalg.inv(np.diag(1.0 / prior_std**2) + features.T @ features / noise_var)
    return cov @ features.T @ targets / noise_var, cov


def _phi(members, X):
    """``[g(x), x, 1]``, written out here from the member's network."""
    with torch.no_grad():
        learned = members.body.member(0)(X).numpy()
    X = X.numpy()
    return np.hstack([learned, X, np.ones((len(X), 1))])


def _offset_members(classification, n_outputs):
    torch.manual_seed(0)
    body = StackedNetwork([MLP(N_INPUTS, N_COMPONENTS, hidden_layer_sizes=(8,))])
    members = RidgeMembers(
        body,
        1,
        N_INPUTS,
        n_outputs,
        n_offset=1 if classification and n_outputs == 2 else n_outputs,
        classification=classification,
        prior=_prior(1, n_outputs, mean=0.0, std=0.7, noise_var=0.3),
        learned_std=0.4,
        scale=4.0,
    ).double()
    return members


@pytest.mark.parametrize("n_support", [6, 0])
def test_regression_offset_plus_posterior_of_the_residual(n_support):
    members = _offset_members(False, 1)
    rng = np.random.default_rng(0)
    X_s, X_q = rng.normal(size=(6, N_INPUTS)), rng.normal(size=(4, N_INPUTS))
    y_s = rng.normal(size=(6, 1))
    weight = (np.arange(6) < n_support).astype(float)
    with torch.no_grad():
        posterior = members.posterior(
            torch.as_tensor(X_s)[None, None],
            torch.as_tensor(y_s)[None, None],
            torch.as_tensor(weight)[None, None],
        )
        mean, var = members.predict(posterior, torch.as_tensor(X_q)[None, None])
    offset_q = X_q[:, -1:]
    if n_support == 0:
        np.testing.assert_allclose(mean[0, 0].numpy(), offset_q, rtol=1e-12)
        return
    softplus = torch.nn.functional.softplus
    s = softplus(members.prior_std_[0]).detach().numpy()
    sigma2 = float(softplus(members.noise_var_[0].detach()))
    np.testing.assert_allclose(s, [0.4] * N_COMPONENTS + [0.7] * 4, rtol=1e-6)
    np.testing.assert_allclose(sigma2, 0.3, rtol=1e-6)
    residual = y_s - X_s[:, -1:]
    w, cov = _textbook_posterior(
        _phi(members, torch.as_tensor(X_s)), residual, s, sigma2
    )
    phi_q = _phi(members, torch.as_tensor(X_q))
    np.testing.assert_allclose(mean[0, 0].numpy(), offset_q + phi_q @ w, rtol=1e-9)
    expected_var = sigma2 + np.einsum("rf,fg,rg->r", phi_q, cov, phi_q)
    np.testing.assert_allclose(var[0, 0].numpy(), expected_var, rtol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_offset_plus_scaled_ridge_of_what_it_leaves(n_classes):
    members = _offset_members(True, n_classes)
    n_offset = members.n_offset
    rng = np.random.default_rng(1)
    X_s, X_q = rng.normal(size=(8, N_INPUTS)), rng.normal(size=(4, N_INPUTS))
    y_s = rng.integers(0, n_classes, size=8)
    with torch.no_grad():
        posterior = members.posterior(
            torch.as_tensor(X_s)[None, None],
            torch.as_tensor(y_s)[None, None],
            torch.ones(1, 1, 8, dtype=torch.float64),
        )
        logits, var = members.predict(posterior, torch.as_tensor(X_q)[None, None])
        empty = members.posterior(
            torch.as_tensor(X_s)[None, None],
            torch.as_tensor(y_s)[None, None],
            torch.zeros(1, 1, 8, dtype=torch.float64),
        )
        prior_logits, _ = members.predict(empty, torch.as_tensor(X_q)[None, None])
    assert var is None

    def offset_logits(X):
        offset = X[:, -n_offset:]
        return np.hstack([np.zeros((len(X), 1)), offset]) if n_classes == 2 else offset

    def softmax(z):
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    np.testing.assert_allclose(prior_logits[0, 0].numpy(), offset_logits(X_q))
    targets = np.eye(n_classes)[y_s] - softmax(offset_logits(X_s))
    softplus = torch.nn.functional.softplus
    s = softplus(members.prior_std_[0]).detach().numpy()
    sigma2 = float(softplus(members.noise_var_[0].detach()))
    w, _ = _textbook_posterior(_phi(members, torch.as_tensor(X_s)), targets, s, sigma2)
    scale = float(softplus(members.scale_[0].detach()))
    np.testing.assert_allclose(scale, 4.0, rtol=1e-6)
    expected = offset_logits(X_q) + scale * _phi(members, torch.as_tensor(X_q)) @ w
    np.testing.assert_allclose(logits[0, 0].numpy(), expected, rtol=1e-9)


def _scrambled_ridge(kernel):
    """Regression ridge members of ``kernel``, every parameter distinct."""
    body = StackedNetwork(_copies("mlp", dtype=torch.float32))
    return _scramble(_ridge(body, N_MEMBERS, kernel=kernel))


@pytest.mark.parametrize("kernel", ["linear", "rbf", "ard"])
def test_prior_is_the_posterior_without_support_rows(kernel):
    members = _scrambled_ridge(kernel)
    support, query = _support_query(N_MEMBERS, classification=False, n_episodes=1)
    empty = (support[0], support[1], torch.zeros_like(support[2]))
    with torch.no_grad():
        from_prior = members.predict(members.prior(), query[0])
        from_empty = members.predict(members.posterior(*empty), query[0])
    torch.testing.assert_close(from_prior[0], from_empty[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(from_prior[1], from_empty[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", ["rbf", "ard"])
def test_rbf_term_is_the_gaussian_process_of_the_members_parameters(kernel):
    # The posterior mean of member 1, episode 0, written out from the
    # member's parameters: "rbf" shares one prior std over the inputs' slopes
    # (their mean) and one lengthscale; "ard" has one of each per input.
    members = _scrambled_ridge(kernel)
    support, query = _support_query(N_MEMBERS, classification=False, n_episodes=1)
    with torch.no_grad():
        mean, _ = members.predict(members.posterior(*support), query[0])
    softplus = torch.nn.functional.softplus
    std = softplus(members.prior_std_[1].detach()).numpy()
    if kernel == "rbf":
        std[N_COMPONENTS:-1] = std[N_COMPONENTS:-1].mean()
    lengthscale = members.log_lengthscale[1].detach().exp().numpy()
    assert lengthscale.shape == ((1,) if kernel == "rbf" else (N_INPUTS,))
    rbf_var = float(softplus(members.rbf_std_[1].detach())) ** 2
    noise = float(softplus(members.noise_var_[1].detach()))
    X_s, y_s, w_s = (part[1, 0].numpy() for part in support)
    X_q = query[0][1, 0].numpy()
    phi_s = _phi_member(members, 1, X_s)
    phi_q = _phi_member(members, 1, X_q)

    def k(phi_a, x_a, phi_b, x_b):
        d = cdist(x_a / lengthscale, x_b / lengthscale, "sqeuclidean")
        return (phi_a * std**2) @ phi_b.T + rbf_var * np.exp(-d / 2)

    keep = w_s > 0
    prior_mean = members.prior_mean[1].detach().numpy()
    gram = k(phi_s[keep], X_s[keep], phi_s[keep], X_s[keep])
    gram = gram + np.diag(noise / w_s[keep])
    residual = y_s[keep] - phi_s[keep] @ prior_mean
    expected = phi_q @ prior_mean + k(phi_q, X_q, phi_s[keep], X_s[keep]) @ (
        np.linalg.solve(gram, residual)
    )
    np.testing.assert_allclose(mean[1, 0].numpy(), expected, rtol=1e-8, atol=1e-10)


def _phi_member(members, index, X):
    with torch.no_grad():
        learned = members.body.member(index).double()(torch.as_tensor(X)).numpy()
    return np.hstack([learned, X, np.ones((len(X), 1))])


# -- where training starts, and what it minimises --------------------------------
class _Squares(nn.Module):
    """Written for 2-D batches only: concatenates along the feature axis."""

    def __init__(self, n_features=N_INPUTS, n_outputs=N_COMPONENTS):
        super().__init__()
        self.out = nn.Linear(2 * n_features, n_outputs)

    def forward(self, X):
        return self.out(torch.cat([X, X.square()], dim=1))


def test_stacked_network_leaves_its_networks_alone_and_probes_2d_batches():
    copies = [_Squares() for _ in range(2)]
    stacked = StackedNetwork(copies)
    assert stacked.n_outputs(N_INPUTS) == N_COMPONENTS
    stacked.double()
    for net in copies:
        assert all(p.requires_grad for p in net.parameters())
        assert all(p.dtype == torch.float32 for p in net.parameters())
    X = torch.randn(2, 5, N_INPUTS, dtype=torch.float64)
    with torch.no_grad():
        out = stacked(X)
        for i, net in enumerate(copies):
            torch.testing.assert_close(out[i], net.double()(X[i]))


def test_heads_start_from_the_documented_prior():
    body = StackedNetwork(_copies("mlp", n=2, dtype=torch.float32))
    episodic = RidgeMembers(body, 2, N_INPUTS, 3, classification=True).double()
    mean, _, std, noise_var = episodic.prior()
    assert not isinstance(episodic.prior_mean, nn.Parameter)  # fixed at 0
    assert "prior_mean" in dict(episodic.named_buffers())
    assert mean.shape == (2, N_COMPONENTS + N_INPUTS + 1, 3)
    assert (mean == 0).all()
    np.testing.assert_allclose(std.detach(), 0.1, rtol=1e-6)
    np.testing.assert_allclose(noise_var.detach(), 0.8, rtol=1e-6)
    softplus = torch.nn.functional.softplus
    np.testing.assert_allclose(softplus(episodic.scale_).detach(), 10.0, rtol=1e-6)

    prior = _prior(2, 2, seed=3)
    body = StackedNetwork(_copies("mlp", n=2, dtype=torch.float32))
    shared = RidgeMembers(body, 2, N_INPUTS, 2, classification=False, prior=prior)
    shared = shared.double()
    _, _, std, _ = shared.prior()
    np.testing.assert_allclose(std[:, :N_COMPONENTS].detach(), 0.1, rtol=1e-5)
    # Without an offset, the prior predicts phi(x) @ prior mean.
    X = torch.randn(2, 1, 4, N_INPUTS, dtype=torch.float64)
    with torch.no_grad():
        out, _ = shared.predict(shared.prior(), X)
        for m in range(2):
            phi = torch.cat(
                [shared.body.member(m).double()(X[m, 0]), X[m, 0], torch.ones(4, 1)],
                1,
            )
            torch.testing.assert_close(out[m, 0], phi @ shared.prior_mean[m])

    body = StackedNetwork(_copies("mlp", n=2, dtype=torch.float32))
    proto = ProtoMembers(body, 2, N_INPUTS, 3, shared=True)
    assert proto.prior_prototypes.shape == (2, 3, N_COMPONENTS)
    assert (proto.prior_prototypes == 0).all()
    np.testing.assert_allclose(softplus(proto.prior_count_).detach(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kernel", ["rbf", "ard"])
def test_rbf_term_starts_as_large_as_the_slopes_at_the_inputs_scale(kernel):
    # Its variance is the slopes' prior variances summed, and its
    # lengthscale sqrt(n_inputs): standardised inputs are then about one
    # lengthscale apart.
    prior = _prior(2, 2, seed=3)
    body = StackedNetwork(_copies("mlp", n=2, dtype=torch.float32))
    members = RidgeMembers(
        body, 2, N_INPUTS, 2, classification=False, prior=prior, kernel=kernel
    ).double()
    softplus = torch.nn.functional.softplus
    slopes = np.sqrt((prior.std[:, :N_INPUTS] ** 2).sum(1))
    np.testing.assert_allclose(softplus(members.rbf_std_).detach(), slopes, rtol=1e-5)
    lengthscale = members.log_lengthscale.exp().detach().numpy()
    assert lengthscale.shape == (2, 1 if kernel == "rbf" else N_INPUTS)
    np.testing.assert_allclose(lengthscale, np.sqrt(N_INPUTS), rtol=1e-6)


def _embedded_by_hand(members, m, X):
    with torch.no_grad():
        return members.body.member(m).double()(X).numpy()


def test_shared_prototypes_shrink_toward_the_learned_priors():
    members = _scramble(_make("proto", _copies("mlp", n=2, dtype=torch.float32)))
    (X, y, weight), _ = _support_query(2, classification=True, n_episodes=2)
    with torch.no_grad():
        prototypes = members.posterior(X, y, weight)
    count = torch.nn.functional.softplus(members.prior_count_).detach().numpy()
    prior = members.prior_prototypes.detach().numpy()
    assert prototypes.shape == (4, 3, N_COMPONENTS)
    for m in range(2):
        for e in range(2):
            embedded = _embedded_by_hand(members, m, X[m, e])
            w = weight[m, e].numpy()
            for c in range(3):
                rows = (y[m, e].numpy() == c) * w
                expected = (rows @ embedded + count[m] * prior[m, c]) / (
                    rows.sum() + count[m]
                )
                np.testing.assert_allclose(
                    prototypes[2 * m + e, c].numpy(), expected, rtol=1e-9
                )


def _weighted_mean(per_row, weight):
    return (per_row * weight).sum() / max(weight.sum(), 1.0)


@pytest.mark.parametrize("kind", ["ridge-regression", "ridge-classification", "proto"])
def test_episode_losses_are_the_weighted_mean_query_loss(kind):
    classification = kind != "ridge-regression"
    members = _scramble(_make(kind, _copies("mlp", n=2, dtype=torch.float32)))
    support, query = _support_query(2, classification=classification, seed=5)
    query[2][0, 0] = 0.0
    query[2][0, 0, 1] = 1.0  # an episode with a single query row
    query[2][1, 1, 0] = 3.0  # and a heavier row
    with torch.no_grad():
        losses = members.episode_losses(support, query).numpy()
        out, var = members.predict(members.posterior(*support), query[0])
    assert losses.shape == (2, 2)
    X_s, y_s, w_s = support
    _, y_q, w_q = query
    for m in range(2):
        for e in range(2):
            if kind == "proto":  # logits of the prototypes, by hand
                embedded = _embedded_by_hand(members, m, X_s[m, e])
                protos = members.posterior(X_s, y_s, w_s)[2 * m + e].detach().numpy()
                q = _embedded_by_hand(members, m, query[0][m, e])
                logits = -((q[:, None, :] - protos[None]) ** 2).sum(-1)
                np.testing.assert_allclose(out[m, e].numpy(), logits, rtol=1e-9)
                del embedded
            if classification:
                z = out[m, e].numpy()
                z = z - z.max(1, keepdims=True)
                log_proba = z - np.log(np.exp(z).sum(1, keepdims=True))
                per_row = -log_proba[np.arange(len(z)), y_q[m, e].numpy()]
            else:
                v = var[m, e].numpy()[:, None]
                residual = y_q[m, e].numpy() - out[m, e].numpy()
                per_row = (0.5 * (np.log(2 * np.pi * v) + residual**2 / v)).mean(1)
            expected = _weighted_mean(per_row, w_q[m, e].numpy())
            np.testing.assert_allclose(losses[m, e], expected, rtol=1e-9)
