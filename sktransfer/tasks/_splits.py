"""Support/query splits of one task's rows (host-side, for evaluation)."""

import numpy as np


def support_query_split(y, k_shot, *, per_class, rng, task_name):
    """Indices of a seeded support set and of the remaining (query) rows.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The task's targets.
    k_shot : int
        Support rows per class (``per_class=True``) or per task.
    per_class : bool
        Count ``k_shot`` per class, as classifiers do.
    rng : numpy.random.RandomState
        Draws the support rows.
    task_name : str
        How errors name the task.

    Returns
    -------
    support, query : ndarray of int
        Row indices; every row is in exactly one of them.
    """
    if per_class:
        labels, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        short = counts < k_shot
        if short.any():
            label = labels[np.argmax(short)]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(
                f"{task_name}, class {label!r}, has {counts[np.argmax(short)]} rows "
                f"but k_shot={k_shot} support rows per class are needed to score it."
            )
        support = np.concatenate(
            [
                rng.choice(np.flatnonzero(inverse == code), k_shot, replace=False)
                for code in range(len(labels))
            ]
        )
    else:
        if len(y) < k_shot:
            raise ValueError(
                f"{task_name} has {len(y)} rows but k_shot={k_shot} support rows "
                "are needed to score it."
            )
        support = rng.choice(len(y), k_shot, replace=False)
    in_query = np.ones(len(y), dtype=bool)
    in_query[support] = False
    query = np.flatnonzero(in_query)
    if len(query) == 0:
        raise ValueError(
            f"{task_name} has no rows left to score after its k_shot={k_shot} "
            "support rows; give it more rows or use a smaller k_shot."
        )
    return np.sort(support), query
