"""Transfer measured against a from-scratch baseline on identical splits."""

import copy
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone, is_classifier
from torch import nn

from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.model_selection._few_shot import (
    _as_taskset,
    _score,
    adapted_episodes,
)


@dataclass
class TransferReport:
    """Per-task scores of an adapted estimator beside a from-scratch baseline.

    Attributes
    ----------
    task_labels : ndarray of shape (n_tasks,)
        The tasks.
    adapted : ndarray of shape (n_tasks,)
        Score of the adapted estimator per task (mean over episodes).
    baseline : ndarray of shape (n_tasks,)
        Score of the baseline trained on the same support rows only.
    gain : ndarray of shape (n_tasks,)
        ``adapted - baseline``.
    mean_gain : float
        Mean of ``gain``; negative means negative transfer.
    """

    task_labels: np.ndarray
    adapted: np.ndarray
    baseline: np.ndarray
    gain: np.ndarray
    mean_gain: float


def _reinitialised(module):
    module = copy.deepcopy(module)
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module


def default_baseline(estimator):
    """The estimator's network, trained from scratch on the support rows only.

    A `FineTuneClassifier` or `FineTuneRegressor` with the same ``module``,
    ``module_params`` and ``hidden_layer_sizes`` (a module instance is
    re-initialised), trained full-batch with Adam (``lr=0.01``, 200 epochs).
    """
    from sktransfer.finetune import FineTuneClassifier, FineTuneRegressor

    cls = FineTuneClassifier if is_classifier(estimator) else FineTuneRegressor
    module = estimator.module
    if isinstance(module, nn.Module):
        module = _reinitialised(module)
    return cls(
        module=module,
        module_params=estimator.module_params,
        hidden_layer_sizes=estimator.hidden_layer_sizes,
        lr=0.01,
        max_iter=200,
        device=estimator.device,
        random_state=0,
    )


def transfer_report(
    estimator,
    tasks,
    *,
    baseline=None,
    k_shot,
    n_query=None,
    n_episodes=1,
    random_state=None,
):
    """Compare an adapted estimator with a from-scratch baseline, task by task.

    Both see the same seeded support/query splits: the estimator adapts to
    each support set, the baseline is trained on it alone, and both are scored
    on the query rows (accuracy, or R² for regressors). Warns with
    `~sktransfer.exceptions.NegativeTransferWarning` when the adapted estimator
    loses on average.

    Parameters
    ----------
    estimator : estimator with ``adapt``
        A fitted (meta-trained or pre-trained) sktransfer estimator.
    tasks : sequence of (X, y) pairs, TaskSet or tuple (X, y, task_ids)
        The target tasks.
    baseline : estimator, default=None
        Any scikit-learn estimator, cloned and fitted on each support set.
        ``None`` uses the estimator's own network trained from scratch (see
        `default_baseline`).
    k_shot : int
        Support rows per class (classifiers) or per task (regressors).
    n_query : int, default=None
        Query rows per class (or per task); ``None`` scores all other rows.
    n_episodes : int, default=1
        Episodes per task.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits.

    Returns
    -------
    report : TransferReport
        Per-task ``adapted`` and ``baseline`` scores, their ``gain`` and
        ``mean_gain``.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from sktransfer import MAMLRegressor, NegativeTransferWarning, transfer_report
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=30, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> new = make_sinusoid_tasks(n_tasks=5, random_state=1)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     report = transfer_report(
    ...         est, new, baseline=Ridge(), k_shot=5, random_state=0
    ...     )
    >>> report.gain.shape
    (5,)
    >>> (report.mean_gain < 0) == any(
    ...     issubclass(w.category, NegativeTransferWarning) for w in caught
    ... )
    True
    """
    tasks = _as_taskset(tasks)
    classifier = is_classifier(estimator)
    baseline = default_baseline(estimator) if baseline is None else baseline
    flat, adapted = adapted_episodes(
        estimator,
        tasks,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
    )
    X, y = tasks.X, tasks.y
    adapted_scores, baseline_scores = [], []
    for (s, q), pred in zip(flat, adapted, strict=True):
        adapted_scores.append(_score(y[q], pred, None, classifier))
        scratch = clone(baseline).fit(X[s], y[s])
        baseline_scores.append(_score(y[q], scratch.predict(X[q]), None, classifier))
    shape = (n_episodes, tasks.n_tasks)
    adapted_scores = np.reshape(adapted_scores, shape).mean(0)
    baseline_scores = np.reshape(baseline_scores, shape).mean(0)
    gain = adapted_scores - baseline_scores
    mean_gain = float(gain.mean())
    if mean_gain < 0:
        warnings.warn(
            f"Negative transfer: the adapted estimator scores {-mean_gain:.3f} "
            f"below the from-scratch baseline on average over {tasks.n_tasks} "
            f"tasks (worse on {int((gain < 0).sum())} of them).",
            NegativeTransferWarning,
            stacklevel=2,
        )
    return TransferReport(
        task_labels=tasks.task_labels,
        adapted=adapted_scores,
        baseline=baseline_scores,
        gain=gain,
        mean_gain=mean_gain,
    )
