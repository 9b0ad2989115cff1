"""Transfer measured against baselines on identical support/query splits."""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer
from sklearn.neighbors import NearestCentroid
from sklearn.utils.validation import check_is_fitted

from sktransfer._adapt import adaptation_path
from sktransfer._evaluation import (
    adapted_episodes,
    predict_episodes,
    scored_tasks,
    warn_non_finite,
)
from sktransfer._evaluation import score_predictions as _score
from sktransfer.baselines import (
    PooledClassifier,
    PooledRegressor,
    SupportSetClassifier,
    SupportSetRegressor,
)
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.model_selection._few_shot import (
    EPISODE_CONSTRAINTS,
    _as_taskset,
    tasks_as_seen_by,
)
from sktransfer.utils._sklearn_compat import validate_params


@dataclass
class TransferReport:
    """Per-task scores of an adapted estimator beside baselines on the same splits.

    Attributes
    ----------
    task_labels : ndarray of shape (n_tasks,)
        The tasks.
    adapted : ndarray of shape (n_tasks,)
        Score of the adapted estimator per task (mean over episodes).
    baselines : dict of str to ndarray of shape (n_tasks,)
        Score of each baseline per task, on the same support/query splits.
    gain : dict of str to ndarray of shape (n_tasks,)
        ``adapted - baselines[name]`` per task: positive where the adapted
        estimator is better.
    mean_gain : dict of str to float
        Mean of each ``gain`` over tasks; negative means negative transfer
        with respect to that baseline.
    ci95 : dict of str to tuple of float
        Paired 95% confidence interval (Student's t over tasks) of each mean
        gain; NaN with a single task.
    metric : str
        What the scores are (greater is better).
    """

    task_labels: np.ndarray
    adapted: np.ndarray
    baselines: dict
    gain: dict
    mean_gain: dict
    ci95: dict
    metric: str = "score"

    def to_frame(self):
        """Per-task scores as a DataFrame (needs pandas).

        Returns
        -------
        frame : pandas.DataFrame
            One row per task (indexed by task label), one column for the
            adapted estimator (``"adapted"``) and one per baseline.
        """
        import pandas as pd

        return pd.DataFrame(
            {"adapted": self.adapted, **self.baselines},
            index=pd.Index(self.task_labels, name="task"),
        )

    def __str__(self):
        n_tasks = len(self.task_labels)
        width = max([len("adapted estimator"), *map(len, self.baselines)]) + 2
        lines = [
            f"Transfer report: {self.metric} over {n_tasks} task"
            f"{'s' if n_tasks != 1 else ''} (greater is better)",
            f"{'':{width}}{'score':>9}{'gain':>10}   {'95% CI of the gain':<22}"
            "adapted better on",
            f"{'adapted estimator':{width}}{self.adapted.mean():>9.3f}",
        ]
        for name, scores in self.baselines.items():
            low, high = self.ci95[name]
            wins = int((self.gain[name] > 0).sum())
            lines.append(
                f"{name:{width}}{scores.mean():>9.3f}{self.mean_gain[name]:>+10.3f}"
                f"   {f'{low:+.3f} to {high:+.3f}':<22}{wins} of {n_tasks}"
            )
        return "\n".join(lines)


