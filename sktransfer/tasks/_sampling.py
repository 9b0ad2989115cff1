"""Device-resident task pools and support/query sampling by index.

Sampling happens on the pool's device with a ``torch.Generator``: no Python
loop, ``.item()`` or numpy inside, so a meta-training step that calls
`sample_episodes` never waits on the host.
"""

from dataclasses import dataclass

import numpy as np
import torch

# Groups up to this size are sampled exactly; larger ones by a random window.
EXACT_GROUP_SIZE = 4096


@dataclass
class TaskPool:
    """Rows of all tasks on one device, grouped by (task, class slot).

    For regression there is one slot per task. In the shared label space a
    classifier's slot is the global class code; in the episodic label space it
    is the rank of the class within its task.
    """

    X: torch.Tensor  # (n_rows, n_features)
    y: torch.Tensor  # (n_rows,) class codes, or (n_rows, n_outputs) targets
    offsets: torch.Tensor  # (n_tasks, n_slots) first row of each group
    counts: torch.Tensor  # (n_tasks, n_slots) rows in each group
    n_slots_per_task: torch.Tensor  # (n_tasks,) slots in use per task
    max_count: int
    # (n_tasks, most slots any task uses): each task's slots in use first,
    # then slots it lacks (count 0) as padding.
    slot_table: torch.Tensor

    @property
    def n_tasks(self):
        return self.counts.shape[0]


def build_pool(
    X, y, task_codes, slot_codes, n_tasks, n_slots, *, device, dtype, shuffle=None
):
    """Group rows by (task, slot) with one sort and move them to ``device``.

    ``shuffle`` (a ``numpy.random.RandomState``) puts the rows of each group in
    a random order when a group has more than ``EXACT_GROUP_SIZE`` rows: the
    window that `sample_episodes` takes from such a group is then a random
    sample. Otherwise, or with ``None``, rows keep their data order.
    """
    key = task_codes.astype(np.int64) * n_slots + slot_codes
    counts = np.bincount(key, minlength=n_tasks * n_slots).reshape(n_tasks, n_slots)
    if shuffle is not None and counts.max() > EXACT_GROUP_SIZE:
        order = np.lexsort((shuffle.random_sample(len(key)), key))
    else:
        order = np.argsort(key, kind="stable")
    offsets = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(n_tasks, n_slots)
    used = counts > 0
    most_used = max(int(used.sum(1).max(initial=0)), 1)
    slot_table = np.argsort(~used, axis=1, kind="stable")[:, :most_used]
    y_sorted = y[order]
    y_tensor = (
        torch.as_tensor(y_sorted, dtype=torch.long)
        if np.issubdtype(y_sorted.dtype, np.integer)
        else torch.as_tensor(y_sorted.reshape(len(y_sorted), -1), dtype=dtype)
    )
    return TaskPool(
        X=torch.as_tensor(X[order], dtype=dtype).to(device),
        y=y_tensor.to(device),
        offsets=torch.as_tensor(offsets).to(device),
        counts=torch.as_tensor(counts).to(device),
        n_slots_per_task=torch.as_tensor(used.sum(1)).to(device),
        max_count=int(counts.max()),
        slot_table=torch.as_tensor(slot_table).to(device),
    )


