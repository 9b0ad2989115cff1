"""Adaptation through scikit-learn meta-estimators: pipelines, target transforms,
searches."""

import copy
from dataclasses import dataclass, field

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sktransfer.utils._categorical import encode_categories, user_rows


@dataclass
class AdaptationPath:
    """Where an estimator adapts, and what stands between it and the data.

    A `Pipeline`, a `TransformedTargetRegressor` and a fitted search object
    each delegate adaptation to an estimator inside them. Whatever the
    nesting, the rows reach that estimator through the pipelines' fitted
    transformers (``transformers``, applied in order) and the targets through
    the fitted target transforms (``target_regressors``, outermost first):
    transformers touch ``X`` only and target transforms ``y`` only, so the
    two commute.

    Attributes
    ----------
    estimator : estimator with ``adapt``
        The estimator that adapts.
    transformers : list of transformers
        The fitted steps before the last of every enclosing `Pipeline`.
    target_regressors : list of TransformedTargetRegressor
        The fitted target transforms, outermost first.
    """

    estimator: object
    transformers: list = field(default_factory=list)
    target_regressors: list = field(default_factory=list)

    def transform(self, X):
        """The rows as `estimator` takes them (through the fitted transformers)."""
        for transformer in self.transformers:
            X = transformer.transform(X)
        return X

    def encodes_categories(self):
        """Whether `estimator` encodes categorical columns of its own."""
        return getattr(self.estimator, "is_categorical_", None) is not None

    def validated_rows(self, X):
        """The rows as `estimator` sees them after its own validation: through
        the fitted transformers, then with the categorical columns that
        `estimator` encodes as their codes (see
        `sktransfer.utils._categorical`). These are the rows of the episode
        protocol."""
        X = self.transform(X)
        if self.encodes_categories():
            X = encode_categories(self.estimator, X, reset=False)
        return X

    def transform_target(self, y):
        """The targets as `estimator` learns them, as each
        `TransformedTargetRegressor` transforms them in its ``fit``."""
        for ttr in self.target_regressors:
            y = np.asarray(y)
            y_trans = ttr.transformer_.transform(y.reshape(-1, 1) if y.ndim == 1 else y)
            if y_trans.ndim == 2 and y_trans.shape[1] == 1 and y.ndim == 1:
                y_trans = y_trans.squeeze(axis=1)
            y = y_trans
        return y

    def inverse_transform_target(self, y_pred, ndim):
        """Predictions of `estimator` back in the user's units, as each
        `TransformedTargetRegressor` inverts them in its ``predict``; ``ndim``
        is that of the targets given to `adapt`."""
        for ttr in reversed(self.target_regressors):
            y_pred = ttr.transformer_.inverse_transform(
                y_pred.reshape(-1, 1) if y_pred.ndim == 1 else y_pred
            )
            if ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1:
                y_pred = y_pred.squeeze(axis=1)
        return y_pred

    def predict_episodes(self, supports, queries, task_names, *, encoded=True):
        """Adapt to each support set and predict its query rows.

        ``supports`` and ``queries`` hold rows as `estimator` sees them (see
        `validated_rows`) and targets in the user's units; predictions come back
        in the user's units. An estimator with the episode protocol, a
        ``predict_episodes(supports, queries, task_names)`` method (the
        meta-learners, see `sktransfer.meta._episodes.EpisodeBatchMixin`),
        adapts and predicts all episodes in vectorised passes; any other is
        adapted episode by episode on a copy, given the rows back as a user
        gives them (`~sktransfer.utils._categorical.user_rows`; codes decoded
        only when ``encoded``, the rows being `validated_rows`). Either way
        the estimator keeps its state.
        """
        targets = [self.transform_target(y_s) for _, y_s in supports]
        pairs = [(X_s, y_s) for (X_s, _), y_s in zip(supports, targets, strict=True)]
        batched = getattr(self.estimator, "predict_episodes", None)
        if batched is not None:
            predictions = batched(pairs, queries, task_names)
        else:
            work = copy.deepcopy(self.estimator)
            # Validated rows back as the user gives them, for adapt and predict.
            predictions = [
                work.adapt(user_rows(work, X_s, decode=encoded), y_s).predict(
                    user_rows(work, X_q, decode=encoded)
                )
                for (X_s, y_s), X_q in zip(pairs, queries, strict=True)
            ]
        return [
            self.inverse_transform_target(np.asarray(pred), np.ndim(y_s))
            for pred, (_, y_s) in zip(predictions, supports, strict=True)
        ]


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def adaptation_path(estimator):
    """The `AdaptationPath` of an estimator: what adapts, behind what.

    Parameters
    ----------
    estimator : estimator
        An estimator with ``adapt``, or a fitted `Pipeline` (whose last step
        adapts), `TransformedTargetRegressor` (whose ``regressor_`` adapts) or
        search object with ``best_estimator_``, nested in any way.

    Returns
    -------
    path : AdaptationPath
        The adapting estimator and the fitted transforms before it.
    """
    path = AdaptationPath(estimator)
    current = estimator
    while True:
        if isinstance(current, Pipeline):
            *steps, (_, last) = current.steps
            path.transformers.extend(s for _, s in steps if not _is_passthrough(s))
            if _is_passthrough(last):
                raise TypeError(
                    "The pipeline's last step is 'passthrough': there is no "
                    "estimator to adapt."
                )
            current = last
        elif isinstance(current, TransformedTargetRegressor):
            check_is_fitted(current, "regressor_")
            path.target_regressors.append(current)
            current = current.regressor_
        elif hasattr(current, "best_estimator_"):
            current = current.best_estimator_
        elif hasattr(current, "adapt"):
            path.estimator = current
            return path
        elif hasattr(current, "cv_results_"):
            raise TypeError(
                f"{type(current).__name__} was fitted with refit=False: it has no "
                "best_estimator_ to adapt. Fit it with refit=True."
            )
        elif hasattr(current, "get_params") and {"estimator", "refit"} <= set(
            current.get_params(deep=False)
        ):
            raise NotFittedError(
                f"This {type(current).__name__} is not fitted: fit the search "
                "before adapting its best estimator."
            )
        else:
            raise TypeError(
                f"{type(current).__name__} cannot adapt: sktransfer.adapt adapts "
                "an estimator with an adapt method (the sktransfer estimators and "
                "baselines), or a Pipeline, TransformedTargetRegressor or fitted "
                "search object (GridSearchCV, ...) around one. To fit a "
                "scikit-learn estimator on the support rows alone, wrap it in "
                "SupportSetClassifier or SupportSetRegressor."
            )


