"""Tests of the functional MAML core.

The vectorised meta-gradient of `meta_loss` is checked against a plain loop
over tasks, written independently here, for every variant of the inner loop.
"""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from sktransfer.meta._inner_loop import (
    _is_plain_mlp,
    adapt,
    batched_forward,
    expand_params,
    head_parameter_names,
    init_lstm_update,
    lstm_step,
    meta_loss,
    preprocess,
    task_losses,
    task_scores,
)

N_FEATURES = 3
N_CLASSES = 3
N_TASKS = 4
N_SUPPORT = 5
N_QUERY = 6


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def make_mlp(n_out):
    return nn.Sequential(
        nn.Linear(N_FEATURES, 8),
        nn.Tanh(),
        nn.Linear(8, 8),
        nn.ReLU(),
        nn.Linear(8, n_out),
    )


class Wrapped(nn.Module):
    """A plain MLP hidden in a custom module: forces the vmap path."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class ResNorm(nn.Module):
    """Residual block with a LayerNorm: not a plain Sequential."""

    def __init__(self, n_out):
        super().__init__()
        self.inp = nn.Linear(N_FEATURES, 6)
        self.res = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, n_out)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = self.norm(h + torch.tanh(self.res(h)))
        return self.head(h)


def make_module(kind, n_out, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    if kind == "mlp":
        module = make_mlp(n_out)
    elif kind == "wrapped":
        module = Wrapped(make_mlp(n_out))
    else:
        module = ResNorm(n_out)
    return module.to(dtype)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def make_split(task, n_rows, dtype, generator):
    X = torch.randn(N_TASKS, n_rows, N_FEATURES, generator=generator, dtype=dtype)
    if task == "regression":
        y = torch.randn(N_TASKS, n_rows, 1, generator=generator, dtype=dtype)
    else:
        y = torch.randint(N_CLASSES, (N_TASKS, n_rows), generator=generator)
    # Padding rows (weight 0) in every task but the first, never all of them.
    weight = torch.ones(N_TASKS, n_rows, dtype=dtype)
    for b in range(1, N_TASKS):
        weight[b, n_rows - b :] = 0.0
    # Make the padding rows wild: they must not count.
    X[weight == 0] = 50.0
    return X, y, weight


def make_data(task, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    support = make_split(task, N_SUPPORT, dtype, generator)
    query = make_split(task, N_QUERY, dtype, generator)
    return support, query


def make_criterion(task):
    if task == "regression":
        return nn.MSELoss(reduction="none")
    return nn.CrossEntropyLoss(reduction="none")


# ---------------------------------------------------------------------------
# Reference: a plain loop over tasks
# ---------------------------------------------------------------------------


def reference_task_loss(module, criterion, params, X, y, w):
    """Weighted mean of the per-row losses of one task."""
    out = functional_call(module, params, (X,))
    per_row = criterion(out, y)
    if per_row.dim() > 1:
        per_row = per_row.mean(-1)
    return (per_row * w).sum() / w.sum()


def reference_preprocess(x, p=10.0):
    """Andrychowicz et al.'s preprocessing, value by value."""
    out = []
    for v in x.reshape(-1):
        if v.abs() >= math.exp(-p):
            out.append(torch.stack([torch.log(v.abs()) / p, torch.sign(v)]))
        else:
            out.append(torch.stack([-torch.ones_like(v), v * math.exp(p)]))
    return torch.stack(out).reshape(*x.shape, 2)