def default_baselines(estimator, train_tasks=None):
    """The baselines `transfer_report` uses by default, unfitted.

    - ``"support set only"``: `~sktransfer.SupportSetClassifier` or
      `~sktransfer.SupportSetRegressor` at its defaults (a scaled logistic
      or ridge regression fitted on the support rows alone), always.
    - ``"pooled"`` and ``"pooled + shrunk offset"``:
      `~sktransfer.PooledClassifier` or `~sktransfer.PooledRegressor` with
      ``offset=None`` and ``offset="shrunk"``, when ``train_tasks`` are given
      and the label space is shared (the estimator has no ``n_way``, or
      ``n_way=None``). `transfer_report` fits them on ``train_tasks``.
    - ``"nearest centroid"``: ``SupportSetClassifier(NearestCentroid())``,
      for an episodic estimator (``n_way`` set).

    Parameters
    ----------
    estimator : estimator with ``adapt``
        The estimator the baselines are for: a classifier gets classifiers,
        a regressor regressors.
    train_tasks : object, default=None
        The tasks the estimator was trained on, in any form `transfer_report`
        accepts; only whether they are given matters here.

    Returns
    -------
    baselines : dict of str to estimator
        Name to unfitted baseline, in the order `transfer_report` shows them.

    Examples
    --------
    >>> from sktransfer import MAMLClassifier, MAMLRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> from sktransfer.model_selection import default_baselines
    >>> list(default_baselines(MAMLRegressor()))
    ['support set only']
    >>> train = make_sinusoid_tasks(n_tasks=10, random_state=0)
    >>> list(default_baselines(MAMLRegressor(), train_tasks=train))
    ['support set only', 'pooled', 'pooled + shrunk offset']
    >>> list(default_baselines(MAMLClassifier(n_way=5)))
    ['support set only', 'nearest centroid']
    """
    classifier = is_classifier(estimator)
    try:  # the n_way of the estimator that adapts, inside a pipeline or search
        inner = adaptation_path(estimator).estimator
    except (TypeError, NotFittedError):
        inner = estimator
    episodic = getattr(inner, "n_way", None) is not None
    support, pooled = (
        (SupportSetClassifier, PooledClassifier)
        if classifier
        else (SupportSetRegressor, PooledRegressor)
    )
    baselines = {"support set only": support()}
    if train_tasks is not None and not episodic:
        baselines["pooled"] = pooled(offset=None)
        baselines["pooled + shrunk offset"] = pooled(offset="shrunk")
    if episodic:
        baselines["nearest centroid"] = SupportSetClassifier(NearestCentroid())
    return baselines


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _reads_dtypes(baseline):
    """Whether ``baseline`` finds its categorical columns from the dtypes."""
    spec = baseline.get_params(deep=False).get("categorical_features")
    return isinstance(spec, str) and spec == "from_dtype"


def _on_codes(baseline, categorical):
    """``baseline`` (unfitted), or a clone of it that reads the ``categorical``
    columns (a mask, or None) of the rows as categories: the adapted
    estimator's codes of its categorical columns (see `tasks_as_seen_by`)."""
    if categorical is None or not _reads_dtypes(baseline):
        return baseline
    return clone(baseline).set_params(categorical_features=categorical)


def _prepared_baseline(name, baseline, classifier, train_tasks, categorical):
    """A baseline ready to adapt: wrapped, used as is, or fitted on train_tasks.

    ``categorical`` is the adapted estimator's mask of categorical columns
    (or None): the rows hold their codes, which a baseline reads as
    categories (see `_on_codes`).
    """
    kind = "classifier" if classifier else "regressor"
    if is_classifier(baseline) != classifier:
        raise ValueError(
            f"Baseline {name!r} ({type(baseline).__name__}) must be a {kind}, as "
            "the adapted estimator is."
        )
    if not hasattr(baseline, "adapt"):
        wrapper = SupportSetClassifier if classifier else SupportSetRegressor
        return _on_codes(wrapper(baseline), categorical)
    fitted = _is_fitted(baseline)
    if (
        fitted
        and categorical is not None
        and getattr(baseline, "is_categorical_", None) is not None
        and _reads_dtypes(baseline)
    ):
        raise ValueError(
            f"Baseline {name!r} ({type(baseline).__name__}) is fitted, and the "
            "adapted estimator encodes categorical columns: pass the baseline "
            "unfitted, with train_tasks=, so that it learns from the same "
            "encoded rows."
        )
    if isinstance(baseline, (SupportSetClassifier, SupportSetRegressor)):
        # adapts without being fitted
        return baseline if fitted else _on_codes(baseline, categorical)
    if fitted:
        return baseline
    if train_tasks is None:
        raise ValueError(
            f"Baseline {name!r} ({type(baseline).__name__}) is not fitted and "
            "learns from training tasks: pass train_tasks= (the tasks the "
            "adapted estimator was trained on), or fit it first."
        )
    return clone(_on_codes(baseline, categorical)).fit(_as_taskset(train_tasks))


def prepare_baselines(estimator, baselines, train_tasks):
    """The baselines of `transfer_report`, ready to adapt.

    ``None`` is `default_baselines`; each baseline is wrapped, used as is or
    fitted on ``train_tasks`` (see `_prepared_baseline`), whose rows go
    through the fitted transformers of the pipelines around ``estimator``
    first: the baselines see what the adapting estimator sees.
    """
    if baselines is None:
        baselines = default_baselines(estimator, train_tasks)
    if train_tasks is not None:
        train_tasks = tasks_as_seen_by(estimator, train_tasks)
    classifier = is_classifier(estimator)
    categorical = getattr(adaptation_path(estimator).estimator, "is_categorical_", None)
    return {
        name: _prepared_baseline(name, baseline, classifier, train_tasks, categorical)
        for name, baseline in baselines.items()
    }


