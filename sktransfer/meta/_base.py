"""The shared base of the meta-learners: task forms, fit, few-shot scoring."""

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from sktransfer.base import BaseTransferEstimator, restore_on_error
from sktransfer.meta._episodes import EpisodeBatchMixin
from sktransfer.model_selection._few_shot import few_shot_score
from sktransfer.tasks._taskset import TaskSet


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
        check_is_fitted(self)
        with restore_on_error(self):
            X, y = validate_data(
                self, X, y, reset=False, dtype=np.float64, **self._y_checks()
            )
            target, extra = self._encode_support(y)
            device = self._device_of_module()
            adapted = self._adapt_batch(
                torch.as_tensor(self._episode_inputs(X), device=device)[None],
                target.to(device)[None],
                torch.ones((1, len(X)), dtype=torch.float64, device=device),
            )
            self._keep_adaptation(adapted)
            for name, value in extra.items():
                setattr(self, name, value)
        return self

    def _few_shot_score(self, X, y, sample_weight, task_ids):
        """Mean over tasks of the score after adapting to a seeded support set."""
        check_is_fitted(self)
        X, y = validate_data(
            self, X, y, reset=False, dtype=np.float64, **self._y_checks()
        )
        return few_shot_score(
            self,
            TaskSet.from_arrays(X, y, task_ids),
            k_shot=self.k_shot,
            random_state=self.random_state,
            sample_weight=sample_weight,
        ).mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