def reference_lstm_step(lstm, theta, grad, loss, state):
    """Ravi & Larochelle's update of one parameter tensor of one task.

    The coordinate-wise LSTM is torch's own ``nn.LSTMCell``; the gates and
    the update are written out: f = sigmoid(w_f . [h, theta, f_prev] + b_f),
    i likewise, theta <- f * theta - i * grad.
    """
    hidden_size = lstm["weight_hh"].shape[1]
    cell = nn.LSTMCell(4, hidden_size).to(theta.dtype)
    n = theta.numel()
    x = torch.cat(
        [
            reference_preprocess(grad).reshape(n, 2),
            reference_preprocess(loss).expand(n, 2),
        ],
        1,
    )
    cell_params = {k: lstm[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if state is None:
        h, c = functional_call(cell, cell_params, (x,))
        f_prev = i_prev = torch.zeros(n, dtype=theta.dtype)
    else:
        (h, c), (f_prev, i_prev) = (
            functional_call(cell, cell_params, (x, state[0])),
            state[1],
        )
    flat = theta.reshape(n)
    w, bias = lstm["weight_gates"], lstm["bias_gates"]
    f = torch.sigmoid(
        torch.cat([h, flat[:, None], f_prev[:, None]], 1) @ w[0] + bias[0]
    )
    i = torch.sigmoid(
        torch.cat([h, flat[:, None], i_prev[:, None]], 1) @ w[1] + bias[1]
    )
    new = f * flat - i * grad.reshape(n)
    return new.reshape(theta.shape), ((h, c), (f, i))


def reference_meta_loss(
    module,
    criterion,
    support,
    query,
    n_steps,
    adapt_names,
    first_order,
    inner_lrs=None,
    lstm=None,
):
    meta = dict(module.named_parameters())
    losses = []
    for b in range(support[0].shape[0]):
        theta = dict(meta)
        states = dict.fromkeys(adapt_names)
        for _ in range(n_steps):
            loss = reference_task_loss(
                module, criterion, theta, support[0][b], support[1][b], support[2][b]
            )
            grads = torch.autograd.grad(
                loss, [theta[n] for n in adapt_names], create_graph=not first_order
            )
            for name, grad in zip(adapt_names, grads, strict=True):
                if lstm is None:
                    theta[name] = theta[name] - inner_lrs[name] * grad
                else:
                    read = loss.detach() if first_order else loss
                    theta[name], states[name] = reference_lstm_step(
                        lstm, theta[name], grad, read, states[name]
                    )
        losses.append(
            reference_task_loss(
                module, criterion, theta, query[0][b], query[1][b], query[2][b]
            )
        )
    return torch.stack(losses).mean()


def grad_inputs(module, kwargs):
    inputs = list(module.parameters())
    learned = kwargs.get("inner_lrs") or kwargs.get("lstm")
    inputs += [value for value in learned.values() if torch.is_tensor(value)]
    return inputs


def reference_grads(module, criterion, support, query, **kwargs):
    loss = reference_meta_loss(module, criterion, support, query, **kwargs)
    # The LSTM's weight_hh has no gradient after one step (its state starts
    # at zero): materialised as zeros, as the reference's nn.LSTMCell has.
    return torch.autograd.grad(
        loss, grad_inputs(module, kwargs), allow_unused=True, materialize_grads=True
    )


def vectorised_grads(module, criterion, support, query, **kwargs):
    params = dict(module.named_parameters())
    loss = meta_loss(
        batched_forward(module), criterion, params, support, query, **kwargs
    )
    # The LSTM's weight_hh has no gradient after one step (its state starts
    # at zero): materialised as zeros, as the reference's nn.LSTMCell has.
    return torch.autograd.grad(
        loss, grad_inputs(module, kwargs), allow_unused=True, materialize_grads=True
    )


VARIANTS = {
    # name: (first_order, learned update: False, "lrs" or "lstm", head only)
    "maml": (False, False, False),
    "fomaml": (True, False, False),
    "metasgd": (False, "lrs", False),
    "metasgd-fo": (True, "lrs", False),
    "anil": (False, False, True),
    "anil-fo": (True, False, True),
    "anil-metasgd": (False, "lrs", True),
    "lstm": (False, "lstm", False),
    "lstm-fo": (True, "lstm", False),
    "anil-lstm": (False, "lstm", True),
}


def random_lstm(dtype, seed=2):
    """Parameters of the learned update far from a plain step: every gate and
    weight matters, and the update differs from any gradient step."""
    generator = torch.Generator().manual_seed(seed)
    lstm = init_lstm_update(0.1, hidden_size=5, generator=generator)
    lstm["weight_gates"] = torch.randn(2, 7, generator=generator)
    lstm["bias_gates"] = torch.tensor([1.0, -2.0])
    return {k: v.to(dtype).requires_grad_(True) for k, v in lstm.items()}


def variant_kwargs(module, variant, n_steps):
    first_order, learned, head_only = VARIANTS[variant]
    adapt_names = (
        head_parameter_names(module)
        if head_only
        else [name for name, _ in module.named_parameters()]
    )
    params = dict(module.named_parameters())
    if learned == "lstm":
        dtype = next(iter(params.values())).dtype
        return dict(
            lstm=random_lstm(dtype),
            n_steps=n_steps,
            adapt_names=adapt_names,
            first_order=first_order,
        )
    if learned:
        generator = torch.Generator().manual_seed(1)
        inner_lrs = {
            name: (
                0.05
                + 0.1
                * torch.rand(params[name].shape, generator=generator).to(
                    params[name].dtype
                )
            ).requires_grad_(True)
            for name in adapt_names
        }
    else:
        inner_lrs = dict.fromkeys(adapt_names, 0.1)
    return dict(
        inner_lrs=inner_lrs,
        n_steps=n_steps,
        adapt_names=adapt_names,
        first_order=first_order,
    )


def max_abs_diff(grads_a, grads_b):
    diff = 0.0
    for a, b in zip(grads_a, grads_b, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            diff = max(diff, (a - b).abs().max().item())
    return diff


def assert_grads_close(grads_a, grads_b, atol):
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, atol=atol, rtol=0)
    assert max_abs_diff(grads_a, grads_b) <= atol


# ---------------------------------------------------------------------------
# Meta-gradient equivalence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_steps", [1, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("kind", ["mlp", "wrapped", "resnorm"])
def test_meta_gradient_matches_loop(kind, task, variant, n_steps):
    n_out = 1 if task == "regression" else N_CLASSES
    module = make_module(kind, n_out)
    assert _is_plain_mlp(module) == (kind == "mlp")
    support, query = make_data(task)
    criterion = make_criterion(task)
    kwargs = variant_kwargs(module, variant, n_steps)

    expected = reference_grads(module, criterion, support, query, **kwargs)
    got = vectorised_grads(module, criterion, support, query, **kwargs)
    assert_grads_close(got, expected, atol=1e-5)
    # The comparison is not vacuous.
    assert any(g.abs().max() > 1e-3 for g in expected)


@pytest.mark.parametrize("variant", ["maml", "metasgd", "anil", "lstm"])
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_meta_gradient_matches_loop_float32(task, variant):
    n_out = 1 if task == "regression" else N_CLASSES
    module = make_module("mlp", n_out, dtype=torch.float32)
    support, query = make_data(task, dtype=torch.float32)
    criterion = make_criterion(task)
    kwargs = variant_kwargs(module, variant, n_steps=2)

    expected = reference_grads(module, criterion, support, query, **kwargs)
    got = vectorised_grads(module, criterion, support, query, **kwargs)
    assert_grads_close(got, expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "resnorm"])
def test_second_order_differs_from_first_order(kind):
    # Guards against create_graph being ignored: both would then agree.
    module = make_module(kind, 1)
    support, query = make_data("regression")
    criterion = make_criterion("regression")
    second = vectorised_grads(
        module, criterion, support, query, **variant_kwargs(module, "maml", 2)
    )
    first = vectorised_grads(
        module, criterion, support, query, **variant_kwargs(module, "fomaml", 2)
    )
    assert max_abs_diff(second, first) > 1e-4


@pytest.mark.parametrize("kind", ["mlp", "resnorm"])
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_padding_rows_do_not_count(kind, task):
    n_out = 1 if task == "regression" else N_CLASSES
    module = make_module(kind, n_out)
    support, query = make_data(task)
    criterion = make_criterion(task)
    kwargs = variant_kwargs(module, "metasgd", 2)
    before = vectorised_grads(module, criterion, support, query, **kwargs)

    generator = torch.Generator().manual_seed(5)
    changed = []
    for X, y, weight in (support, query):
        X, y = X.clone(), y.clone()
        pad = weight == 0
        X[pad] = -30.0 * torch.rand(X[pad].shape, generator=generator).to(X.dtype)
        if task == "classification":
            y[pad] = (y[pad] + 1) % N_CLASSES
        else:
            y[pad] = 1e3
        changed.append((X, y, weight))
    after = vectorised_grads(module, criterion, *changed, **kwargs)
    assert_grads_close(after, before, atol=1e-10)


def test_anil_leaves_body_unadapted():
    module = make_module("mlp", 1)
    support, _ = make_data("regression")
    params = expand_params(dict(module.named_parameters()), N_TASKS)
    names = head_parameter_names(module)
    adapted = adapt(
        batched_forward(module),
        make_criterion("regression"),
        params,
        *support,
        inner_lrs=dict.fromkeys(names, 0.1),
        n_steps=2,
        adapt_names=names,
        create_graph=False,
    )
    for name, value in params.items():
        if name in names:
            assert not torch.equal(adapted[name], value)
            # Each task adapts on its own support set.
            assert not torch.allclose(adapted[name][0], adapted[name][1])
        else:
            assert adapted[name] is value


# ---------------------------------------------------------------------------
# batched_forward, task_losses, head_parameter_names
# ---------------------------------------------------------------------------


def random_batched_params(module, generator):
    return {
        name: value.detach().unsqueeze(0)
        + 0.1
        * torch.randn(N_TASKS, *value.shape, generator=generator, dtype=value.dtype)
        for name, value in module.named_parameters()
    }


def test_bmm_and_vmap_paths_agree():
    mlp = make_module("mlp", 1)
    wrapped = Wrapped(mlp)
    assert _is_plain_mlp(mlp)
    assert not _is_plain_mlp(wrapped)

    generator = torch.Generator().manual_seed(3)
    params = random_batched_params(mlp, generator)
    X = torch.randn(N_TASKS, 7, N_FEATURES, generator=generator, dtype=torch.float64)
    fast = batched_forward(mlp)(params, X)
    slow = batched_forward(wrapped)(
        {f"net.{name}": value for name, value in params.items()}, X
    )
    assert fast.shape == (N_TASKS, 7, 1)
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)
    # Both are the module run once per task with that task's parameters.
    for b in range(N_TASKS):
        one = {name: value[b] for name, value in params.items()}
        torch.testing.assert_close(
            fast[b], functional_call(mlp, one, (X[b],)), atol=1e-12, rtol=0
        )

    # And the meta-gradients through either path agree.
    support, query = make_data("regression")
    criterion = make_criterion("regression")
    for variant in ("maml", "metasgd"):
        kwargs = variant_kwargs(mlp, variant, 3)
        wrapped_kwargs = variant_kwargs(wrapped, variant, 3)
        got_fast = vectorised_grads(mlp, criterion, support, query, **kwargs)
        got_slow = vectorised_grads(
            wrapped, criterion, support, query, **wrapped_kwargs
        )
        assert_grads_close(got_fast, got_slow, atol=1e-10)


