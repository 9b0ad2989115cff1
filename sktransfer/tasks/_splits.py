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


def scorable_tasks(tasks, k_shot, *, per_class):
    """Whether each task can give ``k_shot`` support rows (of each of its
    classes, ``per_class``) and at least one query row, in task-code order."""
    codes = tasks.task_codes
    n_rows = np.bincount(codes, minlength=tasks.n_tasks)
    if not per_class:
        return (n_rows >= k_shot) & (n_rows > k_shot)
    label_codes = np.unique(tasks.y, return_inverse=True)[1].ravel()
    n_labels = int(label_codes.max()) + 1 if len(label_codes) else 1
    counts = np.bincount(
        codes * n_labels + label_codes, minlength=tasks.n_tasks * n_labels
    ).reshape(tasks.n_tasks, n_labels)
    present = counts > 0
    enough = (~present | (counts >= k_shot)).all(axis=1)
    return enough & (n_rows > k_shot * present.sum(axis=1))


def draw_episodes(tasks, *, k_shot, n_query, n_episodes, per_class, random_state):
    """Seeded support/query row indices of every (episode, task).

    Returns a list over episodes of lists over tasks of ``(support, query)``
    absolute row indices into ``tasks.X`` (`split_support_query` drawn
    ``n_episodes`` times from one random state).
    """
    rng = check_random_state(random_state)
    return [
        split_support_query(
            tasks, k_shot, n_query=n_query, per_class=per_class, rng=rng
        )
        for _ in range(n_episodes)
    ]
