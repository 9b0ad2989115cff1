"""Few-shot evaluation's core: seeded episodes adapted to and scored.

Shared by `sktransfer.model_selection` and the estimators' own
``score(..., task_ids=...)``; it depends on the tasks and on adaptation
(`sktransfer._adapt`), never on an estimator family. An estimator joins the
batched path through the episode protocol of `AdaptationPath.predict_episodes`.
"""

import warnings

import numpy as np
from sklearn.base import is_classifier

from sktransfer._adapt import adaptation_path
from sktransfer.tasks._splits import draw_episodes, scorable_tasks


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


def scored_tasks(estimator, tasks, k_shot, weight, stacklevel, support="balanced"):
    """The tasks that can be scored, and their rows' weights (or None).

    A task that cannot give ``k_shot`` support rows (per class for a
    classifier) and one query row is left out, with one `UserWarning` that
    counts and names them; the result's ``task_labels`` say which tasks were
    scored. When no task can be scored, the error names the first.
    """
    per_class = is_classifier(estimator)
    keep = scorable_tasks(tasks, k_shot, per_class=per_class, support=support)
    if keep.all():
        return tasks, weight
    if not keep.any():  # the error of the first task
        draw_episodes(
            tasks,
            k_shot=k_shot,
            n_query=None,
            n_episodes=1,
            per_class=per_class,
            random_state=0,
            support=support,
        )
    names = [tasks.task_name(c) for c in np.flatnonzero(~keep)]
    shown = ", ".join(names[:5]) + (
        f" and {len(names) - 5} more" if len(names) > 5 else ""
    )
    if not per_class:
        unit = ""
    elif support == "balanced":
        unit = " of each class"
    else:
        unit = " per class, in any mix,"
    warnings.warn(
        f"{len(names)} of {tasks.n_tasks} tasks cannot give k_shot={k_shot} "
        f"support rows{unit} and a query row, and are not scored: {shown}. "
        "The result's task_labels list the tasks scored.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    tasks, rows = tasks._select(keep)
    return tasks, None if weight is None else weight[rows]


def check_sample_weight(sample_weight, tasks):
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


def score_predictions(y_true, y_pred, weight, classifier):
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


def predict_episodes(estimator, supports, queries, task_names, *, encoded=True):
    """Adapt to each support set and predict its query rows.

    Goes through the estimator's `~sktransfer._adapt.AdaptationPath`: an
    estimator with the episode protocol (``predict_episodes``, the
    meta-learners) adapts and predicts all episodes in vectorised passes; any
    other estimator is adapted episode by episode on a copy, so the caller's
    estimator keeps its state. The rows are those the adapting estimator
    sees (`~sktransfer._adapt.AdaptationPath.validated_rows`) with
    ``encoded``; without, rows it takes as they are (a baseline given the
    adapted estimator's rows).
    """
    return adaptation_path(estimator).predict_episodes(
        supports, queries, task_names, encoded=encoded
    )


def adapted_episodes(
    estimator,
    tasks,
    *,
    k_shot,
    n_query,
    n_episodes,
    random_state,
    support="balanced",
):
    """Draw seeded episodes of every task, adapt to each, predict its query rows.

    ``tasks`` hold the rows the adapting estimator sees; ``support`` is how a
    classifier's support rows follow the classes (see `draw_episodes`). Returns the
    ``(support, query)`` row indices of every episode, episode by episode and
    task by task within each, and the query predictions.
    """
    episodes = draw_episodes(
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        per_class=is_classifier(estimator),
        random_state=random_state,
        support=support,
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


def episode_scores(
    estimator,
    tasks,
    *,
    k_shot,
    n_query,
    n_episodes,
    random_state,
    weight=None,
    metric=None,
    support="balanced",
):
    """The score of every episode of every task, ``(n_episodes, n_tasks)``.

    ``tasks`` hold the rows the adapting estimator sees and ``weight`` one
    float per row or None (see `check_sample_weight`); ``metric`` is
    ``metric(y_true, y_pred)`` (with ``sample_weight=`` when weighted), or
    None for the estimator's own score (`score_predictions`).
    """
    classifier = is_classifier(estimator)
    flat, predictions = adapted_episodes(
        estimator,
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
        support=support,
    )
    y = tasks.y
    if metric is None:

        def metric_of(y_true, y_pred, w):
            return score_predictions(y_true, y_pred, w, classifier)
    else:

        def metric_of(y_true, y_pred, w):
            if w is None:
                return float(metric(y_true, y_pred))
            return float(metric(y_true, y_pred, sample_weight=w))

    return np.array(
        [
            metric_of(y[q], pred, None if weight is None else weight[q])
            for (_, q), pred in zip(flat, predictions, strict=True)
        ]
    ).reshape(n_episodes, tasks.n_tasks)
