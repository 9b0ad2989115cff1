"""Tests of the functional MAML core and of episode sampling.

The vectorised meta-gradient of `meta_loss` is checked against a plain loop
over tasks, written independently here, for every variant of the inner loop.
"""

import numpy as np
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
    meta_loss,
    task_losses,
)
from sktransfer.tasks._sampling import build_pool, sample_episodes

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


def reference_meta_loss(
    module, criterion, support, query, inner_lrs, n_steps, adapt_names, first_order
):
    meta = dict(module.named_parameters())
    losses = []
    for b in range(support[0].shape[0]):
        theta = dict(meta)
        for _ in range(n_steps):
            loss = reference_task_loss(
                module, criterion, theta, support[0][b], support[1][b], support[2][b]
            )
            grads = torch.autograd.grad(
                loss, [theta[n] for n in adapt_names], create_graph=not first_order
            )
            for name, grad in zip(adapt_names, grads, strict=True):
                theta[name] = theta[name] - inner_lrs[name] * grad
        losses.append(
            reference_task_loss(
                module, criterion, theta, query[0][b], query[1][b], query[2][b]
            )
        )
    return torch.stack(losses).mean()


def grad_inputs(module, inner_lrs):
    inputs = list(module.parameters())
    inputs += [lr for lr in inner_lrs.values() if torch.is_tensor(lr)]
    return inputs


def reference_grads(module, criterion, support, query, **kwargs):
    loss = reference_meta_loss(module, criterion, support, query, **kwargs)
    inputs = grad_inputs(module, kwargs["inner_lrs"])
    return torch.autograd.grad(loss, inputs, allow_unused=True)


def vectorised_grads(module, criterion, support, query, **kwargs):
    params = dict(module.named_parameters())
    loss = meta_loss(
        batched_forward(module), criterion, params, support, query, **kwargs
    )
    inputs = grad_inputs(module, kwargs["inner_lrs"])
    return torch.autograd.grad(loss, inputs, allow_unused=True)


VARIANTS = {
    # name: (first_order, learned lrs, head only)
    "maml": (False, False, False),
    "fomaml": (True, False, False),
    "metasgd": (False, True, False),
    "metasgd-fo": (True, True, False),
    "anil": (False, False, True),
    "anil-fo": (True, False, True),
    "anil-metasgd": (False, True, True),
}


def variant_kwargs(module, variant, n_steps):
    first_order, learned, head_only = VARIANTS[variant]
    adapt_names = (
        head_parameter_names(module)
        if head_only
        else [name for name, _ in module.named_parameters()]
    )
    params = dict(module.named_parameters())
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


@pytest.mark.parametrize("n_steps", [1, 3])
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


@pytest.mark.parametrize("variant", ["maml", "metasgd", "anil"])
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


def test_head_parameter_names():
    assert head_parameter_names(make_mlp(2)) == ["4.weight", "4.bias"]
    assert head_parameter_names(Wrapped(make_mlp(2))) == [
        "net.4.weight",
        "net.4.bias",
    ]
    assert head_parameter_names(ResNorm(2)) == ["head.weight", "head.bias"]
    no_bias = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    assert head_parameter_names(no_bias) == ["2.weight"]
    with pytest.raises(ValueError, match="no parameters"):
        head_parameter_names(nn.Sequential(nn.ReLU()))


# ---------------------------------------------------------------------------
# Episode sampling
# ---------------------------------------------------------------------------

# Rows per (task, class) in the shared label space; task 2 lacks class 1 and
# (task 3, class 0) has too few rows for k_shot + n_query.
SHARED_COUNTS = np.array(
    [
        [9, 8, 10],
        [7, 12, 8],
        [9, 0, 11],
        [2, 9, 7],
    ]
)


def make_rows(counts_per_group, seed=0):
    """Rows with X = (task, class, row id, noise), shuffled."""
    rng = np.random.default_rng(seed)
    tasks, classes = [], []
    for (task, cls), count in counts_per_group.items():
        tasks += [task] * count
        classes += [cls] * count
    tasks, classes = np.array(tasks), np.array(classes)
    perm = rng.permutation(len(tasks))
    tasks, classes = tasks[perm], classes[perm]
    X = np.column_stack(
        [tasks, classes, np.arange(len(tasks)), rng.normal(size=len(tasks))]
    ).astype(np.float64)
    return X, tasks, classes


def shared_pool():
    groups = {
        (t, c): int(SHARED_COUNTS[t, c])
        for t in range(SHARED_COUNTS.shape[0])
        for c in range(SHARED_COUNTS.shape[1])
    }
    X, tasks, classes = make_rows(groups)
    pool = build_pool(
        X,
        classes,
        tasks,
        classes,
        SHARED_COUNTS.shape[0],
        SHARED_COUNTS.shape[1],
        device="cpu",
        dtype=torch.float64,
    )
    return pool


