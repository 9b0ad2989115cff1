"""Seeded support/query splits of many tasks at once."""

import numpy as np
import pytest

from sktransfer import TaskSet
from sktransfer.tasks._splits import split_support_query


def _tasks():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.repeat([0, 1, 2], 6), np.repeat([0, 1, 2], 4)])
    t = np.repeat(["a", "b"], [18, 12])
    return TaskSet.from_arrays(rng.normal(size=(30, 2)), y, t)


def test_per_class_support_and_the_rest_as_query():
    tasks = _tasks()
    splits = split_support_query(tasks, 2, per_class=True, rng=np.random.RandomState(0))
    for code, (support, query) in enumerate(splits):
        rows = np.flatnonzero(tasks.task_codes == code)
        assert set(support) | set(query) == set(rows)
        assert not set(support) & set(query)
        assert np.array_equal(np.bincount(tasks.y[support]), [2, 2, 2])


def test_n_query_caps_the_query_set_and_the_seed_fixes_the_split():
    tasks = _tasks()
    draw = [
        split_support_query(
            tasks, 1, n_query=2, per_class=True, rng=np.random.RandomState(3)
        )
        for _ in range(2)
    ]
    for (s1, q1), (s2, q2) in zip(*draw, strict=True):
        assert np.array_equal(s1, s2) and np.array_equal(q1, q2)
        assert np.array_equal(np.bincount(tasks.y[q1]), [2, 2, 2])
    other = split_support_query(
        tasks, 1, n_query=2, per_class=True, rng=np.random.RandomState(4)
    )
    assert any(
        not np.array_equal(a[0], b[0]) for a, b in zip(draw[0], other, strict=True)
    )


def test_per_task_counts_rows_for_regression():
    tasks = TaskSet.from_arrays(np.zeros((10, 1)), np.arange(10.0), [0] * 6 + [1] * 4)
    splits = split_support_query(
        tasks, 3, per_class=False, rng=np.random.RandomState(0)
    )
    assert [len(s) for s, _ in splits] == [3, 3]
    assert [len(q) for _, q in splits] == [3, 1]


def test_too_small_tasks_are_named():
    tasks = _tasks()
    with pytest.raises(ValueError, match="task 'b', class 0, has 4 rows but k_shot=5"):
        split_support_query(tasks, 5, per_class=True, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="task 'b' has no rows left to score"):
        split_support_query(tasks, 4, per_class=True, rng=np.random.RandomState(0))


def test_a_task_too_short_for_k_shot_is_named():
    # Per task (regression): the one-row task "b" cannot give 2 support rows.
    tasks = TaskSet.from_arrays(
        np.zeros((7, 1)), np.arange(7.0), ["a"] * 3 + ["b"] + ["c"] * 3
    )
    rng = np.random.RandomState(0)
    with pytest.raises(
        ValueError,
        match=r"'b'.* has 1 rows but k_shot=2 support rows are needed to score it\.$",
    ):
        split_support_query(tasks, 2, per_class=False, rng=rng)
    # A task with exactly k_shot rows has none left to score, and says so.
    with pytest.raises(
        ValueError,
        match=r"'c'.* has no rows left to score after its k_shot=3 support rows; "
        r"give it more rows or use a smaller k_shot\.$",
    ):
        exact = TaskSet.from_arrays(
            np.zeros((7, 1)), np.arange(7.0), ["a"] * 4 + ["c"] * 3
        )
        split_support_query(exact, 3, per_class=False, rng=rng)
    # Per class, with labels held as Python objects: the class is named too.
    y = np.array(["x", "y", "x", "y", "x", "y", "y"], dtype=object)
    tasks = TaskSet.from_arrays(np.zeros((7, 1)), y, [0] * 4 + [1] * 3)
    with pytest.raises(
        ValueError, match="class 'x', has 1 rows but k_shot=2 support rows per class"
    ):
        split_support_query(tasks, 2, per_class=True, rng=rng)
