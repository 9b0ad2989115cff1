"""The task data model: `TaskSet` and the checks that name the offending task."""

import numbers

import numpy as np


def is_task_sequence(X):
    """Whether ``X`` is a `TaskSet` or a sequence of ``(X_i, y_i)`` pairs."""
    if isinstance(X, TaskSet):
        return True
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    first = X[0]
    if not isinstance(first, (list, tuple)) or len(first) != 2:
        return False
    if hasattr(first[0], "columns") or np.ndim(first[0]) == 2:
        return True
    # A 1-D X with its targets is a task too (`TaskSet` refuses it, naming
    # it); a row of a flat X holds numbers, not arrays.
    return np.ndim(first[0]) == 1 and np.ndim(first[1]) >= 1


def _task_name(label):
    label = label.item() if isinstance(label, np.generic) else label
    if isinstance(label, numbers.Integral):
        return f"task {label}"
    return f"task {label!r}"


def _feature_names(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(columns, dtype=object)
    return names if all(isinstance(n, str) for n in names) else None


class TaskSet:
    """Validated tasks that share the same feature columns.

    A task is a pair ``(X_i, y_i)``. `TaskSet` checks the tasks once, naming
    the offending task in every error, and converts between the three forms
    the estimators accept: a sequence of pairs, flat arrays with a
    sample-aligned array of task labels, and a DataFrame with a group column.
    All estimators accept a `TaskSet` wherever they accept a sequence of pairs.

    Parameters
    ----------
    tasks : sequence of (array-like, array-like)
        The ``(X_i, y_i)`` pairs: numpy arrays, pandas objects or lists, all
        with the same number of columns. The task labels are ``0 .. n - 1``.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows of all tasks, float64, grouped by task.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The targets of all tasks.
    task_ids : ndarray of shape (n_samples,)
        The task label of every row.
    task_labels : ndarray of shape (n_tasks,)
        The distinct task labels, in order of first appearance.
    task_codes : ndarray of shape (n_samples,)
        The position of every row's task in ``task_labels``.
    feature_names : ndarray of str or None
        Column names when the tasks were pandas frames with string columns.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import TaskSet
    >>> rng = np.random.default_rng(0)
    >>> tasks = [(rng.normal(size=(6, 3)), rng.integers(0, 2, 6)) for _ in range(4)]
    >>> ts = TaskSet(tasks)
    >>> len(ts), ts.X.shape
    (4, (24, 3))
    >>> X, y, task_ids = ts.to_arrays()
    >>> len(TaskSet.from_arrays(X, y, task_ids))
    4
    """

    def __init__(self, tasks):
        if isinstance(tasks, TaskSet):
            self._set(tasks.X, tasks.y, tasks.task_ids, tasks.feature_names)
            return
        if not isinstance(tasks, (list, tuple)):
            raise TypeError(
                "tasks must be a sequence of (X, y) pairs or a TaskSet, got "
                f"{type(tasks).__name__}."
            )
        if len(tasks) == 0:
            raise ValueError("The task list is empty: give at least one (X, y) task.")
        names = None
        for i, task in enumerate(tasks):
            if not isinstance(task, (list, tuple)) or len(task) != 2:
                raise ValueError(f"task {i} is not an (X, y) pair.")
            # Columns are compared before any task is read as numbers: tasks
            # with string columns whose columns differ hear that first. A task
            # without names after one with names, or the other way round, is
            # refused too: its columns cannot be matched by name.
            if i == 0:
                names = _feature_names(task[0])
                continue
            names_i = _feature_names(task[0])
            if (names is None) != (names_i is None):
                has, lacks = (i, 0) if names is None else (0, i)
                raise ValueError(
                    f"task {has} has feature names but task {lacks} has none; give "
                    "every task as a DataFrame with the same columns, or none."
                )
            if names is not None and not np.array_equal(names_i, names):
                raise ValueError(
                    f"task {i} has feature names that differ from those of task 0; "
                    "all tasks must share the same feature columns."
                )
        Xs, ys = [], []
        n_features = None
        for i, (X_i, y_i) in enumerate(tasks):
            X_i = _as_float_2d(X_i, f"task {i}")
            y_i = np.asarray(y_i)
            if n_features is None:
                n_features = X_i.shape[1]
            elif X_i.shape[1] != n_features:
                raise ValueError(
                    f"task {i} has {X_i.shape[1]} features but task 0 has "
                    f"{n_features}; all tasks must share the same feature columns."
                )
            if len(y_i) != len(X_i):
                raise ValueError(
                    f"task {i} has {len(X_i)} rows in X but {len(y_i)} in y."
                )
            if len(X_i) == 0:
                raise ValueError(f"task {i} is empty: drop it or give it rows.")
            Xs.append(X_i)
            ys.append(y_i)
        task_ids = np.repeat(np.arange(len(tasks)), [len(X_i) for X_i in Xs])
        self._set(np.concatenate(Xs), np.concatenate(ys), task_ids, names)

    @classmethod
    def from_arrays(cls, X, y, task_ids):
        """Build from flat arrays and a sample-aligned array of task labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows of all tasks.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        task_ids : array-like of shape (n_samples,)
            The task label of every row.

        Returns
        -------
        TaskSet
            The validated tasks.
        """
        names = _feature_names(X)
        X = _as_float_2d(X, "X")
        y = np.asarray(y)
        task_ids = np.asarray(task_ids)
        if task_ids.ndim != 1 or len(task_ids) != len(X) or len(y) != len(X):
            raise ValueError(
                "X, y and task_ids must have the same number of rows, got "
                f"{len(X)}, {len(y)} and {task_ids.shape}."
            )
        if len(X) == 0:
            raise ValueError("The task list is empty: X has no rows.")
        if task_ids.dtype.kind == "f" and not np.isfinite(task_ids).all():
            raise ValueError("task_ids contains NaN or infinity.")
        self = cls.__new__(cls)
        self._set(X, y, task_ids, names)
        return self

    @classmethod
    def from_frame(cls, frame, *, target, group):
        """Build from a DataFrame with a target column and a task (group) column.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per sample.
        target : str or list of str
            The target column(s).
        group : str
            The column holding each row's task label.

        Returns
        -------
        TaskSet
            The validated tasks; the remaining columns are the features.
        """
        targets = [target] if isinstance(target, str) else list(target)
        X = frame.drop(columns=[*targets, group])
        y = frame[target].to_numpy()
        return cls.from_arrays(X, y, frame[group].to_numpy())

    def _select(self, keep):
        """A `TaskSet` of the tasks whose codes ``keep`` (a boolean mask over
        tasks) marks, in the same order, and the mask of their rows."""
        rows = keep[self.task_codes]
        selected = TaskSet.__new__(TaskSet)
        selected._set(
            self.X[rows], self.y[rows], self.task_ids[rows], self.feature_names
        )
        return selected, rows

    def _set(self, X, y, task_ids, feature_names):
        self.X = X
        self.y = y
        self.task_ids = task_ids
        self.feature_names = feature_names
        self.task_labels, first, self.task_codes = _unique_task_ids(task_ids)
        # Order tasks by first appearance, not by sorted label.
        by_appearance = np.argsort(first, kind="stable")
        rank = np.empty_like(by_appearance)
        rank[by_appearance] = np.arange(len(by_appearance))
        self.task_labels = self.task_labels[by_appearance]
        self.task_codes = rank[self.task_codes]
        self._check_finite()

    def _check_finite(self):
        bad = ~np.isfinite(self.X).all(axis=1)
        y = self.y.reshape(len(self.y), -1)
        if y.dtype.kind in "fc":
            bad |= ~np.isfinite(y).all(axis=1)
        if bad.any():
            label = self.task_ids[np.argmax(bad)]
            raise ValueError(
                f"{_task_name(label)} contains NaN or infinity in X or y; "
                "impute or drop those rows first."
            )
        if y.dtype.kind == "O":
            # None or NaN among objects: a missing target, not a label.
            missing = missing_targets(y)
            if missing.any():
                label = self.task_ids[np.argmax(missing)]
                raise ValueError(
                    f"{_task_name(label)} has a missing target (None or NaN) in y; "
                    "impute or drop those rows first."
                )
        for name, values in (("X", self.X), ("y", y)):
            huge = beyond_float32(values)
            if huge is not None:
                raise ValueError(
                    f"{_task_name(self.task_ids[huge])} has values in {name} beyond "
                    f"the float32 range (|value| > {_FLOAT32_MAX:.3g}), which the "
                    "networks cannot represent; rescale it (e.g. with "
                    "StandardScaler) first."
                )

    def __len__(self):
        return len(self.task_labels)

    @property
    def n_tasks(self):
        """Number of tasks."""
        return len(self.task_labels)

    @property
    def n_features(self):
        """Number of feature columns shared by the tasks."""
        return self.X.shape[1]

    def task_name(self, code):
        """How errors name a task.

        Parameters
        ----------
        code : int
            The task's position in ``task_labels``.

        Returns
        -------
        str
            ``"task 3"`` for integer labels, ``"task 'north'"`` otherwise.
        """
        return _task_name(self.task_labels[code])

    def __getitem__(self, code):
        rows = self.task_codes == code
        return self.X[rows], self.y[rows]

    def __iter__(self):
        for code in range(len(self)):
            yield self[code]

    def to_pairs(self):
        """The tasks as a list of ``(X_i, y_i)`` pairs.

        Returns
        -------
        list of tuple
            One ``(X_i, y_i)`` pair per task, in ``task_labels`` order.
        """
        return list(self)

    def to_arrays(self):
        """The tasks as flat arrays.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The rows of all tasks.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        task_ids : ndarray of shape (n_samples,)
            The task label of every row.
        """
        return self.X, self.y, self.task_ids

    def to_frame(self, *, target="target", group="task"):
        """The tasks as one DataFrame with a target and a task (group) column.

        Parameters
        ----------
        target : str, default="target"
            Name of the target column (``target_0``, ``target_1``, ... for
            several outputs).
        group : str, default="task"
            Name of the column of task labels.

        Returns
        -------
        pandas.DataFrame
            The features (named ``feature_names`` when known, else ``x0``,
            ``x1``, ...), the target and the task labels; `from_frame` reads
            it back.
        """
        import pandas as pd

        names = (
            list(self.feature_names)
            if self.feature_names is not None
            else [f"x{i}" for i in range(self.n_features)]
        )
        frame = pd.DataFrame(self.X, columns=names)
        if self.y.ndim == 1:
            frame[target] = self.y
        else:
            for i in range(self.y.shape[1]):
                frame[f"{target}_{i}"] = self.y[:, i]
        frame[group] = self.task_ids
        return frame

    def __repr__(self):
        return f"TaskSet(n_tasks={len(self)}, n_features={self.n_features})"


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def beyond_float32(values):
    """First row of numeric ``values`` (2-D) beyond the float32 range, or None."""
    if values.dtype.kind not in "fc" or values.dtype.itemsize <= 4:
        return None
    huge = (np.abs(values) > _FLOAT32_MAX).any(axis=1)
    return int(np.argmax(huge)) if huge.any() else None


def missing_targets(y):
    """Rows of 2-D ``y`` with a missing target: NaN or infinity among numbers,
    None or NaN among objects."""
    if y.dtype.kind in "fc":
        return ~np.isfinite(y).all(axis=1)
    if y.dtype.kind == "O":
        return (np.equal(y, None) | (y != y)).any(axis=1)
    return np.zeros(len(y), dtype=bool)


def _unique_task_ids(task_ids):
    """``np.unique`` of the task labels, with an error that names the problem."""
    if task_ids.dtype.kind == "O":
        missing = np.equal(task_ids, None)
        if missing.any():
            raise ValueError(
                f"task_ids contains None (row {int(np.argmax(missing))}): every row "
                "needs a task label."
            )
        if (task_ids != task_ids).any():
            raise ValueError("task_ids contains NaN: every row needs a task label.")
    try:
        return np.unique(task_ids, return_index=True, return_inverse=True)
    except TypeError:
        types = sorted({type(label).__name__ for label in task_ids})
        raise TypeError(
            f"task_ids mixes labels of types {types} that cannot be ordered; use "
            "labels of one type (all numbers or all strings)."
        ) from None


def _as_float_2d(X, where):
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: X must be numeric ({exc}).") from None
    if X.ndim != 2:
        raise ValueError(
            f"{where}: X must be 2-dimensional (n_samples, n_features), got shape "
            f"{X.shape}."
        )
    return X