def _prediction_scorer(name):
    """``metric(y_true, y_pred)`` of a scikit-learn scorer name, greater is better.

    The one place that reads a scorer's private fields (score function, sign,
    keyword arguments and the method it calls).
    """
    scorer = get_scorer(name)
    response = getattr(scorer, "_response_method", None)
    if response != "predict":
        raise ValueError(
            f"metric={name!r} scores the output of {response}, but transfer_report "
            "compares predictions: use a scorer of predict (e.g. 'accuracy', "
            "'neg_root_mean_squared_error') or a callable metric(y_true, y_pred)."
        )
    func, sign, kwargs = scorer._score_func, scorer._sign, scorer._kwargs

    def metric(y_true, y_pred):
        return sign * func(y_true, y_pred, **kwargs)

    return metric


def _resolve_metric(metric, classifier):
    """The per-episode metric (greater is better) and how the report names it."""
    if metric is None:

        def score(y_true, y_pred):
            return _score(y_true, y_pred, None, classifier)

        return score, "accuracy" if classifier else "R²"
    if isinstance(metric, str):
        return _prediction_scorer(metric), metric
    if callable(metric):
        return metric, getattr(metric, "__name__", "metric")
    raise TypeError(
        "metric must be None, a scorer name such as 'accuracy' or a callable "
        f"metric(y_true, y_pred), got {type(metric).__name__}."
    )


def _paired_ci95(gain):
    """Student's t 95% interval of the mean of paired differences."""
    mean = float(gain.mean())
    if len(gain) < 2:
        return (np.nan, np.nan)
    half = stats.t.ppf(0.975, len(gain) - 1) * stats.sem(gain)
    return (mean - half, mean + half)


def _negative_transfer_message(report):
    n_tasks = len(report.task_labels)
    parts = []
    for name, mean_gain in report.mean_gain.items():
        if not mean_gain < 0:
            continue
        low, high = report.ci95[name]
        interval = (
            f"95% CI of the difference {-high:.3f} to {-low:.3f}"
            if n_tasks > 1
            else "no confidence interval from one task"
        )
        parts.append(
            f"{name!r} scores {-mean_gain:.3f} higher than the adapted estimator "
            f"on average over {n_tasks} task{'s' if n_tasks != 1 else ''} "
            f"({interval}; better on {int((report.gain[name] < 0).sum())} of them)."
        )
    return "Negative transfer: " + " ".join(parts) if parts else None


