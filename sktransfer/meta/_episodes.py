"""Adaptation and prediction of many episodes in vectorised passes."""

from contextlib import nullcontext

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from sktransfer.base import torch_seed, uses_global_rng
from sktransfer.meta._inner_loop import batched_forward


class EpisodeBatchMixin:
    """Batched `adapt` and `predict` of the MAML estimators.

    `few_shot_score` and `adapt` itself go through these methods: support
    sets are padded to a common size (padding rows have weight 0) and adapted
    through the functional core in one pass, then their query rows predicted
    in another.
    """

    def _adapt_batch(self, X, y, weight):
        """Adapt the meta-learned weights to many support sets in one pass.

        ``X`` is ``(n_tasks, n_rows, n_features)`` float32 on the module's
        device, ``y`` the encoded targets and ``weight`` 0 for padding rows.
        Returns the batched adapted parameters, detached.
        """
        seeded = (
            torch_seed(self._random_seed, X.device)
            if uses_global_rng(self.module_)
            else nullcontext()
        )
        with seeded:
            return self.net_.adapt_episodes(X, y, weight, self._n_adapt_steps())

    def _batched_outputs(self, params, X):
        """Float64 outputs ``(n_tasks, n_rows, n_outputs)`` of batched parameters."""
        module = self.module_
        state = {name: value.double() for name, value in params.items()}
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                return batched_forward(module)(state, X.double()).cpu().numpy()
        finally:
            module.train(was_training)

    def _predict_episodes(self, supports, queries, task_names, chunk_size=1024):
        """Adapt to every support set and predict its query rows, in batches.

        Used by `few_shot_score`: episodes are padded to a common size (padding
        rows have weight 0) and adapted and predicted ``chunk_size`` at a time
        through the functional core, instead of a Python loop of `adapt` and
        `predict`. Features and targets are standardised with the training
        statistics, as `adapt` and `predict` do; predictions come back in the
        user's units.
        """
        check_is_fitted(self)
        n_features = self.n_features_in_
        for (X_s, _), X_q, name in zip(supports, queries, task_names, strict=True):
            if X_s.shape[1] != n_features or X_q.shape[1] != n_features:
                raise ValueError(
                    f"{name} has {X_s.shape[1]} features but the model was fitted "
                    f"with {n_features}."
                )
        encoded = self._encode_episodes([y_s for _, y_s in supports], task_names)
        device = self._device_of_module()
        predictions = []
        for start in range(0, len(supports), chunk_size):
            idx = range(start, min(start + chunk_size, len(supports)))
            n_support = max(len(supports[i][1]) for i in idx)
            n_query = max(len(queries[i]) for i in idx)
            target_shape = encoded[start][0].shape[1:]
            X_s = np.zeros((len(idx), n_support, n_features), dtype=np.float32)
            y_s = np.zeros(
                (len(idx), n_support, *target_shape), dtype=encoded[start][0].dtype
            )
            w_s = np.zeros((len(idx), n_support), dtype=np.float32)
            X_q = np.zeros((len(idx), n_query, n_features))
            for j, i in enumerate(idx):
                m = len(supports[i][1])
                X_s[j, :m] = self._standardize_X(supports[i][0])
                y_s[j, :m] = encoded[i][0]
                w_s[j, :m] = 1.0
                X_q[j, : len(queries[i])] = self._standardize_X(queries[i])
            params = self._adapt_batch(
                torch.as_tensor(X_s, device=device),
                torch.as_tensor(y_s, device=device),
                torch.as_tensor(w_s, device=device),
            )
            out = self._batched_outputs(params, torch.as_tensor(X_q, device=device))
            for j, i in enumerate(idx):
                predictions.append(
                    self._decode(out[j, : len(queries[i])], encoded[i][1])
                )
        return predictions

    def _encode_episodes(self, ys, names):
        """Encoded targets of many support sets, and what their outputs decode to."""
        return [
            self._encode_episode(y, name) for y, name in zip(ys, names, strict=True)
        ]