# Episodic label space: task -> its global class ids (3 or 4 classes each).
EPISODIC_CLASSES = {0: [0, 1, 2, 3], 1: [4, 5, 6], 2: [1, 7, 8, 9], 3: [2, 5, 10]}


def episodic_pool():
    groups = {(t, c): 6 + (t + c) % 3 for t, cs in EPISODIC_CLASSES.items() for c in cs}
    X, tasks, classes = make_rows(groups, seed=1)
    # The slot of a row is the rank of its class within its task.
    slots = np.array(
        [EPISODIC_CLASSES[t].index(c) for t, c in zip(tasks, classes, strict=True)]
    )
    n_slots = max(len(cs) for cs in EPISODIC_CLASSES.values())
    return build_pool(
        X,
        classes,
        tasks,
        slots,
        len(EPISODIC_CLASSES),
        n_slots,
        device="cpu",
        dtype=torch.float64,
    )


def regression_pool():
    groups = {(t, 0): n for t, n in enumerate([8, 10, 3, 12])}
    X, tasks, _ = make_rows(groups, seed=2)
    y = 0.5 * X[:, 2] + X[:, 0]
    pool = build_pool(
        X,
        y,
        tasks,
        np.zeros_like(tasks),
        4,
        1,
        device="cpu",
        dtype=torch.float64,
    )
    return pool


def draw(pool, seed, n_tasks=16, k_shot=2, n_query=3, n_way=None):
    generator = torch.Generator(device=pool.X.device).manual_seed(seed)
    return sample_episodes(
        pool, n_tasks, k_shot, n_query, n_way=n_way, generator=generator
    )


def test_sample_episodes_shapes_shared():
    pool = shared_pool()
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=16, k_shot=2, n_query=3)
    assert Xs.shape == (16, N_CLASSES * 2, 4)
    assert ys.shape == ws.shape == (16, N_CLASSES * 2)
    assert Xq.shape == (16, N_CLASSES * 3, 4)
    assert yq.shape == wq.shape == (16, N_CLASSES * 3)
    assert ys.dtype == yq.dtype == torch.long
    assert ws.dtype == wq.dtype == torch.float64


def test_sample_episodes_shapes_regression():
    pool = regression_pool()
    assert pool.y.shape == (pool.X.shape[0], 1)
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=5, k_shot=2, n_query=4)
    assert Xs.shape == (5, 2, 4) and Xq.shape == (5, 4, 4)
    assert ys.shape == (5, 2, 1) and yq.shape == (5, 4, 1)
    assert ws.shape == (5, 2) and wq.shape == (5, 4)
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    for X, y in ((Xs, ys), (Xq, yq)):
        # Targets stay aligned with their rows; each episode is one task.
        torch.testing.assert_close(y[..., 0], 0.5 * X[..., 2] + X[..., 0])
    tasks = torch.cat([Xs[..., 0], Xq[..., 0]], 1)
    assert bool((tasks == tasks[:, :1]).all())
    # Support and query rows are disjoint where the task has enough rows.
    for b in range(5):
        if int(tasks[b, 0]) != 2:  # task 2 has 3 rows < 2 + 4
            ids = torch.cat([Xs[b, :, 2], Xq[b, :, 2]])
            assert ids.unique().numel() == ids.numel()


def test_sample_episodes_rows_come_from_task_and_class():
    pool = shared_pool()
    k_shot, n_query = 2, 3
    (Xs, ys, ws), (Xq, yq, wq) = draw(
        pool, 7, n_tasks=64, k_shot=k_shot, n_query=n_query
    )
    seen_tasks = set()
    for b in range(Xs.shape[0]):
        keep_s, keep_q = ws[b] > 0, wq[b] > 0
        rows = torch.cat([Xs[b][keep_s], Xq[b][keep_q]])
        labels = torch.cat([ys[b][keep_s], yq[b][keep_q]])
        task = int(rows[0, 0])
        seen_tasks.add(task)
        # Every row comes from the drawn task...
        assert bool((rows[:, 0] == task).all())
        # ... and, in the shared label space, its label is its class.
        assert torch.equal(rows[:, 1].long(), labels)
        # Row j of the support set belongs to slot j // k_shot.
        expected = torch.arange(N_CLASSES).repeat_interleave(k_shot)
        assert torch.equal(ys[b], expected)
        assert torch.equal(yq[b], torch.arange(N_CLASSES).repeat_interleave(n_query))
        # Slots the task lacks get weight 0, the others 1.
        present = torch.as_tensor(SHARED_COUNTS[task] > 0)
        assert torch.equal(ws[b], present.repeat_interleave(k_shot).double())
        assert torch.equal(wq[b], present.repeat_interleave(n_query).double())
        # Support and query are disjoint where the group has enough rows.
        for c in range(N_CLASSES):
            if SHARED_COUNTS[task, c] >= k_shot + n_query:
                ids = torch.cat([Xs[b][ys[b] == c][:, 2], Xq[b][yq[b] == c][:, 2]])
                assert ids.unique().numel() == k_shot + n_query
            elif SHARED_COUNTS[task, c] > 0:
                # Too few rows: cycle through all of them.
                ids = torch.cat([Xs[b][ys[b] == c][:, 2], Xq[b][yq[b] == c][:, 2]])
                assert ids.unique().numel() == SHARED_COUNTS[task, c]
    assert seen_tasks == set(range(SHARED_COUNTS.shape[0]))