@pytest.mark.parametrize(
    "middle",
    [nn.LayerNorm(6), nn.Softmax(dim=1), nn.PReLU(6)],
    ids=["layernorm", "softmax", "prelu"],
)
def test_sequentials_of_other_layers_run_once_per_task(middle):
    """A Sequential with a layer that is not elementwise, or has parameters,
    runs each task with that task's parameters: as a plain loop does."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(N_FEATURES, 6), middle, nn.Linear(6, 1))
    module = module.double()
    assert not _is_plain_mlp(module)
    generator = torch.Generator().manual_seed(3)
    params = random_batched_params(module, generator)
    X = torch.randn(N_TASKS, 5, N_FEATURES, generator=generator, dtype=torch.float64)
    out = batched_forward(module)(params, X)
    for b in range(N_TASKS):
        one = {name: value[b] for name, value in params.items()}
        torch.testing.assert_close(
            out[b], functional_call(module, one, (X[b],)), atol=1e-12, rtol=0
        )


def test_dropout_draws_its_own_mask_for_every_task():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(N_FEATURES, 16), nn.Dropout(0.5), nn.Linear(16, 1))
    params = expand_params(dict(module.named_parameters()), N_TASKS)
    X = torch.randn(1, 5, N_FEATURES).expand(N_TASKS, 5, N_FEATURES)
    out = batched_forward(module)(params, X)
    assert not torch.allclose(out[0], out[1])
    module.eval()
    out = batched_forward(module)(params, X)
    torch.testing.assert_close(out[0], out[1])


def test_bmm_path_linear_without_bias():
    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(N_FEATURES, 4, bias=False), nn.Tanh(), nn.Linear(4, 1)
    ).double()
    generator = torch.Generator().manual_seed(4)
    params = random_batched_params(mlp, generator)
    X = torch.randn(N_TASKS, 5, N_FEATURES, generator=generator, dtype=torch.float64)
    out = batched_forward(mlp)(params, X)
    for b in range(N_TASKS):
        one = {name: value[b] for name, value in params.items()}
        torch.testing.assert_close(
            out[b], functional_call(mlp, one, (X[b],)), atol=1e-12, rtol=0
        )


def test_task_losses_weighted_mean():
    support, _ = make_data("classification")
    X, y, weight = support
    module = make_module("mlp", N_CLASSES)
    criterion = make_criterion("classification")
    params = dict(module.named_parameters())
    losses = task_losses(
        criterion, batched_forward(module)(expand_params(params, N_TASKS), X), y, weight
    )
    assert losses.shape == (N_TASKS,)
    for b in range(N_TASKS):
        keep = weight[b] > 0
        expected = criterion(module(X[b][keep]), y[b][keep]).mean()
        torch.testing.assert_close(losses[b], expected, atol=1e-12, rtol=0)


def test_task_losses_of_one_row_tasks_and_several_outputs():
    """Each task's loss is the weighted mean of its rows' losses (the mean
    over outputs for several), also for a task of a single row."""
    g = torch.Generator().manual_seed(0)
    output = torch.randn(N_TASKS, 3, 2, generator=g, dtype=torch.float64)
    target = torch.randn(N_TASKS, 3, 2, generator=g, dtype=torch.float64)
    weight = torch.ones(N_TASKS, 3, dtype=torch.float64)
    weight[0, 1:] = 0  # one row
    weight[1, 0] = 0  # padding first
    weight[2] = torch.tensor([0.5, 2.0, 1.5])
    losses = task_losses(nn.MSELoss(reduction="none"), output, target, weight)
    assert losses.shape == (N_TASKS,)
    for b in range(N_TASKS):
        per_row = ((output[b] - target[b]) ** 2).mean(-1)
        expected = (per_row * weight[b]).sum() / weight[b].sum()
        torch.testing.assert_close(losses[b], expected, atol=1e-12, rtol=0)


def test_task_scores_match_sklearn_per_task():
    """The validation score of each task (accuracy for classes, R² averaged
    over outputs) equals sklearn's on that task's rows with their weights;
    padding rows (weight 0) do not count."""
    from sklearn.metrics import accuracy_score, r2_score

    g = torch.Generator().manual_seed(0)
    n_rows = 7
    # Padding at the end, integer weights above one, and a task with one row.
    weight = torch.ones(N_TASKS, n_rows, dtype=torch.float64)
    weight[0, 5:] = 0
    weight[1, 2] = 3.0
    weight[2, 1:] = 0
    weight[3, 0] = 2.0

    logits = torch.randn(N_TASKS, n_rows, N_CLASSES, generator=g, dtype=torch.float64)
    labels = torch.randint(0, N_CLASSES, (N_TASKS, n_rows), generator=g)
    labels[2, 0] = logits[2, 0].argmax()  # its one row right: accuracy 1
    scores = task_scores(logits, labels, weight)
    assert scores.shape == (N_TASKS,)
    for b in range(N_TASKS):
        keep = weight[b] > 0
        expected = accuracy_score(
            labels[b][keep], logits[b][keep].argmax(-1), sample_weight=weight[b][keep]
        )
        assert scores[b].item() == pytest.approx(expected, abs=1e-12)

    target = torch.randn(N_TASKS, n_rows, 2, generator=g, dtype=torch.float64)
    output = target + 0.7 * torch.randn(
        N_TASKS, n_rows, 2, generator=g, dtype=torch.float64
    )
    weight[2, 1:3] = 1  # R² needs rows that vary
    scores = task_scores(output, target, weight)
    assert scores.shape == (N_TASKS,)
    for b in range(N_TASKS):
        keep = weight[b] > 0
        expected = r2_score(
            target[b][keep], output[b][keep], sample_weight=weight[b][keep]
        )
        assert scores[b].item() == pytest.approx(expected, abs=1e-12)
    # A perfect prediction scores 1 and predicting each task's mean scores 0.
    torch.testing.assert_close(
        task_scores(target, target, weight), torch.ones(N_TASKS, dtype=torch.float64)
    )
    keep = weight.unsqueeze(-1)
    mean = (keep * target).sum(1, keepdim=True) / keep.sum(1, keepdim=True)
    torch.testing.assert_close(
        task_scores(mean.expand_as(target), target, weight),
        torch.zeros(N_TASKS, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )


def test_head_parameter_names():
    assert head_parameter_names(make_mlp(2)) == ["4.weight", "4.bias"]
    assert head_parameter_names(Wrapped(make_mlp(2))) == [
        "net.4.weight",
        "net.4.bias",
    ]
    assert head_parameter_names(ResNorm(2)) == ["head.weight", "head.bias"]
    no_bias = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    assert head_parameter_names(no_bias) == ["2.weight"]
    with pytest.raises(ValueError, match=r"^The module has no parameters to adapt\.$"):
        head_parameter_names(nn.Sequential(nn.ReLU()))


class TiedHead(nn.Module):
    """The head is also held by a later container (weight tying): the module
    listing meets it once, under its first name."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(N_FEATURES, 4)
        self.head = nn.Linear(4, 1)
        self.tied = nn.Sequential(self.head)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