@validate_params(
    {
        **EPISODE_CONSTRAINTS,
        "baselines": [None, dict],
        "train_tasks": "no_validation",
        "metric": [None, str, callable],
    },
    prefer_skip_nested_validation=False,
)
def transfer_report(
    estimator,
    tasks,
    *,
    k_shot,
    baselines=None,
    train_tasks=None,
    n_query=None,
    n_episodes=1,
    random_state=None,
    metric=None,
    support="balanced",
):
    """Compare an adapted estimator with baselines, task by task, on equal splits.

    For each episode and task, the estimator and every baseline adapt to the
    same seeded support rows (``k_shot`` per class for classifiers, per task
    for regressors) and are scored on the same query rows; scores are
    averaged over episodes per task. A task too short to give the support
    rows and one query row is left out, with a warning, as in
    `few_shot_score`. Warns with
    `~sktransfer.exceptions.NegativeTransferWarning`, naming every baseline
    that beats the adapted estimator on average, with the margin and its
    confidence interval.

    Parameters
    ----------
    estimator : estimator
        A fitted (meta-trained or pre-trained) sktransfer estimator, or a
        `~sklearn.pipeline.Pipeline`,
        `~sklearn.compose.TransformedTargetRegressor` or fitted search object
        around one (see `sktransfer.adapt`); it is left as it was. A
        pipeline's fitted transformers transform the rows of ``tasks`` and
        ``train_tasks`` once (they are not refitted), and the baselines see
        the transformed rows, as the adapting estimator does.
    tasks : sequence of (X, y) pairs, TaskSet or tuple (X, y, task_ids)
        The target tasks.
    k_shot : int
        Support rows per class (classifiers) or per task (regressors).
    baselines : dict of str to estimator, default=None
        Name to baseline. An estimator with ``adapt`` (`~sktransfer.PooledRegressor`,
        `~sktransfer.SupportSetClassifier`, another sktransfer estimator) is
        used as it is when fitted, else a clone is fitted on ``train_tasks``
        (the support-set baselines need no fitting); a scikit-learn estimator
        without ``adapt`` is fitted on each support set alone (wrapped in
        `~sktransfer.SupportSetClassifier` or `~sktransfer.SupportSetRegressor`).
        ``None`` uses `~sktransfer.model_selection.default_baselines`:
        "support set only", plus "pooled" and "pooled + shrunk offset"
        (fitted on ``train_tasks``) when ``train_tasks`` are given and the
        label space is shared, or "nearest centroid" for an episodic
        (``n_way``) estimator.
    train_tasks : sequence of (X, y) pairs, TaskSet or tuple (X, y, task_ids), \
            default=None
        The tasks the estimator was trained on, to fit the baselines that
        learn from training tasks (the pooled ones).
    n_query : int, default=None
        Query rows per class (or per task); ``None`` scores all other rows.
    n_episodes : int, default=1
        Episodes per task, each with its own support/query split.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits.
    metric : str or callable, default=None
        How a query set is scored, greater is better: ``None`` is the
        estimator's own score (accuracy or R²); a scikit-learn scorer name
        of predictions such as ``"accuracy"`` or
        ``"neg_root_mean_squared_error"``; or a callable
        ``metric(y_true, y_pred)``.
    support : {"balanced", "stratified", "random"}, default="balanced"
        How a classifier's support rows follow the task's classes, as in
        `few_shot_score`.

    Returns
    -------
    report : TransferReport
        Per-task ``adapted`` and ``baselines`` scores, each baseline's
        ``gain`` (adapted minus baseline), ``mean_gain`` and paired ``ci95``.

    See Also
    --------
    few_shot_score : The adapted side of the report alone.

    Examples
    --------
    >>> import warnings
    >>> from sktransfer import MAMLRegressor, transfer_report
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=30, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> new = make_sinusoid_tasks(n_tasks=5, random_state=1)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     report = transfer_report(
    ...         est, new, k_shot=5, train_tasks=(X, y, t), random_state=0
    ...     )
    >>> list(report.gain)
    ['support set only', 'pooled', 'pooled + shrunk offset']
    >>> report.gain["pooled"].shape
    (5,)
    """
    tasks = tasks_as_seen_by(estimator, tasks)
    tasks, _ = scored_tasks(estimator, tasks, k_shot, None, 3, support)
    classifier = is_classifier(estimator)
    score, metric_name = _resolve_metric(metric, classifier)
    baselines = prepare_baselines(estimator, baselines, train_tasks)
    flat, adapted = adapted_episodes(
        estimator,
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
        support=support,
    )
    X, y = tasks.X, tasks.y
    supports = [(X[s], y[s]) for s, _ in flat]
    queries = [X[q] for _, q in flat]
    names = [tasks.task_name(c) for c in range(tasks.n_tasks)] * n_episodes

    def per_task(predictions, who):
        scores = [
            float(score(y[q], pred))
            for (_, q), pred in zip(flat, predictions, strict=True)
        ]
        per = np.reshape(scores, (n_episodes, tasks.n_tasks)).mean(0)
        return warn_non_finite(per, tasks, who, stacklevel=4)

    adapted_scores = per_task(adapted, "the adapted estimator")
    baseline_scores = {}
    for name, baseline in baselines.items():
        try:
            predictions = predict_episodes(
                baseline, supports, queries, names, encoded=False
            )
        except ValueError as exc:
            raise ValueError(f"Baseline {name!r} failed: {exc}") from exc
        baseline_scores[name] = per_task(predictions, f"baseline {name!r}")
    gain = {name: adapted_scores - s for name, s in baseline_scores.items()}
    report = TransferReport(
        task_labels=tasks.task_labels,
        adapted=adapted_scores,
        baselines=baseline_scores,
        gain=gain,
        mean_gain={name: float(g.mean()) for name, g in gain.items()},
        ci95={name: _paired_ci95(g) for name, g in gain.items()},
        metric=metric_name,
    )
    message = _negative_transfer_message(report)
    if message is not None:
        # 3: past the validate_params wrapper, at the caller.
        warnings.warn(message, NegativeTransferWarning, stacklevel=3)
    return report
