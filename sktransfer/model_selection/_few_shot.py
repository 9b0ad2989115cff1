"""Few-shot evaluation over many tasks: seeded support/query episodes, one pass."""

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from scipy import stats
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from sktransfer._adapt import adaptation_path
from sktransfer.tasks._splits import split_support_query
from sktransfer.tasks._taskset import TaskSet


@dataclass
class FewShotResult:
    """Scores of an estimator adapted to many tasks.

    Attributes
    ----------
    mean : float
        Mean of ``per_task``.
    ci95 : tuple of float
        95% confidence interval of the mean over tasks (Student's t).
    per_task : ndarray of shape (n_tasks,)
        Each task's score, averaged over its episodes.
    task_labels : ndarray of shape (n_tasks,)
        The tasks, in the order of ``per_task``.
    scores : ndarray of shape (n_episodes, n_tasks)
        The score of every episode.
    """

    mean: float
    ci95: tuple
    per_task: np.ndarray
    task_labels: np.ndarray
    scores: np.ndarray


def _as_taskset(tasks, transform=None):
    """The tasks as a `TaskSet`, their rows passed through ``transform`` first.

    ``transform`` (the fitted transformers of a pipeline, see
    `~sktransfer._adapt.AdaptationPath.transform`) takes the rows as the user
    gives them, a raw DataFrame for instance, and returns them as the
    adapting estimator sees them; a sparse result is made dense.
    """
    if transform is None:
        if isinstance(tasks, TaskSet):
            return tasks
        if isinstance(tasks, tuple) and len(tasks) == 3 and np.ndim(tasks[2]) == 1:
            return TaskSet.from_arrays(*tasks)
        return TaskSet(tasks)

    def rows(X):
        X = transform(X)
        return X.toarray() if hasattr(X, "toarray") else X

    if isinstance(tasks, TaskSet):
        X = tasks.X
        if tasks.feature_names is not None:
            import pandas as pd  # the tasks were frames, so pandas is there

            X = pd.DataFrame(X, columns=tasks.feature_names)
        return TaskSet.from_arrays(rows(X), tasks.y, tasks.task_ids)
    if isinstance(tasks, tuple) and len(tasks) == 3 and np.ndim(tasks[2]) == 1:
        X, y, task_ids = tasks
        return TaskSet.from_arrays(rows(X), y, task_ids)
    if not isinstance(tasks, (list, tuple)):
        return TaskSet(tasks)  # the error names what tasks may be
    pairs = []
    for i, task in enumerate(tasks):
        if not isinstance(task, (list, tuple)) or len(task) != 2:
            raise ValueError(f"task {i} is not an (X, y) pair.")
        pairs.append((rows(task[0]), task[1]))
    return TaskSet(pairs)


def tasks_as_seen_by(estimator, tasks):
    """``tasks`` as a `TaskSet` of the rows the adapting estimator sees.

    Through the fitted transformers of the pipelines around it, if any: they
    transform row by row, so transforming every row once is transforming
    each episode.
    """
    path = adaptation_path(estimator)
    return _as_taskset(tasks, path.transform if path.transformers else None)


def warn_non_finite(per_task, tasks, who, stacklevel):
    """``per_task`` scores, with a warning naming a task whose score is not finite.

    ``stacklevel`` counts from the caller of this function, as `warnings.warn`
    does (the `validate_params` wrapper of a public helper is one level).
    """
    bad = ~np.isfinite(per_task)
    if bad.any():
        warnings.warn(
            f"The score of {who} on {tasks.task_name(int(np.argmax(bad)))} (and "
            f"{int(bad.sum()) - 1} other tasks of {len(per_task)}) is NaN or "
            "infinite: its predictions or the metric are not finite, and neither "
            "is the mean.",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )
    return per_task


def _check_sample_weight(sample_weight, tasks):
    """``sample_weight`` as floats, one per row of ``tasks``, or None."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=float)
    if weight.shape != (len(tasks.X),):
        raise ValueError(
            f"sample_weight has {weight.shape[0] if weight.ndim else 1} entries "
            f"(shape {weight.shape}) but the tasks have {len(tasks.X)} rows: give "
            "one weight per row."
        )
    return weight


def draw_episodes(tasks, *, k_shot, n_query, n_episodes, per_class, random_state):
    """Seeded support/query row indices of every (episode, task).

    Returns a list over episodes of lists over tasks of ``(support, query)``
    absolute row indices into ``tasks.X``.
    """
    rng = check_random_state(random_state)
    return [
        split_support_query(
            tasks, k_shot, n_query=n_query, per_class=per_class, rng=rng
        )
        for _ in range(n_episodes)
    ]


def _score(y_true, y_pred, weight, classifier):
    """Accuracy, or R² (uniform average over outputs), as scikit-learn's score."""
    if classifier:
        correct = y_true == y_pred
        return float(
            correct.mean() if weight is None else np.average(correct, weights=weight)
        )
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    w = np.ones((len(y_true), 1)) if weight is None else weight[:, None]
    mean = (w * y_true).sum(0) / w.sum()
    total = (w * (y_true - mean) ** 2).sum(0)
    residual = (w * (y_true - y_pred) ** 2).sum(0)
    if (total > 0).all():
        return float((1 - residual / total).mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / total, np.where(residual > 0, 0.0, 1.0))
    return float(r2.mean())