def test_head_parameter_names_of_a_tied_head():
    module = TiedHead()
    names = head_parameter_names(module)
    assert names == ["head.weight", "head.bias"]
    assert set(names) <= set(dict(module.named_parameters()))


# ---------------------------------------------------------------------------
# The learned update rule (Ravi & Larochelle)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("first_order", [False, True])
def test_lstm_rule_parameters_all_receive_gradients(first_order):
    # In first-order mode too: the gradients the rule reads are constants,
    # but the update itself is differentiated.
    module = make_module("mlp", 1)
    support, query = make_data("regression")
    kwargs = variant_kwargs(module, "lstm-fo" if first_order else "lstm", n_steps=2)
    grads = vectorised_grads(
        module, make_criterion("regression"), support, query, **kwargs
    )
    rule_grads = grads[len(list(module.parameters())) :]
    assert len(rule_grads) == len(kwargs["lstm"]) == 6
    for grad in rule_grads:
        assert grad.abs().max() > 1e-6


def test_lstm_second_order_differs_from_first_order():
    module = make_module("mlp", 1)
    support, query = make_data("regression")
    criterion = make_criterion("regression")
    second = vectorised_grads(
        module, criterion, support, query, **variant_kwargs(module, "lstm", 2)
    )
    first = vectorised_grads(
        module, criterion, support, query, **variant_kwargs(module, "lstm-fo", 2)
    )
    assert max_abs_diff(second, first) > 1e-4


