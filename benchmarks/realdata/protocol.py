"""The evaluation protocol: split tasks, draw episodes, score, pair with baselines.

Tasks are split 75/25 with a seed. For every held-out task and support size K,
``repeats`` draws of K random rows form the support set and the task's other
rows the query set (regression, and classification with labels shared by all
tasks); for new classes (episodic data), ``n_episodes`` N-way episodes of the
held-out classes with K rows per class. A method adapts to each support set
and predicts its query rows; per-episode scores are averaged per task (or
kept per episode for the episodic data), then over tasks. Differences with
the best baseline are paired by task, with a Student-t 95% interval.
"""

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from sktransfer.model_selection._few_shot import predict_episodes


@dataclass
class Episodes:
    """Support/query row indices of every episode, and the unit it pairs on."""

    k: int
    support: list
    query: list
    unit: np.ndarray  # the task (or episode) each episode belongs to
    labels: list = field(default_factory=list)  # episodic: the episode's classes


def split_tasks(tasks, seed, test_fraction=0.25, n_test=None):
    """Training and held-out task labels, a seeded split (``n_test`` held out,
    or a quarter)."""
    labels = np.unique(tasks)
    rng = np.random.RandomState(seed)
    order = rng.permutation(labels)
    if n_test is None:
        n_test = int(round(test_fraction * len(labels)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def task_episodes(tasks, rows, k, repeats, seed):
    """K random support rows of every task with more than K rows, the rest query."""
    rng = np.random.RandomState(seed)
    support, query, unit = [], [], []
    for task in np.unique(tasks[rows]):
        idx = np.flatnonzero(rows & (tasks == task))
        if len(idx) <= k:
            continue
        for _ in range(repeats):
            perm = rng.permutation(idx)
            support.append(perm[:k])
            query.append(perm[k:])
            unit.append(task)
    return Episodes(k, support, query, np.asarray(unit))


def class_episodes(y, rows, k, n_way, n_episodes, seed):
    """N-way episodes of the classes in ``rows``: K support rows per class."""
    rng = np.random.RandomState(seed)
    classes = np.unique(y[rows])
    support, query, labels = [], [], []
    for _ in range(n_episodes):
        chosen = rng.choice(classes, n_way, replace=False)
        s, q = [], []
        for c in chosen:
            idx = rng.permutation(np.flatnonzero(rows & (y == c)))
            s.append(idx[:k])
            q.append(idx[k:])
        support.append(np.concatenate(s))
        query.append(np.concatenate(q))
        labels.append(chosen)
    return Episodes(k, support, query, np.arange(n_episodes), labels)


def score_episodes(method, X, y, episodes, metric):
    """Adapt ``method`` to every support set; per-episode scores and seconds.

    ``method`` is a fitted estimator with ``adapt`` (copied, so it stays as
    it was). Returns the scores and the adaptation time per episode.
    """
    supports = [(X[s], y[s]) for s in episodes.support]
    queries = [X[q] for q in episodes.query]
    names = [f"episode {i}" for i in range(len(supports))]
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Support sets of a few rows: constant columns, one class, and so on.
        warnings.simplefilter("ignore")
        predictions = predict_episodes(copy.deepcopy(method), supports, queries, names)
    seconds = (time.perf_counter() - start) / max(len(supports), 1)
    scores = np.array(
        [metric(y[q], p) for q, p in zip(episodes.query, predictions, strict=True)]
    )
    return scores, seconds


def per_unit(scores, unit):
    """Mean score of every unit (task), in sorted unit order."""
    units = np.unique(unit)
    return np.array([scores[unit == u].mean() for u in units])


def paired_ci(a, b):
    """Mean of ``a - b`` over units and its Student-t 95% interval."""
    diff = np.asarray(a) - np.asarray(b)
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, (float("nan"), float("nan"))
    half = float(stats.t.ppf(0.975, len(diff) - 1) * stats.sem(diff))
    return mean, (mean - half, mean + half)


def rmse(y_true, y_pred):
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.ravel(y_pred)) ** 2)))


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