def predict_episodes(estimator, supports, queries, task_names):
    """Adapt to each support set and predict its query rows.

    Goes through the estimator's `~sktransfer._adapt.AdaptationPath`: the
    meta-learners adapt and predict all episodes in vectorised passes; any
    other estimator is adapted episode by episode on a copy, so the caller's
    estimator keeps its state. The rows are those the adapting estimator
    sees (already through a pipeline's transformers).
    """
    return adaptation_path(estimator).predict_episodes(supports, queries, task_names)


def adapted_episodes(estimator, tasks, *, k_shot, n_query, n_episodes, random_state):
    """Draw seeded episodes of every task, adapt to each, predict its query rows.

    ``tasks`` hold the rows the adapting estimator sees (see `_as_taskset`).
    Returns the ``(support, query)`` row indices of every episode, episode by
    episode and task by task within each, and the query predictions.
    """
    episodes = draw_episodes(
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        per_class=is_classifier(estimator),
        random_state=random_state,
    )
    flat = [pair for episode in episodes for pair in episode]
    X, y = tasks.X, tasks.y
    predictions = predict_episodes(
        estimator,
        [(X[s], y[s]) for s, _ in flat],
        [X[q] for _, q in flat],
        [tasks.task_name(c) for c in range(tasks.n_tasks)] * n_episodes,
    )
    return flat, predictions


# The arguments the evaluation helpers share, as `validate_params` checks them.
EPISODE_CONSTRAINTS = {
    "estimator": "no_validation",
    "tasks": "no_validation",
    "k_shot": [Interval(Integral, 1, None, closed="left")],
    "n_query": [None, Interval(Integral, 1, None, closed="left")],
    "n_episodes": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
}


@validate_params(
    {
        **EPISODE_CONSTRAINTS,
        "sample_weight": [None, "array-like"],
        "metric": [None, callable],
    },
    prefer_skip_nested_validation=False,
)
def few_shot_score(
    estimator,
    tasks,
    *,
    k_shot,
    n_query=None,
    n_episodes=1,
    random_state=None,
    sample_weight=None,
    metric=None,
):
    """Few-shot score of an estimator over tasks: adapt on a support set, score.

    For each episode and task, draws ``k_shot`` support rows (per class for
    classifiers), adapts the estimator to them, and scores its predictions on
    the query rows (accuracy, or R² for regressors). The estimator itself is
    left as it was. For the meta-learners all episodes are adapted and
    predicted in vectorised passes, not in a Python loop.

    Parameters
    ----------
    estimator : estimator
        A fitted sktransfer estimator, or a `~sklearn.pipeline.Pipeline`,
        `~sklearn.compose.TransformedTargetRegressor` or fitted search object
        around one (see `sktransfer.adapt`). A pipeline's fitted transformers
        transform the rows of ``tasks`` once; they are not refitted.
    tasks : sequence of (X, y) pairs, TaskSet or tuple (X, y, task_ids)
        The evaluation tasks.
    k_shot : int
        Support rows per class (classifiers) or per task (regressors).
    n_query : int, default=None
        Query rows per class (or per task); ``None`` scores all other rows.
    n_episodes : int, default=1
        Episodes per task, each with its own support/query split.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows of ``tasks`` (flat order of `TaskSet.X`).
    metric : callable, default=None
        ``metric(y_true, y_pred)`` of one episode's query rows (called with
        ``sample_weight=`` when weights are given), e.g.
        ``sklearn.metrics.mean_squared_error``; ``None`` is the estimator's
        own score (accuracy or R²). R² of a single task is unstable when
        the task's targets barely vary.

    Returns
    -------
    result : FewShotResult
        ``mean``, ``ci95``, ``per_task``, ``task_labels`` and ``scores``.

    Examples
    --------
    >>> from sktransfer import MAMLRegressor, few_shot_score
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=30, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> new = make_sinusoid_tasks(n_tasks=10, random_state=1)
    >>> result = few_shot_score(est, new, k_shot=5, random_state=0)
    >>> result.per_task.shape
    (10,)
    """
    tasks = tasks_as_seen_by(estimator, tasks)
    weight = _check_sample_weight(sample_weight, tasks)
    classifier = is_classifier(estimator)
    flat, predictions = adapted_episodes(
        estimator,
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
    )
    y = tasks.y
    if metric is None:

        def metric_of(y_true, y_pred, w):
            return _score(y_true, y_pred, w, classifier)
    else:

        def metric_of(y_true, y_pred, w):
            if w is None:
                return float(metric(y_true, y_pred))
            return float(metric(y_true, y_pred, sample_weight=w))

    scores = np.array(
        [
            metric_of(y[q], pred, None if weight is None else weight[q])
            for (_, q), pred in zip(flat, predictions, strict=True)
        ]
    ).reshape(n_episodes, tasks.n_tasks)
    per_task = warn_non_finite(scores.mean(0), tasks, "the adapted estimator", 3)
    mean = float(per_task.mean())
    if len(per_task) > 1:
        half = stats.t.ppf(0.975, len(per_task) - 1) * stats.sem(per_task)
    else:
        half = np.nan
    return FewShotResult(
        mean=mean,
        ci95=(mean - half, mean + half),
        per_task=per_task,
        task_labels=tasks.task_labels,
        scores=scores,
    )