def adapt_once(module, data, **update):
    names = [name for name, _ in module.named_parameters()]
    params = expand_params(dict(module.named_parameters()), N_TASKS)
    return adapt(
        batched_forward(module),
        make_criterion("regression"),
        params,
        *data,
        n_steps=1,
        adapt_names=names,
        create_graph=False,
        **update,
    )


def test_lstm_rule_starts_close_to_a_gradient_step_and_is_not_one():
    module = make_module("mlp", 1)
    support, _ = make_data("regression")
    names = [name for name, _ in module.named_parameters()]
    start = dict(module.named_parameters())
    plain = adapt_once(module, support, inner_lrs=dict.fromkeys(names, 0.1))
    fresh = {
        k: v.double()
        for k, v in init_lstm_update(0.1, generator=torch.Generator()).items()
    }
    learned = adapt_once(module, support, lstm=fresh)
    for name in names:
        step = (plain[name] - start[name]).abs().max()
        # Forget gate 0.999, input gate 0.1 +- 1%: close to the plain step.
        diff = (learned[name] - plain[name]).abs().max()
        assert diff < 0.05 * step + 2e-3 * start[name].abs().max(), name
    # A rule far from its start is no gradient step of any size: the ratio
    # of each coordinate's change to its gradient is not one number.
    far = adapt_once(module, support, lstm=random_lstm(torch.float64))
    change = (far["0.weight"] - start["0.weight"]).detach()
    step = (plain["0.weight"] - start["0.weight"]).detach()
    assert step.abs().min() > 1e-8  # tanh layer: every weight has a gradient
    ratio = change / step
    assert ratio.std() > 0.1 * ratio.abs().mean()


