"""Adaptation and prediction of many episodes in vectorised passes."""

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from sktransfer.utils._divergence import check_finite_outputs


class EpisodeBatchMixin:
    """Batched adaptation and prediction of many episodes, for any meta-learner.

    The episode protocol: an estimator with a ``predict_episodes(supports,
    queries, task_names)`` method, returning the query predictions of every
    episode in the user's units, is evaluated by `few_shot_score`,
    `transfer_report` and ``score(..., task_ids=...)`` through that method
    (see `sktransfer._adapt.AdaptationPath.predict_episodes`); any other
    estimator is adapted episode by episode on a copy. Here support sets are
    padded to a common size (padding rows have weight 0) and adapted in one
    pass, then their query rows predicted in another. An estimator provides
    ``_adapt_batch(X, y, weight)`` (batched tensors in the module's units, on
    its device) and ``_batched_outputs(adapted, X)`` (float64 outputs
    ``(n_tasks, n_rows, n_outputs)``), and may override `_episode_inputs`.
    """

    def _episode_inputs(self, X):
        """The module's inputs for validated rows in the user's units."""
        return self._standardize_X(X)

    def predict_episodes(self, supports, queries, task_names, chunk_size=1024):
        """Adapt to every support set and predict its query rows, in batches.

        The episode protocol of few-shot evaluation: episodes are padded to a
        common size (padding rows have weight 0) and adapted and predicted
        ``chunk_size`` at a time through the functional core, instead of a
        Python loop of `adapt` and `predict`. Features and targets are
        standardised with the training statistics, as `adapt` and `predict`
        do. The estimator is not changed.

        Parameters
        ----------
        supports : list of (ndarray, ndarray)
            The support rows and targets of every episode, validated, in the
            user's units.
        queries : list of ndarray
            The query rows of every episode.
        task_names : list of str
            The name of every episode's task, for errors.
        chunk_size : int, default=1024
            Episodes adapted in one pass.

        Returns
        -------
        predictions : list of ndarray
            The query predictions of every episode, in the user's units.
        """
        check_is_fitted(self)
        n_features = self.n_features_in_
        for (X_s, _), X_q, name in zip(supports, queries, task_names, strict=True):
            for X_e in (X_s, X_q):  # the support rows, then the query rows
                if X_e.shape[1] != n_features:
                    raise ValueError(
                        f"{name} has {X_e.shape[1]} features but the model was "
                        f"fitted with {n_features}."
                    )
        encoded = self._encode_episodes([y_s for _, y_s in supports], task_names)
        device = self._device_of_module()
        predictions = []
        for start in range(0, len(supports), chunk_size):
            idx = range(start, min(start + chunk_size, len(supports)))
            inputs_s = [self._episode_inputs(supports[i][0]) for i in idx]
            inputs_q = [self._episode_inputs(queries[i]) for i in idx]
            width = inputs_s[0].shape[1]
            n_support = max(len(supports[i][1]) for i in idx)
            n_query = max(len(queries[i]) for i in idx)
            target_shape = encoded[start][0].shape[1:]
            # float64, as `adapt` gives them; a family that trains in float32
            # casts in its `_adapt_batch`.
            X_s = np.zeros((len(idx), n_support, width))
            y_s = np.zeros(
                (len(idx), n_support, *target_shape), dtype=encoded[start][0].dtype
            )
            w_s = np.zeros((len(idx), n_support))
            X_q = np.zeros((len(idx), n_query, width))
            for j, i in enumerate(idx):
                m = len(supports[i][1])
                X_s[j, :m] = inputs_s[j]
                y_s[j, :m] = encoded[i][0]
                w_s[j, :m] = 1.0
                X_q[j, : len(queries[i])] = inputs_q[j]
            params = self._adapt_batch(
                torch.as_tensor(X_s, device=device),
                torch.as_tensor(y_s, device=device),
                torch.as_tensor(w_s, device=device),
            )
            out = self._batched_outputs(params, torch.as_tensor(X_q, device=device))
            for j, i in enumerate(idx):
                check_finite_outputs(
                    out[j, : len(queries[i])], f"the model adapted to {task_names[i]}"
                )
                predictions.append(
                    self._decode(out[j, : len(queries[i])], encoded[i][1])
                )
        return predictions