def adapt(estimator, X, y):
    """Adapt an estimator, or the estimator inside a meta-estimator, to a task.

    Adapts an sktransfer estimator with its own ``adapt``, and also the one
    inside a scikit-learn meta-estimator, nested in any way:

    - `~sklearn.pipeline.Pipeline`: ``X`` goes through the fitted steps before
      the last (they are not refitted), then the last step adapts.
    - `~sklearn.compose.TransformedTargetRegressor`: ``y`` is transformed with
      its fitted ``transformer_`` (or ``func``), then ``regressor_`` adapts;
      its ``predict`` inverts the predictions as usual.
    - a fitted search object (`~sklearn.model_selection.GridSearchCV`,
      `~sklearn.model_selection.RandomizedSearchCV`, ...): its
      ``best_estimator_`` adapts (the search must have ``refit=True``).

    The estimator is adapted in place and returned, so that ``predict``
    chains: ``adapt(pipe, X_support, y_support).predict(X_query)``.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator with ``adapt``, or a meta-estimator around one.
    X : array-like of shape (n_samples, n_features)
        The support set's rows, as the outer estimator takes them (a raw
        DataFrame for a pipeline that encodes it).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The support set's targets, in the user's units.

    Returns
    -------
    estimator : object
        The same estimator, adapted.

    Raises
    ------
    TypeError
        If nothing inside ``estimator`` can adapt.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import sktransfer
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=20, random_state=0)
    >>> model = sktransfer.MetaRidgeRegressor(k_shot=5, max_iter=50, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), model)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     pipe = pipe.fit(X, y, task_ids=t)  # task_ids routed to the last step
    >>> X_new, y_new, _ = make_sinusoid_tasks(n_tasks=1, random_state=1)
    >>> sktransfer.adapt(pipe, X_new[:5], y_new[:5]).predict(X_new[5:]).shape
    (15,)
    """
    path = adaptation_path(estimator)
    path.estimator.adapt(path.transform(X), path.transform_target(y))
    return estimator