def test_preprocess_matches_andrychowicz():
    x = torch.tensor([3.0, -1e-2, 0.0, 2e-5, -1e-6], dtype=torch.float64)
    torch.testing.assert_close(
        preprocess(x).T, reference_preprocess(x), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        preprocess(x)[:, 0],
        torch.tensor([torch.log(torch.tensor(3.0)) / 10, 1.0], dtype=torch.float64),
    )
    # Below exp(-10), the value scaled by exp(10) and a log-part of -1.
    torch.testing.assert_close(preprocess(x)[:, 3], reference_preprocess(x)[3])
    assert preprocess(x)[0, 4] == -1


def test_lstm_step_keeps_tasks_apart():
    generator = torch.Generator().manual_seed(0)
    lstm = random_lstm(torch.float64)
    theta = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    grad = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    loss = torch.rand(3, generator=generator, dtype=torch.float64)
    both, state = lstm_step(lstm, theta, grad, loss, None)
    both, _ = lstm_step(lstm, both, grad, loss, state)
    for b in range(3):
        one, state = lstm_step(
            lstm, theta[b : b + 1], grad[b : b + 1], loss[b : b + 1], None
        )
        one, _ = lstm_step(lstm, one, grad[b : b + 1], loss[b : b + 1], state)
        torch.testing.assert_close(one[0], both[b], atol=1e-12, rtol=0)


