"""Few-shot evaluation over many tasks: seeded support/query episodes, one pass."""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from scipy import stats

from sktransfer._adapt import adaptation_path
from sktransfer._evaluation import (  # noqa: F401 - re-exported
    adapted_episodes,
    episode_scores,
    predict_episodes,
    scored_tasks,
    warn_non_finite,
)
from sktransfer._evaluation import check_sample_weight as _check_sample_weight
from sktransfer.tasks._splits import SUPPORT_KINDS, draw_episodes  # noqa: F401
from sktransfer.tasks._taskset import TaskSet
from sktransfer.utils._sklearn_compat import Interval, StrOptions, validate_params


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


def _is_flat(tasks):
    """Whether ``tasks`` is the flat ``(X, y, task_ids)`` triple, not a tuple
    of three ``(X, y)`` pairs (whose third item is no 1-D array)."""
    if not (isinstance(tasks, tuple) and len(tasks) == 3):
        return False
    try:
        return np.ndim(tasks[2]) == 1
    except ValueError:  # an (X, y) pair: numpy cannot make it one array
        return False


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
        if _is_flat(tasks):
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
    if _is_flat(tasks):
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
    if not (path.transformers or path.encodes_categories()):
        return _as_taskset(tasks)
    return _as_taskset(tasks, path.validated_rows)


# The arguments the evaluation helpers share, as `validate_params` checks them.
EPISODE_CONSTRAINTS = {
    "estimator": "no_validation",
    "tasks": "no_validation",
    "k_shot": [Interval(Integral, 1, None, closed="left")],
    "n_query": [None, Interval(Integral, 1, None, closed="left")],
    "n_episodes": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "support": [StrOptions(set(SUPPORT_KINDS))],
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
    support="balanced",
):
    """Few-shot score of an estimator over tasks: adapt on a support set, score.

    For each episode and task, draws ``k_shot`` support rows (per class for
    classifiers), adapts the estimator to them, and scores its predictions on
    the query rows (accuracy, or R² for regressors). The estimator itself is
    left as it was. A task that cannot give ``k_shot`` support rows (of each
    of its classes, for classifiers) and one query row is not scored, with
    one warning that counts and names such tasks; ``task_labels`` of the
    result list the tasks scored. For the meta-learners all episodes are adapted and
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
    support : {"balanced", "stratified", "random"}, default="balanced"
        How a classifier's support rows follow the task's classes:
        ``k_shot`` rows of each class (``"balanced"``, the N-way K-shot
        convention), or ``k_shot`` times the task's number of classes drawn
        in proportion to its class counts (``"stratified"``) or at random
        whatever their class (``"random"``), as labelled rows of a new task
        usually come. The query rows keep the task's class mix. Regressors
        draw ``k_shot`` rows per task whatever this is.

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
    # 3: past the validate_params wrapper, at the caller.
    weight = _check_sample_weight(sample_weight, tasks)
    tasks, weight = scored_tasks(estimator, tasks, k_shot, weight, 3, support)
    scores = episode_scores(
        estimator,
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
        weight=weight,
        metric=metric,
        support=support,
    )
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