def sample_episodes(
    pool,
    n_tasks,
    k_shot,
    n_query,
    *,
    n_way=None,
    generator,
    exact_size=EXACT_GROUP_SIZE,
    tasks=None,
    support_size=None,
):
    """Draw ``n_tasks`` episodes (tasks with replacement) from ``pool``.

    Each episode takes ``k_shot`` support and ``n_query`` query rows from every
    slot of its task (the classes the task has, or the ``n_way`` classes drawn
    for it in the episodic label space; the task itself for regression),
    without replacement. An episode has as many slots as the pool's task with
    the most classes (``n_way`` in the episodic space), not one per class of
    the model: the cost of a shared label space grows with the classes of a
    task, not of the collection. Slots a task lacks get weight 0. A group
    with fewer than ``k_shot + n_query`` rows gives what it has:
    ``min(k_shot, rows - 1)`` support rows (none from a group of one row), the
    rest to the query set up to ``n_query``, and weight 0 to the padding.

    A group of up to ``exact_size`` rows is drawn exactly (the smallest of one
    random key per row). A larger group takes a window of consecutive rows at
    a random start, wrapping around: distinct rows at a cost independent of
    the group's size, random when `build_pool` shuffled the rows of each group.

    Parameters
    ----------
    tasks : LongTensor of shape (n_tasks,), default=None
        The task of every episode; ``None`` draws them uniformly.
    support_size : LongTensor of shape (n_tasks,), default=None
        Support rows per slot of every episode, at most ``k_shot``: the support
        tensor keeps ``k_shot`` columns per slot and the ones beyond get weight
        0 (the query rows follow the episode's own support rows). ``None``
        means ``k_shot`` for every episode.

    Returns
    -------
    support, query : tuple of (X, y, weight)
        ``X`` is ``(n_tasks, n_slots * rows, n_features)``, ``y`` the class
        ``(n_tasks, n_slots * rows)`` (the global class code in the shared
        label space, the rank in the episode with ``n_way``; or targets
        ``(n_tasks, rows, n_outputs)``), ``weight`` ``(n_tasks, n_slots * rows)``.
    """
    device = pool.X.device
    n_total = k_shot + n_query
    if tasks is None:
        tasks = torch.randint(
            pool.n_tasks, (n_tasks,), generator=generator, device=device
        )
    tasks = tasks.unsqueeze(1)
    n_slots = pool.counts.shape[1]
    if n_way is None:
        slots = pool.slot_table[tasks.squeeze(1)]
    else:
        keys = torch.rand(n_tasks, n_slots, generator=generator, device=device)
        unused = torch.arange(n_slots, device=device) >= pool.n_slots_per_task[tasks]
        slots = keys.masked_fill(unused, 2.0).argsort(1)[:, :n_way]
    offsets = pool.offsets[tasks, slots]
    counts = pool.counts[tasks, slots]

    # Rank r of a group's draw is the r-th row of a random order of the group.
    # Support rows take ranks 0 .. s - 1, query rows the next ones, where s is
    # the episode's support size, capped to leave a group one query row.
    k = torch.full_like(counts, k_shot) if support_size is None else support_size
    k = k.view(-1, 1).expand_as(counts) if k.ndim == 1 else k
    n_support = torch.minimum(k, (counts - 1).clamp_min(0))
    steps = torch.arange(n_total, device=device)
    support_part = steps < k_shot
    rank = torch.where(support_part, steps, n_support.unsqueeze(-1) + steps - k_shot)
    valid = torch.where(
        support_part,
        steps < n_support.unsqueeze(-1),
        rank < counts.unsqueeze(-1),
    )
    rank = torch.where(valid, rank, 0)

    # Small groups: a random order of their rows, the smallest random keys.
    n_keys = min(pool.max_count, max(exact_size, n_total))
    width = min(n_total, n_keys)
    keys = torch.rand(*slots.shape, n_keys, generator=generator, device=device)
    padding = torch.arange(n_keys, device=device) >= counts.unsqueeze(-1)
    order = keys.masked_fill(padding, 2.0).topk(width, dim=-1, largest=False).indices
    position = order.gather(-1, rank.clamp_max(width - 1))
    if pool.max_count > n_keys:
        # Large groups: consecutive rows from a random start.
        start = torch.rand(*slots.shape, generator=generator, device=device)
        start = (start * counts).long().unsqueeze(-1)
        window = (start + rank) % counts.clamp_min(1).unsqueeze(-1)
        position = torch.where((counts > n_keys).unsqueeze(-1), window, position)
    present = (counts > 0).unsqueeze(-1) & valid
    rows = torch.where(present, offsets.unsqueeze(-1) + position, 0)
    weight = present.to(pool.X.dtype)
    if n_way is None:
        labels = slots
    else:
        labels = torch.arange(slots.shape[1], device=device).expand_as(slots)
    labels = labels.unsqueeze(-1).expand_as(rows)

    def take(part):
        idx = rows[..., part].reshape(n_tasks, -1)
        X = pool.X[idx]
        y = pool.y[idx] if pool.y.dtype.is_floating_point else labels[..., part]
        return (
            X,
            y.reshape(n_tasks, idx.shape[1], *pool.y.shape[1:]),
            weight[..., part].reshape(n_tasks, -1),
        )

    return take(slice(0, k_shot)), take(slice(k_shot, n_total))
