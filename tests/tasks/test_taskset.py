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


def _loop_reference(X, y, task_ids):
    """The tasks of flat arrays by a plain loop, in order of first appearance."""
    labels = []
    for label in task_ids:
        if label not in labels:
            labels.append(label)
    rows = [[i for i, t in enumerate(task_ids) if t == label] for label in labels]
    return labels, [(X[r], y[r]) for r in rows]


def _assert_same_pairs(got, expected):
    assert len(got) == len(expected)
    for (Xa, ya), (Xb, yb) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)


def test_the_three_forms_hold_the_tasks_of_a_plain_loop():
    # Interleaved rows, labels neither sorted nor starting at 0.
    rng = np.random.default_rng(3)
    task_ids = np.array([7, 2, 7, 5, 2, 5, 5, 7, 2])
    X = rng.normal(size=(9, 2))
    y = rng.normal(size=9)
    labels, expected = _loop_reference(X, y, task_ids)
    flat = TaskSet.from_arrays(X, y, task_ids)
    np.testing.assert_array_equal(flat.task_labels, labels)
    assert len(flat) == flat.n_tasks == 3
    _assert_same_pairs(flat.to_pairs(), expected)
    _assert_same_pairs(list(flat), expected)
    _assert_same_pairs([flat[code] for code in range(3)], expected)
    assert [flat.task_name(code) for code in range(3)] == ["task 7", "task 2", "task 5"]
    pairs = TaskSet(expected)
    _assert_same_pairs(pairs.to_pairs(), expected)
    np.testing.assert_array_equal(pairs.task_labels, [0, 1, 2])
    copied = TaskSet(flat)
    _assert_same_pairs(copied.to_pairs(), expected)
    np.testing.assert_array_equal(copied.task_ids, task_ids)
    np.testing.assert_array_equal(copied.task_labels, labels)


def test_a_taskset_of_a_taskset_keeps_the_feature_names():
    pd = pytest.importorskip("pandas")  # in the dev extra
    frames = [
        (pd.DataFrame(np.ones((2, 2)) * i, columns=["a", "b"]), np.arange(2.0))
        for i in range(2)
    ]
    ts = TaskSet(frames)
    np.testing.assert_array_equal(ts.feature_names, ["a", "b"])
    np.testing.assert_array_equal(TaskSet(ts).feature_names, ["a", "b"])
    assert list(TaskSet(ts).to_frame().columns) == ["a", "b", "target", "task"]
    # Columns that are not all strings are not names.
    numbered = [(pd.DataFrame(np.ones((2, 2))), np.arange(2.0))] * 2
    assert TaskSet(numbered).feature_names is None