def test_sample_episodes_missing_slot_zero_weight():
    pool = shared_pool()
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 11, n_tasks=64)
    is_task2 = Xs[:, 0, 0] == 2  # slot 0 of task 2 is present
    assert bool(is_task2.any())
    missing_s = (ys == 1) & is_task2.unsqueeze(1)
    missing_q = (yq == 1) & is_task2.unsqueeze(1)
    assert bool((ws[missing_s] == 0).all()) and bool((wq[missing_q] == 0).all())
    assert bool((ws[~missing_s] == 1).all()) and bool((wq[~missing_q] == 1).all())


def test_sample_episodes_seeded():
    for pool, n_way in (
        (shared_pool(), None),
        (episodic_pool(), 2),
        (regression_pool(), None),
    ):
        first = draw(pool, 3, n_way=n_way)
        again = draw(pool, 3, n_way=n_way)
        other = draw(pool, 4, n_way=n_way)
        for part_a, part_b in zip(first, again, strict=True):
            for a, b in zip(part_a, part_b, strict=True):
                assert torch.equal(a, b)
        assert not torch.equal(first[0][0], other[0][0])


def test_sample_episodes_episodic():
    pool = episodic_pool()
    n_way, k_shot, n_query = 2, 2, 3
    (Xs, ys, ws), (Xq, yq, wq) = draw(
        pool, 5, n_tasks=200, k_shot=k_shot, n_query=n_query, n_way=n_way
    )
    assert Xs.shape == (200, n_way * k_shot, 4)
    assert Xq.shape == (200, n_way * n_query, 4)
    assert ys.shape == ws.shape == (200, n_way * k_shot)
    assert yq.shape == wq.shape == (200, n_way * n_query)
    # Every task has at least n_way classes: no empty slot is ever drawn.
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    assert bool(((ys >= 0) & (ys < n_way)).all())
    assert bool(((yq >= 0) & (yq < n_way)).all())
    drawn = {t: set() for t in EPISODIC_CLASSES}
    for b in range(Xs.shape[0]):
        rows = torch.cat([Xs[b], Xq[b]])
        labels = torch.cat([ys[b], yq[b]])
        task = int(rows[0, 0])
        assert bool((rows[:, 0] == task).all())
        classes = [int(c) for c in rows[:, 1]]
        assert set(classes) <= set(EPISODIC_CLASSES[task])
        # Each label is one class of the task, and distinct labels distinct classes.
        mapping = {}
        for label, cls in zip(labels.tolist(), classes, strict=True):
            assert mapping.setdefault(label, cls) == cls
        assert sorted(mapping) == list(range(n_way))
        assert len(set(mapping.values())) == n_way
        drawn[task].update(mapping.values())
        # Support and query rows are disjoint (every group has >= 6 rows).
        ids = rows[:, 2]
        assert ids.unique().numel() == ids.numel()
    # Over many episodes every class of every task is drawn.
    assert drawn == {t: set(cs) for t, cs in EPISODIC_CLASSES.items()}


def test_sample_episodes_episodic_fewer_classes_than_ways():
    # A task with fewer classes than n_way gets weight 0 for the missing ways.
    pool = episodic_pool()
    (Xs, ys, ws), _ = draw(pool, 2, n_tasks=100, k_shot=1, n_query=1, n_way=4)
    for b in range(Xs.shape[0]):
        task = int(Xs[b][ws[b] > 0][0, 0])
        assert int(ws[b].sum()) == len(EPISODIC_CLASSES[task])
        kept = Xs[b][ws[b] > 0]
        assert bool((kept[:, 0] == task).all())
        assert kept[:, 1].unique().numel() == len(EPISODIC_CLASSES[task])


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_sample_episodes_stays_on_device(device):
    X, tasks, classes = make_rows({(0, 0): 5, (0, 1): 6, (1, 0): 7, (1, 1): 4})
    pool = build_pool(
        X, classes, tasks, classes, 2, 2, device=device, dtype=torch.float32
    )
    assert pool.X.device.type == device
    generator = torch.Generator(device=pool.X.device).manual_seed(0)
    for n_way in (None, 2):
        support, query = sample_episodes(
            pool, 3, 2, 2, n_way=n_way, generator=generator
        )
        for part in (*support, *query):
            assert isinstance(part, torch.Tensor)
            assert part.device == pool.X.device
        assert support[2].dtype == torch.float32
