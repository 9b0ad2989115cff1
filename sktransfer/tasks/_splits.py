"""Seeded support/query splits of many tasks at once (host-side, for evaluation)."""

import numpy as np
from sklearn.utils import check_random_state


def split_support_query(tasks, k_shot, *, n_query=None, per_class, rng):
    """One seeded support/query split of every task, in one vectorised pass.

    Every row gets a random key; rows are sorted by (task, class, key) and the
    first ``k_shot`` of each group form the support set, the next ``n_query``
    (all the others when ``None``) the query set.

    Parameters
    ----------
    tasks : TaskSet
        The tasks.
    k_shot : int
        Support rows per class (``per_class=True``) or per task.
    n_query : int, default=None
        Query rows per class (or per task); ``None`` takes all other rows.
    per_class : bool
        Count rows per class, as classifiers do.
    rng : numpy.random.RandomState
        Draws the split.

    Returns
    -------
    splits : list of (ndarray, ndarray)
        Per task, in ``tasks.task_labels`` order, the support and query row
        indices into ``tasks.X``.
    """
    codes = tasks.task_codes
    if per_class:
        labels, label_codes = np.unique(tasks.y, return_inverse=True)
        group = codes * len(labels) + label_codes.ravel()
    else:
        labels, group = None, codes
    counts = np.bincount(group)
    short = (counts > 0) & (counts < k_shot)
    if short.any():
        g = int(np.argmax(short))
        what = tasks.task_name(g // len(labels) if per_class else g)
        if per_class:
            label = labels[g % len(labels)]
            label = label.item() if isinstance(label, np.generic) else label
            what += f", class {label!r},"
        unit = " per class" if per_class else ""
        raise ValueError(
            f"{what} has {counts[g]} rows but k_shot={k_shot} support rows"
            f"{unit} are needed to score it."
        )
    order = np.lexsort((rng.random_sample(len(group)), group))
    rank = np.arange(len(order)) - (np.cumsum(counts) - counts)[group[order]]
    support = rank < k_shot
    query = ~support if n_query is None else support ^ (rank < k_shot + n_query)
    n_support = np.bincount(codes[order[support]], minlength=tasks.n_tasks)
    n_query_rows = np.bincount(codes[order[query]], minlength=tasks.n_tasks)
    if (n_query_rows == 0).any():
        t = int(np.argmax(n_query_rows == 0))
        raise ValueError(
            f"{tasks.task_name(t)} has no rows left to score after its "
            f"k_shot={k_shot} support rows; give it more rows or use a smaller "
            "k_shot."
        )
    # Sorting by group sorts by task first: split the two sets task by task.
    supports = np.split(order[support], np.cumsum(n_support)[:-1])
    queries = np.split(order[query], np.cumsum(n_query_rows)[:-1])
    return list(zip(supports, queries, strict=True))


SUPPORT_KINDS = ("balanced", "stratified", "random")


def _class_counts(tasks):
    """Rows of each (task, class), ``(n_tasks, n_labels)``, and each row's
    label code."""
    label_codes = np.unique(tasks.y, return_inverse=True)[1].ravel()
    n_labels = int(label_codes.max()) + 1 if len(label_codes) else 1
    counts = np.bincount(
        tasks.task_codes * n_labels + label_codes, minlength=tasks.n_tasks * n_labels
    ).reshape(tasks.n_tasks, n_labels)
    return counts, label_codes


def scorable_tasks(tasks, k_shot, *, per_class, support="balanced"):
    """Whether each task can give its support rows and at least one query
    row, in task-code order: ``k_shot`` rows (of each of its classes,
    ``per_class``, with ``support="balanced"``), or ``k_shot`` times its
    number of classes in any mix (``"stratified"``, ``"random"``)."""
    n_rows = np.bincount(tasks.task_codes, minlength=tasks.n_tasks)
    if not per_class:
        return n_rows > k_shot
    counts, _ = _class_counts(tasks)
    present = counts > 0
    enough = (~present | (counts >= k_shot)).all(axis=1) | (support != "balanced")
    return enough & (n_rows > k_shot * present.sum(axis=1))


def _allocate(totals, counts):
    """``totals[t]`` rows shared among the classes of task ``t`` in proportion
    to ``counts[t]`` (largest remainders, ties to the first class)."""
    n = counts.sum(axis=1, keepdims=True)
    exact = counts * (totals[:, None] / np.maximum(n, 1))
    share = np.floor(exact).astype(np.int64)
    left = totals - share.sum(axis=1)
    order = np.argsort(-(exact - share), axis=1, kind="stable")
    rank = np.argsort(order, axis=1, kind="stable")
    return np.minimum(share + (rank < left[:, None]), counts)


def split_by_class_mix(tasks, k_shot, *, n_query=None, rng, support):
    """One seeded support/query split of every classification task whose
    support set follows the task's class mix.

    A task with ``m`` classes gets ``k_shot * m`` support rows, as
    `split_support_query` gives it, but drawn in proportion to its class
    counts (``support="stratified"``, largest remainders) or at random
    whatever their class (``"random"``); ``n_query`` rows per class become
    ``n_query * m`` query rows drawn the same way (``None``: all other rows).
    Returns what `split_support_query` returns.
    """
    codes = tasks.task_codes
    counts, label_codes = _class_counts(tasks)
    n_classes = (counts > 0).sum(axis=1)
    n_support = k_shot * n_classes
    n_rows = counts.sum(axis=1)
    if (n_rows <= n_support).any():
        t = int(np.argmax(n_rows <= n_support))
        raise ValueError(
            f"{tasks.task_name(t)} has {n_rows[t]} rows, so none is left to score "
            f"after k_shot * {n_classes[t]} classes = {n_support[t]} support rows; "
            "give it more rows or use a smaller k_shot."
        )
    n_taken = n_support if n_query is None else n_support + n_query * n_classes
    if support == "random":
        group = codes
        quota = n_support
        taken = np.minimum(n_taken, n_rows)
    else:
        group = codes * counts.shape[1] + label_codes
        quota = _allocate(n_support, counts).ravel()
        taken = _allocate(np.minimum(n_taken, n_rows), counts).ravel()
    sizes = np.bincount(group, minlength=len(quota))
    order = np.lexsort((rng.random_sample(len(group)), group))
    in_group = group[order]
    rank = np.arange(len(order)) - (np.cumsum(sizes) - sizes)[in_group]
    is_support = rank < quota[in_group]
    is_query = (
        ~is_support if n_query is None else ~is_support & (rank < taken[in_group])
    )
    # Sorting by group sorts by task first: split the two sets task by task.
    n_s = np.bincount(codes[order[is_support]], minlength=tasks.n_tasks)
    n_q = np.bincount(codes[order[is_query]], minlength=tasks.n_tasks)
    supports = np.split(order[is_support], np.cumsum(n_s)[:-1])
    queries = np.split(order[is_query], np.cumsum(n_q)[:-1])
    return list(zip(supports, queries, strict=True))


def draw_episodes(
    tasks,
    *,
    k_shot,
    n_query,
    n_episodes,
    per_class,
    random_state,
    support="balanced",
):
    """Seeded support/query row indices of every (episode, task).

    Returns a list over episodes of lists over tasks of ``(support, query)``
    absolute row indices into ``tasks.X`` (`split_support_query`, or for
    classes with ``support`` other than ``"balanced"`` `split_by_class_mix`,
    drawn ``n_episodes`` times from one random state).
    """
    rng = check_random_state(random_state)
    if per_class and support != "balanced":
        return [
            split_by_class_mix(tasks, k_shot, n_query=n_query, rng=rng, support=support)
            for _ in range(n_episodes)
        ]
    return [
        split_support_query(
            tasks, k_shot, n_query=n_query, per_class=per_class, rng=rng
        )
        for _ in range(n_episodes)
    ]
