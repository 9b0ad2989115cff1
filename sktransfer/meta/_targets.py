"""Label spaces of the meta-learners, and which tasks can train them."""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets

from sktransfer.meta._docstrings import SCORE_DOC


@dataclass(frozen=True, eq=False)
class EncodedTargets:
    """The targets of a task set as the meta-training pool holds them.

    Attributes
    ----------
    slots : ndarray of shape (n_samples,)
        The group episodes are drawn by within a task: a classifier's class
        code (global in the shared label space, the rank within the task
        when episodic), 0 for a regressor.
    n_slots : int
        Number of slots.
    counts : ndarray of shape (n_tasks, n_slots)
        Rows per (task, slot).
    n_outputs : int
        Outputs of the module.
    values : ndarray of shape (n_samples, n_outputs) or None
        A regressor's standardised targets; None for a classifier, whose
        targets are its slots.
    """

    slots: np.ndarray
    n_slots: int
    counts: np.ndarray
    n_outputs: int
    values: np.ndarray | None = None

    @property
    def targets(self):
        """What the model learns of every row: ``values``, or the slots."""
        return self.slots if self.values is None else self.values


class MetaClassifierMixin:
    """Targets, scores and tags of the meta-learning classifiers, both label spaces.

    Shared label space (``n_way=None``): a row's slot is its global class code.
    Episodic (``n_way`` set): a slot is the rank of the class within its task,
    and an episode's outputs are remapped to the support set's own labels.
    """

    _unit = " per class"

    def _y_checks(self):
        return {}

    def _encode_targets(self, tasks, *, reset, classes=None):
        """The `EncodedTargets` of ``tasks``: class slots are the targets."""
        y = tasks.y
        check_classification_targets(y)
        if self.n_way is None:
            if reset:
                labels = np.unique(y) if classes is None else np.unique(classes)
                self.classes_ = labels
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"Labels {unknown.tolist()} are not among classes_ "
                    f"{self.classes_.tolist()}; pass all labels as classes= on the "
                    "first partial_fit."
                )
            slots = np.searchsorted(self.classes_, y)
            n_slots = len(self.classes_)
            counts = np.bincount(
                tasks.task_codes * n_slots + slots, minlength=tasks.n_tasks * n_slots
            ).reshape(tasks.n_tasks, n_slots)
            return EncodedTargets(slots, n_slots, counts, n_outputs=n_slots)

        slots, n_slots = episodic_slots(tasks.task_codes, y)
        counts = np.bincount(
            tasks.task_codes * n_slots + slots, minlength=tasks.n_tasks * n_slots
        ).reshape(tasks.n_tasks, n_slots)
        n_classes = (counts > 0).sum(1)
        if (n_classes < self.n_way).any():
            t = int(np.argmax(n_classes < self.n_way))
            # One task (a plain fit(X, y)) has nothing to drop: y is short.
            what, cure = (
                ("y", "")
                if tasks.n_tasks == 1
                else (tasks.task_name(t), " or drop the task")
            )
            raise ValueError(
                f"{what} has {n_classes[t]} classes but n_way={self.n_way} are "
                f"needed for each episode; use a smaller n_way{cure}."
            )
        if reset:
            self.__dict__.pop("classes_", None)
        return EncodedTargets(slots, n_slots, counts, n_outputs=self.n_way)

    def _encode_episodes(self, ys, names):
        """`_encode_episode` of many support sets; one pass in the shared space."""
        y = np.concatenate(ys)
        check_classification_targets(y)
        if self.n_way is not None:
            return [
                self._encode_episode(y_i, name)
                for y_i, name in zip(ys, names, strict=True)
            ]
        codes = np.searchsorted(self.classes_, y)
        known = self.classes_[np.minimum(codes, len(self.classes_) - 1)] == y
        if not known.all():
            episode = np.searchsorted(
                np.cumsum([len(y_i) for y_i in ys]), np.argmin(known), side="right"
            )
            self._encode_episode(ys[episode], names[episode])  # raises, naming it
        bounds = np.cumsum([len(y_i) for y_i in ys])[:-1]
        return [(c, self.classes_) for c in np.split(codes, bounds)]

    def _encode_episode(self, y, name):
        """Class codes of a support set, and the labels its outputs decode to."""
        labels, codes = np.unique(y, return_inverse=True)
        if self.n_way is None:
            unknown = np.setdiff1d(labels, self.classes_)
            if len(unknown):
                raise ValueError(
                    f"{name} has labels {unknown.tolist()} that are not among "
                    f"classes_ {self.classes_.tolist()} seen in training; in the "
                    "shared label space adapt only takes known labels (set n_way "
                    "for new classes)."
                )
            return np.searchsorted(self.classes_, y), self.classes_
        if len(labels) > self.n_way:
            raise ValueError(
                f"{name} has {len(labels)} classes but the model is "
                f"{self.n_way}-way: adapt takes at most n_way={self.n_way} classes."
            )
        return codes, labels

    def _encode_support(self, y):
        check_classification_targets(y)
        codes, labels = self._encode_episode(y, "The support set")
        extra = {} if self.n_way is None else {"classes_": labels}
        return torch.as_tensor(codes), extra

    def _decode(self, outputs, labels):
        return labels[np.argmax(outputs[:, : len(labels)], axis=1)]

    def score(self, X, y, sample_weight=None, task_ids=None):
        if task_ids is None:
            return super().score(X, y, sample_weight=sample_weight)
        return self._few_shot_score(X, y, sample_weight, task_ids)

    score.__doc__ = SCORE_DOC

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class MetaRegressorMixin:
    """Targets, scores and tags of the meta-learning regressors (``y`` standardised
    inside)."""

    _unit = ""

    def _y_checks(self):
        return {"y_numeric": True, "multi_output": True}

    def _encode_targets(self, tasks, *, reset):
        """The `EncodedTargets` of ``tasks``: standardised values, one slot."""
        y = tasks.y.astype(np.float64, copy=False)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = n_outputs
        elif n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} outputs but the model was fitted with "
                f"{self.n_outputs_}."
            )
        counts = np.bincount(tasks.task_codes, minlength=tasks.n_tasks)[:, None]
        slots = np.zeros(len(y), dtype=np.int64)
        y = self._standardize_y(y.reshape(len(y), -1))
        return EncodedTargets(slots, 1, counts, n_outputs, values=y)

    def _encode_episode(self, y, name):
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{name} has {y.shape[1]} outputs but the model was fitted with "
                f"{self.n_outputs_}."
            )
        return self._standardize_y(y).astype(np.float32), None

    def _encode_episodes(self, ys, names):
        return [
            self._encode_episode(y_i, name) for y_i, name in zip(ys, names, strict=True)
        ]

    def _encode_support(self, y):
        return torch.as_tensor(self._encode_episode(y, "The support set")[0]), {}

    def _decode(self, outputs, labels):
        outputs = self._unstandardize_y(outputs)
        return outputs.ravel() if self._y_ndim == 1 else outputs

    def score(self, X, y, sample_weight=None, task_ids=None):
        if task_ids is None:
            return super().score(X, y, sample_weight=sample_weight)
        return self._few_shot_score(X, y, sample_weight, task_ids)

    score.__doc__ = SCORE_DOC

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def usable_tasks(counts, tasks, k, q, unit):
    """Tasks that can give a support and a query row; warn once of short ones.

    ``counts`` are the rows per (task, slot). A task with fewer than ``k + q``
    rows in a slot contributes the rows it has (the sampler pads with weight
    0); a task of a single row is left out. Returns a boolean mask of tasks.
    """
    usable = counts.sum(1) >= 2
    if not usable.any():
        raise ValueError(
            f"No task has two rows or more (n_samples = {int(counts.sum())}): "
            "meta-training needs a support and a query row per task."
        )
    short = ((counts > 0) & (counts < k + q)).any(1) & usable
    if short.any() or not usable.all():
        warnings.warn(
            f"{int(short.sum())} of {tasks.n_tasks} tasks have fewer than "
            f"k_shot + n_query = {k + q} rows{unit} and contribute the rows they "
            f"have; {int((~usable).sum())} with a single row are left out of "
            "meta-training.",
            UserWarning,
            stacklevel=5,
        )
    return usable


def episodic_slots(task_codes, y):
    """The rank of every row's class within its task, and the number of ranks."""
    pairs, pair_codes = np.unique(
        np.stack([task_codes, np.unique(y, return_inverse=True)[1].ravel()]),
        axis=1,
        return_inverse=True,
    )
    first_of_task = np.searchsorted(pairs[0], pairs[0])
    ranks = np.arange(pairs.shape[1]) - first_of_task
    return ranks[pair_codes.ravel()], int(ranks.max()) + 1
