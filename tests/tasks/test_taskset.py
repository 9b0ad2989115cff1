"""TaskSet: one validation, three equivalent forms."""

import numpy as np
import pytest

from sktransfer import TaskSet


def _pairs(n_tasks=3, rows=4, n_features=2, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(rows + i, n_features)), rng.integers(0, 2, rows + i))
        for i in range(n_tasks)
    ]


def test_pairs_arrays_and_frame_round_trip():
    pd = pytest.importorskip("pandas")  # in the dev extra
    pairs = _pairs()
    ts = TaskSet(pairs)
    assert len(ts) == 3 and ts.n_features == 2
    X, y, task_ids = ts.to_arrays()
    np.testing.assert_array_equal(task_ids, np.repeat([0, 1, 2], [4, 5, 6]))
    again = TaskSet.from_arrays(X, y, task_ids)
    for (Xa, ya), (Xb, yb) in zip(again.to_pairs(), pairs, strict=True):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(target=y, site=task_ids)
    from_frame = TaskSet.from_frame(frame, target="target", group="site")
    np.testing.assert_array_equal(from_frame.feature_names, ["a", "b"])
    np.testing.assert_array_equal(from_frame.X, X)


def test_task_labels_keep_order_of_first_appearance():
    ts = TaskSet.from_arrays(np.zeros((4, 1)), np.zeros(4), ["z", "a", "z", "m"])
    np.testing.assert_array_equal(ts.task_labels, ["z", "a", "m"])
    np.testing.assert_array_equal(ts.task_codes, [0, 1, 0, 2])
    assert ts.task_name(1) == "task 'a'"


def test_user_data_is_not_changed():
    pairs = _pairs()
    copies = [(X.copy(), y.copy()) for X, y in pairs]
    ts = TaskSet(pairs)
    ts.X[:] = 0
    for (X, y), (Xc, yc) in zip(pairs, copies, strict=True):
        np.testing.assert_array_equal(X, Xc)
        np.testing.assert_array_equal(y, yc)


@pytest.mark.parametrize(
    "tasks, message",
    [
        ([], "task list is empty"),
        ("not tasks", "must be a sequence"),
        ([(np.zeros((3, 2)), np.zeros(2))], "task 0 has 3 rows in X but 2 in y"),
        (
            [(np.zeros((3, 2)), np.zeros(3)), (np.zeros((0, 2)), np.zeros(0))],
            "task 1 is empty",
        ),
        ([(np.zeros(3), np.zeros(3))], "must be 2-dimensional"),
        ([(np.array([["a", "b"]]), [1])], "X must be numeric"),
        (
            [(np.zeros((2, 2)), [1, 2]), (np.zeros((2, 2)), [1.0, np.inf])],
            "task 1 contains NaN",
        ),
    ],
)
def test_bad_tasks_are_named(tasks, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TaskSet(tasks)


def test_from_arrays_checks_alignment():
    with pytest.raises(ValueError, match="same number of rows"):
        TaskSet.from_arrays(np.zeros((4, 2)), np.zeros(4), [0, 1])


def test_to_frame_round_trip():
    pytest.importorskip("pandas")  # in the dev extra
    ts = TaskSet(_pairs())
    frame = ts.to_frame(target="y", group="site")
    assert list(frame.columns) == ["x0", "x1", "y", "site"]
    back = TaskSet.from_frame(frame, target="y", group="site")
    np.testing.assert_array_equal(back.X, ts.X)
    np.testing.assert_array_equal(back.y, ts.y)
    np.testing.assert_array_equal(back.task_ids, ts.task_ids)


def test_to_frame_names_columns_and_reads_back_several_outputs():
    pd = pytest.importorskip("pandas")  # in the dev extra
    # Defaults: feature names kept, a "target" and a "task" column; several
    # outputs become target_0, target_1, ... and from_frame reads them back
    # from a list of target columns.
    X = np.arange(12.0).reshape(6, 2)
    frame = pd.DataFrame(X, columns=["a", "b"])
    ts = TaskSet.from_arrays(frame, np.arange(6.0), np.repeat(["p", "q"], 3))
    out = ts.to_frame()
    assert list(out.columns) == ["a", "b", "target", "task"]
    np.testing.assert_array_equal(out["task"], np.repeat(["p", "q"], 3))
    Y = np.column_stack([np.arange(6.0), -np.arange(6.0)])
    multi = TaskSet.from_arrays(X, Y, np.repeat([0, 1], 3)).to_frame(target="y")
    assert list(multi.columns) == ["x0", "x1", "y_0", "y_1", "task"]
    back = TaskSet.from_frame(multi, target=["y_0", "y_1"], group="task")
    np.testing.assert_array_equal(back.y, Y)
    np.testing.assert_array_equal(back.X, X)
    np.testing.assert_array_equal(back.feature_names, ["x0", "x1"])