def test_from_frame_reads_the_named_columns():
    pd = pytest.importorskip("pandas")  # in the dev extra
    frame = pd.DataFrame(
        {
            "site": ["n", "s", "n", "s"],
            "a": [1.0, 2.0, 3.0, 4.0],
            "y": [0.5, 1.5, 2.5, 3.5],
            "b": [5.0, 6.0, 7.0, 8.0],
        }
    )
    ts = TaskSet.from_frame(frame, target="y", group="site")
    np.testing.assert_array_equal(ts.feature_names, ["a", "b"])
    np.testing.assert_array_equal(ts.X, frame[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(ts.y, frame["y"].to_numpy())
    np.testing.assert_array_equal(ts.task_labels, ["n", "s"])


def test_repr_gives_the_counts():
    assert repr(TaskSet(_pairs(n_tasks=4, n_features=3))) == (
        "TaskSet(n_tasks=4, n_features=3)"
    )


def _task(rows=3, n_features=2, value=0.0):
    return np.full((rows, n_features), value), np.zeros(rows)


@pytest.mark.parametrize(
    "tasks, message",
    [
        ([_task(), _task() + (np.zeros(3),)], "task 1 is not an (X, y) pair."),
        ([_task(), np.zeros((3, 2))], "task 1 is not an (X, y) pair."),
        (
            [_task(), _task(n_features=3)],
            "task 1 has 3 features but task 0 has 2; all tasks must share the "
            "same feature columns.",
        ),
        (
            [_task(), (np.zeros(3), np.zeros(3))],
            "task 1: X must be 2-dimensional (n_samples, n_features), got shape (3,).",
        ),
        ([_task(), (np.array([["a", "b"]]), [1])], "task 1: X must be numeric"),
        (
            [_task(), (np.zeros((3, 2)), np.zeros(4))],
            "task 1 has 3 rows in X but 4 in y.",
        ),
        (
            [_task(), _task(), _task(value=np.nan)],
            "task 2 contains NaN or infinity in X or y; impute or drop those rows "
            "first.",
        ),
        (
            [_task(), (np.zeros((2, 2)), np.array([1 + 0j, np.nan]))],
            "task 1 contains NaN or infinity in X or y",
        ),
        (
            [_task(), _task(value=1e39)],
            "task 1 has values in X beyond the float32 range",
        ),
        (
            [_task(), (np.zeros((2, 2)), np.array([0.0, -1e39]))],
            "task 1 has values in y beyond the float32 range",
        ),
        (
            [_task(), (np.zeros((2, 2)), np.array(["a", None], dtype=object))],
            "task 1 has a missing target (None or NaN) in y; impute or drop those "
            "rows first.",
        ),
        (
            [_task(), (np.zeros((2, 2)), np.array([np.nan, "b"], dtype=object))],
            "task 1 has a missing target (None or NaN) in y",
        ),
    ],
)
def test_refusals_name_the_offending_task(tasks, message):
    with pytest.raises(ValueError) as info:
        TaskSet(tasks)
    assert message in str(info.value)


def test_differing_feature_names_are_refused_naming_the_task():
    pd = pytest.importorskip("pandas")  # in the dev extra
    a = (pd.DataFrame(np.zeros((2, 2)), columns=["a", "b"]), np.zeros(2))
    b = (pd.DataFrame(np.zeros((2, 2)), columns=["a", "c"]), np.zeros(2))
    with pytest.raises(ValueError) as info:
        TaskSet([a, a, b])
    assert str(info.value) == (
        "task 2 has feature names that differ from those of task 0; all tasks "
        "must share the same feature columns."
    )


def test_tasks_with_and_without_feature_names_are_refused_in_any_order():
    # An array first let any frames follow, even frames whose columns differ
    # (["a", "b"] then ["b", "a"]: columns silently swapped).
    pd = pytest.importorskip("pandas")  # in the dev extra
    array = (np.zeros((2, 2)), np.zeros(2))
    ab = (pd.DataFrame(np.zeros((2, 2)), columns=["a", "b"]), np.zeros(2))
    ba = (pd.DataFrame(np.zeros((2, 2)), columns=["b", "a"]), np.zeros(2))
    cure = "; give every task as a DataFrame with the same columns, or none."
    for tasks, message in [
        ([array, ab, ba], "task 1 has feature names but task 0 has none"),
        ([ab, array], "task 0 has feature names but task 1 has none"),
        ([ab, ab, array], "task 0 has feature names but task 2 has none"),
    ]:
        with pytest.raises(ValueError) as info:
            TaskSet(tasks)
        assert str(info.value) == message + cure
    assert TaskSet([array, array]).feature_names is None


def test_refusals_of_from_arrays_name_the_task_label():
    X, y = np.zeros((6, 2)), np.zeros(6)
    north = np.array(["s", "s", "n", "n", "e", "e"])
    bad_X = X.copy()
    bad_X[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"^task 'n' contains NaN or infinity"):
        TaskSet.from_arrays(bad_X, y, north)
    with pytest.raises(ValueError, match=r"^task 30 contains NaN or infinity"):
        TaskSet.from_arrays(bad_X, y, np.array([10, 10, 30, 30, 20, 20]))
    huge_y = y.copy()
    huge_y[5] = 1e39
    with pytest.raises(ValueError, match=r"^task 'e' has values in y beyond"):
        TaskSet.from_arrays(X, huge_y, north)


def test_bad_task_ids_are_refused_with_the_reason():
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match=r"got 4, 4 and \(4, 1\)"):
        TaskSet.from_arrays(X, y, np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"got 4, 3 and \(4,\)"):
        TaskSet.from_arrays(X, np.zeros(3), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="X has no rows"):
        TaskSet.from_arrays(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="X: X must be 2-dimensional"):
        TaskSet.from_arrays(np.zeros(4), y, [0, 0, 1, 1])
    for ids in ([0.0, 0.0, np.nan, 1.0], [0.0, np.inf, 1.0, 1.0]):
        with pytest.raises(ValueError, match="task_ids contains NaN or infinity."):
            TaskSet.from_arrays(X, y, ids)
    with pytest.raises(ValueError, match=r"task_ids contains None \(row 2\)"):
        TaskSet.from_arrays(X, y, np.array(["a", "a", None, "b"], dtype=object))
    with pytest.raises(ValueError, match="task_ids contains NaN: every row"):
        TaskSet.from_arrays(X, y, np.array(["a", np.nan, "b", "b"], dtype=object))
    with pytest.raises(TypeError, match=r"types \['int', 'str'\] that cannot be"):
        TaskSet.from_arrays(X, y, np.array(["a", 1, "b", 1], dtype=object))


def test_targets_within_float32_and_class_labels_are_accepted():
    X = np.zeros((4, 2))
    ids = [0, 0, 1, 1]
    big = np.array([3e38, -3e38, 1.0, 0.0])
    np.testing.assert_array_equal(TaskSet.from_arrays(X, big, ids).y, big)
    single = big.astype(np.float32)
    assert TaskSet.from_arrays(X, single, ids).y.dtype == np.float32
    labels = np.array(["cat", "dog", "cat", "dog"], dtype=object)
    np.testing.assert_array_equal(TaskSet.from_arrays(X, labels, ids).y, labels)
    np.testing.assert_array_equal(
        TaskSet.from_arrays(X, [1, 2, 3, 4], ids).y, [1, 2, 3, 4]
    )


def test_estimators_take_every_task_form_and_tell_flat_rows_apart():
    pd = pytest.importorskip("pandas")  # in the dev extra
    from sktransfer import PooledRegressor

    rng = np.random.default_rng(5)
    t = np.repeat([0, 1, 2], 6)
    X = rng.normal(size=(18, 2))
    y = X[:, 0] + t + rng.normal(scale=0.1, size=18)
    pairs = [(X[t == k], y[t == k]) for k in range(3)]
    flat = PooledRegressor().fit(X, y, task_ids=t).predict(X)
    frames = [(pd.DataFrame(X_k, columns=["a", "b"]), y_k) for X_k, y_k in pairs]
    for tasks in (pairs, tuple(pairs), TaskSet(pairs)):
        np.testing.assert_allclose(PooledRegressor().fit(tasks).predict(X), flat)
    named = PooledRegressor().fit(frames).predict(pd.DataFrame(X, columns=["a", "b"]))
    np.testing.assert_allclose(named, flat)
    # Rows of two numbers are one flat task, not (X, y) pairs.
    rows = X[:6].tolist()
    one = PooledRegressor().fit(rows, y[:6])
    assert one.n_features_in_ == 2
    np.testing.assert_allclose(
        one.predict(X[:6]), PooledRegressor().fit(X[:6], y[:6]).predict(X[:6])
    )
    # A task with 1-D X is still read as a task, and refused naming it.
    with pytest.raises(ValueError, match="task 0: X must be 2-dimensional"):
        PooledRegressor().fit([(X[:6, 0], y[:6]), (X[6:12, 0], y[6:12])])
    with pytest.raises(ValueError, match="not both"):
        PooledRegressor().fit(pairs, y)


def test_estimators_tell_one_task_frames_and_plain_rows_apart():
    pd = pytest.importorskip("pandas")  # in the dev extra
    from sktransfer import PooledRegressor

    rng = np.random.default_rng(6)
    X = rng.normal(size=(8, 3))
    y = X[:, 0] + rng.normal(scale=0.1, size=8)
    plain = PooledRegressor().fit(X, y).predict(X)
    # One task as a pair, a flat frame and rows of three numbers: one task.
    np.testing.assert_allclose(PooledRegressor().fit([(X, y)]).predict(X), plain)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    np.testing.assert_allclose(PooledRegressor().fit(frame, y).predict(frame), plain)
    rows = PooledRegressor().fit(X.tolist(), y.tolist())
    np.testing.assert_allclose(rows.predict(X), plain)
    # A 1-D X is refused as scikit-learn refuses it, or, in a task with
    # several outputs, naming the task.
    with pytest.raises(ValueError, match="Expected 2D array"):
        PooledRegressor().fit(X[:, 0].tolist(), y)
    with pytest.raises(ValueError, match="task 0: X must be 2-dimensional"):
        PooledRegressor().fit([(X[:, 0], np.column_stack([y, y]))])


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: TaskSet("not tasks"),
            TypeError,
            "tasks must be a sequence of (X, y) pairs or a TaskSet, got str.",
        ),
        (
            lambda: TaskSet(()),
            ValueError,
            "The task list is empty: give at least one (X, y) task.",
        ),
        (
            lambda: TaskSet.from_arrays(np.zeros(4), np.zeros(4), [0, 0, 1, 1]),
            ValueError,
            "X: X must be 2-dimensional (n_samples, n_features), got shape (4,).",
        ),
        (
            lambda: TaskSet.from_arrays(np.zeros((4, 2)), np.zeros(3), [0, 0, 1, 1]),
            ValueError,
            "X, y and task_ids must have the same number of rows, got 4, 3 and (4,).",
        ),
        (
            lambda: TaskSet.from_arrays(np.zeros((0, 2)), np.zeros(0), []),
            ValueError,
            "The task list is empty: X has no rows.",
        ),
        (
            lambda: TaskSet.from_arrays(np.zeros((2, 2)), np.zeros(2), [0.0, np.nan]),
            ValueError,
            "task_ids contains NaN or infinity.",
        ),
        (
            lambda: TaskSet([_task(), _task(value=-1e39)]),
            ValueError,
            "task 1 has values in X beyond the float32 range (|value| > 3.4e+38), "
            "which the networks cannot represent; rescale it (e.g. with "
            "StandardScaler) first.",
        ),
        (
            lambda: TaskSet.from_arrays(
                np.zeros((3, 2)), np.zeros(3), np.array([1, None, 1], dtype=object)
            ),
            ValueError,
            "task_ids contains None (row 1): every row needs a task label.",
        ),
        (
            lambda: TaskSet.from_arrays(
                np.zeros((3, 2)), np.zeros(3), np.array([1, 1, np.nan], dtype=object)
            ),
            ValueError,
            "task_ids contains NaN: every row needs a task label.",
        ),
        (
            lambda: TaskSet.from_arrays(
                np.zeros((2, 2)), np.zeros(2), np.array(["a", 1], dtype=object)
            ),
            TypeError,
            "task_ids mixes labels of types ['int', 'str'] that cannot be ordered; "
            "use labels of one type (all numbers or all strings).",
        ),
    ],
)
def test_refusal_messages_say_what_to_fix(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert str(info.value) == message


def test_python_object_labels_name_the_task():
    # Object task_ids hold plain Python labels, not numpy scalars.
    X = np.zeros((4, 2))
    X[3, 0] = np.nan
    ids = np.array(["s", "s", "n", "n"], dtype=object)
    with pytest.raises(ValueError, match=r"^task 'n' contains NaN or infinity"):
        TaskSet.from_arrays(X, np.zeros(4), ids)
    with pytest.raises(ValueError, match=r"^task 7 contains NaN or infinity"):
        TaskSet.from_arrays(X, np.zeros(4), np.array([3, 3, 7, 7], dtype=object))


def test_feature_names_of_one_task_and_of_mixed_columns():
    pd = pytest.importorskip("pandas")  # in the dev extra
    frame = pd.DataFrame(np.zeros((2, 2)), columns=["a", "b"])
    np.testing.assert_array_equal(TaskSet([(frame, [0, 1])]).feature_names, ["a", "b"])
    other = pd.DataFrame(np.zeros((2, 2)), columns=["a", "c"])
    with pytest.raises(ValueError, match="^task 1 has feature names that differ"):
        TaskSet([(frame, [0, 1]), (other, [0, 1])])
    # Column labels that are not all strings are not feature names (as in
    # scikit-learn).
    mixed = pd.DataFrame(np.zeros((2, 2)), columns=["a", 1])
    assert TaskSet([(mixed, [0, 1])]).feature_names is None
    assert TaskSet.from_arrays(mixed, [0, 1], [0, 0]).feature_names is None


def test_the_largest_float32_value_is_accepted():
    largest = float(np.finfo(np.float32).max)
    ts = TaskSet([(np.full((2, 2), -largest), np.array([largest, 0.0]))])
    assert ts.X.min() == -largest and ts.y.max() == largest
