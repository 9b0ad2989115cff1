"""The shared base of the meta-learners: task forms, fit, few-shot scoring."""

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from sktransfer._evaluation import (
    check_sample_weight,
    episode_scores,
    scored_tasks,
    warn_non_finite,
)
from sktransfer.base import BaseTransferEstimator, restore_on_error, validate_xy
from sktransfer.exceptions import SingleTaskWarning
from sktransfer.meta._episodes import EpisodeBatchMixin
from sktransfer.tasks._taskset import TaskSet
from sktransfer.utils._categorical import encode_categories
from sktransfer.utils._divergence import (
    adaptation_error,
    all_finite,
    tensors_in,
)
from sktransfer.utils._sklearn_compat import _fit_context
from sktransfer.utils._state import publish, working_copy


class BaseMetaLearner(EpisodeBatchMixin, BaseTransferEstimator):
    """What every meta-learner shares: `fit` and `partial_fit` on the three
    task forms, the skorch engine's history, few-shot scoring and routing.

    A subclass provides ``_fit(X, y, task_ids, *, reset, n_iterations)``
    (``n_iterations`` None for one epoch of `partial_fit`), its engine as
    ``net_``, the batched adaptation of `EpisodeBatchMixin` and
    ``_keep_adaptation(adapted)``, which stores one adapted task for
    `predict`.
    """

    # With metadata routing enabled, task labels given to a meta-estimator
    # (GridSearchCV, cross_validate, Pipeline) reach fit and score by default.
    __metadata_request__fit = {"task_ids": True}
    __metadata_request__partial_fit = {"task_ids": True}
    __metadata_request__score = {"task_ids": True}

    @property
    def history_(self):
        """skorch ``History``: one row per epoch."""
        return self.net_.history

    # -- fit ---------------------------------------------------------------------
    def _validate_tasks(self, *args, **kwargs):
        """`BaseTransferEstimator._validate_tasks`, warning of a single task.

        In the shared label space (no ``n_way``), ``fit(X, y)`` without
        ``task_ids`` makes all rows one task, and nothing is meta-learned
        about how tasks differ: warn with `SingleTaskWarning`, saying how to
        pass the tasks. (Episodic models draw episodes from the classes of
        one task, so they need no warning.)
        """
        tasks, single = super()._validate_tasks(*args, **kwargs)
        if single and getattr(self, "n_way", None) is None:
            name = type(self).__name__
            stopping = (
                " Early stopping holds out whole tasks and cannot run on one."
                if getattr(self, "early_stopping", False)
                else ""
            )
            # fit -> sklearn's _fit_context -> _fit -> here: point at the caller.
            warnings.warn(
                f"{name} was fitted on a single task: no task_ids were given, so "
                "all rows form one task, and meta-learning learns from many tasks."
                f"{stopping} Give the task of every row: {name}().fit(X, y, "
                "task_ids=t), or a list of (X, y) pairs. Through a Pipeline or "
                "GridSearchCV, enable metadata routing: with sklearn.config_context"
                "(enable_metadata_routing=True): GridSearchCV(est, grid, "
                "cv=GroupKFold()).fit(X, y, groups=t, task_ids=t).",
                SingleTaskWarning,
                stacklevel=5,
            )
        return tasks, single

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, task_ids=None):
        """Meta-train on tasks.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The tasks: pairs (or a `TaskSet`), or flat rows with ``task_ids``,
            or one task's rows.
        y : array-like of shape (n_samples,), default=None
            Targets of the flat forms; ``None`` when ``X`` holds the tasks.
        task_ids : array-like of shape (n_samples,), default=None
            Task label of each row of the flat form. Without it the whole
            set is one task.

        Returns
        -------
        self : object
            The meta-trained estimator.
        """
        with restore_on_error(self):
            return self._fit(X, y, task_ids, reset=True, n_iterations=self.max_iter)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, task_ids=None, **kwargs):
        """One epoch of meta-training on the given tasks.

        An epoch is a pass of meta-batches over the tasks (for the
        closed-form estimators, at least 50 meta-iterations). The first call
        initialises the model like `fit` (without early stopping); later calls
        go on from the current weights.

        Parameters
        ----------
        X : sequence of (X_i, y_i) pairs, TaskSet or array-like of shape \
                (n_samples, n_features)
            The tasks, in any of the forms `fit` accepts.
        y : array-like of shape (n_samples,), default=None
            Targets of the flat forms.
        task_ids : array-like of shape (n_samples,), default=None
            Task label of each row of the flat form.
        **kwargs : dict
            ``classes`` for classifiers: all labels of the shared label space,
            needed on the first call when later calls bring new labels.

        Returns
        -------
        self : object
            The estimator after one more epoch.
        """
        reset = not hasattr(self, "net_")
        with restore_on_error(self):
            return self._fit(X, y, task_ids, reset=reset, n_iterations=None, **kwargs)

    def adapt(self, X, y):
        """Adapt to a new task's support set.

        The MAML family takes ``n_adapt_steps`` gradient steps from the
        meta-learned weights; the closed-form estimators solve their head's
        posterior (or class prototypes) exactly. Either way adaptation always
        starts from what was meta-learned, never from a previous adaptation,
        and later calls to `predict` use it. A failing call leaves the
        estimator as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The support set's features.
        y : array-like of shape (n_samples,)
            The support set's targets.

        Returns
        -------
        self : object
            The adapted estimator.
        """
        self._validate_params()
        check_is_fitted(self)
        # Computed on a working copy and published in one assignment: threads
        # predicting meanwhile see the previous adaptation or this one, and a
        # failing or interrupted call leaves the previous one in place.
        est = working_copy(self)
        X, y = est._validate_support(X, y)
        target, extra = est._encode_support(y)
        device = est._device_of_module()
        try:
            adapted = est._adapt_batch(
                torch.as_tensor(est._episode_inputs(X), device=device)[None],
                target.to(device)[None],
                torch.ones((1, len(X)), dtype=torch.float64, device=device),
            )
        except torch.linalg.LinAlgError as exc:  # a posterior of non-finite rows
            raise adaptation_error(self) from exc
        if not bool(all_finite(tensors_in(adapted))):
            raise adaptation_error(self)
        est._keep_adaptation(adapted)
        est.__dict__.update(extra)
        publish(self, est)
        return self

    def _few_shot_score(self, X, y, sample_weight, task_ids):
        """Mean over tasks of the score after adapting to a seeded support set."""
        check_is_fitted(self)
        X = encode_categories(self, X, reset=False)
        X, y = validate_xy(self, X, y, reset=False, dtype=np.float64)
        # The parameters of the episodes, checked as `few_shot_score` checks
        # its arguments: set_params may have changed them since fit.
        self._validate_params()
        tasks = TaskSet.from_arrays(X, y, task_ids)
        # score -> here -> scored_tasks: the warning points at the caller.
        tasks, weight = scored_tasks(
            self, tasks, self.k_shot, check_sample_weight(sample_weight, tasks), 3
        )
        scores = episode_scores(
            self,
            tasks,
            k_shot=self.k_shot,
            n_query=None,
            n_episodes=1,
            random_state=self.random_state,
            weight=weight,
        )
        # score -> here -> warn_non_finite, as for scored_tasks above.
        per_task = warn_non_finite(scores.mean(0), tasks, "the adapted estimator", 3)
        return float(per_task.mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