@pytest.mark.parametrize("inner_lr", [1.5, 1, 1.0, 0, 0.0, -0.1])
def test_lstm_rule_refuses_a_step_size_a_sigmoid_cannot_give(inner_lr):
    message = (
        r"^The learned update rule \(learn_inner_lr='lstm'\) gates the step with a "
        rf"sigmoid: inner_lr must be in \(0, 1\), got {inner_lr!r}\.$"
    )
    with pytest.raises(ValueError, match=message):
        init_lstm_update(inner_lr)


@pytest.mark.parametrize("hidden_size", [5, 20])
def test_lstm_rule_starts_as_torch_lstm_cell_with_near_plain_gates(hidden_size):
    """The LSTM's tensors have nn.LSTMCell's layout and initialisation,
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)); the gates' weights start
    within 0.01 and their biases at the forget gate 0.999 and the input gate
    inner_lr."""
    lstm = init_lstm_update(
        0.3, hidden_size, generator=torch.Generator().manual_seed(0)
    )
    cell = nn.LSTMCell(4, hidden_size)
    bound = 1 / math.sqrt(hidden_size)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        value = lstm[name]
        assert value.shape == getattr(cell, name).shape, name
        assert value.dtype == getattr(cell, name).dtype
        # Spread over the whole range, and nowhere beyond it.
        assert value.abs().max() <= bound, name
        assert value.max() > 0.6 * bound and value.min() < -0.6 * bound, name
        assert abs(value.mean()) < 0.25 * bound, name
    assert lstm["weight_gates"].shape == (2, hidden_size + 2)
    assert lstm["weight_gates"].abs().max() <= 0.01
    assert lstm["weight_gates"].abs().max() > 0.005
    torch.testing.assert_close(
        torch.sigmoid(lstm["bias_gates"]),
        torch.tensor([0.999, 0.3]),
        atol=1e-6,
        rtol=0,
    )
    # The functional step reads them as torch's own cell does, two steps on.
    theta = torch.tensor([[0.2, -1.0, 0.0]])
    grad = torch.tensor([[0.5, -2e-5, 3.0]])
    loss = torch.tensor([0.7])
    got, state = lstm_step(lstm, theta, grad, loss, None)
    expected, ref_state = reference_lstm_step(lstm, theta[0], grad[0], loss[0], None)
    torch.testing.assert_close(got[0], expected)
    got, _ = lstm_step(lstm, got, 2 * grad, loss, state)
    expected, _ = reference_lstm_step(lstm, expected, 2 * grad[0], loss[0], ref_state)
    torch.testing.assert_close(got[0], expected)


def test_lstm_rule_initialisation_follows_its_generator_only():
    def draw(seed):
        return init_lstm_update(0.1, 4, generator=torch.Generator().manual_seed(seed))

    torch.manual_seed(1)
    first = draw(0)
    torch.manual_seed(2)
    again = draw(0)
    other = draw(1)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    assert not torch.equal(first["weight_ih"], other["weight_ih"])


def test_lstm_rule_adapting_a_single_tensor_matches_the_loop():
    # ANIL on a head without bias: the rule updates one tensor per task.
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(N_FEATURES, 4), nn.Tanh(), nn.Linear(4, 1, bias=False)
    ).double()
    assert head_parameter_names(module) == ["2.weight"]
    support, query = make_data("regression")
    criterion = make_criterion("regression")
    kwargs = dict(
        lstm=random_lstm(torch.float64),
        n_steps=2,
        adapt_names=["2.weight"],
        first_order=False,
    )
    expected = reference_grads(module, criterion, support, query, **kwargs)
    got = vectorised_grads(module, criterion, support, query, **kwargs)
    assert_grads_close(got, expected, atol=1e-8)
    assert any(g.abs().max() > 1e-3 for g in expected)


def test_adapt_needs_exactly_one_update():
    module = make_module("mlp", 1)
    support, _ = make_data("regression")
    with pytest.raises(ValueError, match=r"^Give exactly one of inner_lrs and lstm\.$"):
        adapt_once(module, support)
    with pytest.raises(ValueError, match="^Give exactly one"):
        adapt_once(module, support, inner_lrs={}, lstm=random_lstm(torch.float64))


class WithSpare(nn.Module):
    """A network with a parameter its forward does not use."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(N_FEATURES, 1)
        self.spare = nn.Parameter(torch.ones(2))

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize("rule", ["step", "lstm"])
def test_adapt_leaves_a_parameter_without_gradient_as_it_is(rule):
    torch.manual_seed(0)
    module = WithSpare().double()
    support, _ = make_data("regression")
    names = [name for name, _ in module.named_parameters()]
    update = (
        {"lstm": random_lstm(torch.float64)}
        if rule == "lstm"
        else {"inner_lrs": dict.fromkeys(names, 0.1)}
    )
    params = expand_params(dict(module.named_parameters()), N_TASKS)
    adapted = adapt(
        batched_forward(module),
        make_criterion("regression"),
        params,
        *support,
        n_steps=2,
        adapt_names=names,
        create_graph=False,
        **update,
    )
    assert adapted["spare"] is params["spare"]
    assert not torch.allclose(adapted["lin.weight"], params["lin.weight"])
