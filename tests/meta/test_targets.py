"""Label and target encoding of the meta-learners, checked through what users see."""

import os
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags

from sktransfer import MAMLClassifier, MAMLRegressor, MetaRidgeClassifier, TaskSet
from sktransfer.meta._targets import episodic_slots, usable_tasks

FAST = dict(hidden_layer_sizes=(8,), max_iter=5, k_shot=2, random_state=0)


def _class_tasks(labels=(0, 2, 4), n_tasks=3, rows=12, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(rows, 2)), np.resize(np.asarray(labels), rows))
        for _ in range(n_tasks)
    ]


@pytest.fixture(scope="module")
def shared():
    return MAMLClassifier(**FAST).fit(_class_tasks())


@pytest.fixture(scope="module")
def episodic():
    return MAMLClassifier(n_way=2, **FAST).fit(_class_tasks())


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(36, 2))
    y = np.column_stack([X[:, 0], X[:, 1] - 1.0])
    return MAMLRegressor(**FAST).fit(X, y, task_ids=np.repeat([0, 1, 2], 12))


def _episodes(y_a, y_b):
    rng = np.random.default_rng(1)
    supports = [(rng.normal(size=(len(y), 2)), np.asarray(y)) for y in (y_a, y_b)]
    queries = [rng.normal(size=(3, 2)) for _ in supports]
    return supports, queries, ["task 'a'", "task 'b'"]


@pytest.mark.parametrize(
    "y_b, unknown",
    [
        ([9, 0, 2], 9),  # above every class, first row of the second episode
        ([0, 2, 3], 3),  # between two classes, last row
    ],
)
def test_predict_episodes_names_the_episode_with_an_unknown_label(shared, y_b, unknown):
    supports, queries, names = _episodes([0, 2, 4], y_b)
    with pytest.raises(
        ValueError, match=rf"task 'b' has labels \[{unknown}\] that are not among"
    ):
        shared.predict_episodes(supports, queries, names)


def test_predict_episodes_in_the_shared_space_decode_through_classes(shared):
    supports, queries, names = _episodes([0, 2, 4, 0], [4, 2])
    predictions = shared.predict_episodes(supports, queries, names)
    for (X_s, y_s), X_q, pred in zip(supports, queries, predictions, strict=True):
        expected = shared.adapt(X_s, y_s).predict(X_q)
        np.testing.assert_array_equal(pred, expected)
        assert set(pred) <= {0, 2, 4}


def test_predict_episodes_names_the_episode_with_too_many_classes(episodic):
    supports, queries, names = _episodes([0, 2], [0, 2, 4])
    with pytest.raises(ValueError, match="task 'b' has 3 classes but the model is 2"):
        episodic.predict_episodes(supports, queries, names)


def test_episodic_predict_episodes_decode_to_each_support_sets_labels(episodic):
    supports, queries, names = _episodes(["cat", "dog"], [7, 3, 7])
    predictions = episodic.predict_episodes(supports, queries, names)
    assert set(predictions[0]) <= {"cat", "dog"}
    assert set(predictions[1]) <= {3, 7}
    for (X_s, y_s), X_q, pred in zip(supports, queries, predictions, strict=True):
        np.testing.assert_array_equal(pred, episodic.adapt(X_s, y_s).predict(X_q))


def test_regressor_predict_episodes_names_the_episode_with_wrong_outputs(regressor):
    rng = np.random.default_rng(2)
    supports = [
        (rng.normal(size=(4, 2)), rng.normal(size=(4, 2))),
        (rng.normal(size=(4, 2)), rng.normal(size=(4, 3))),
    ]
    queries = [rng.normal(size=(2, 2))] * 2
    with pytest.raises(
        ValueError, match="task 'b' has 3 outputs but the model was fitted with 2"
    ):
        regressor.predict_episodes(supports, queries, ["task 'a'", "task 'b'"])


def test_classifier_score_weighs_rows_as_accuracy_score_does(shared):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = shared.predict(X)
    y[:10] = np.where(y[:10] == 0, 2, 0)  # ten rows predicted wrong
    weight = np.r_[np.full(10, 5.0), np.ones(30)]
    score = shared.score(X, y, sample_weight=weight)
    assert score == pytest.approx(
        accuracy_score(y, shared.predict(X), sample_weight=weight)
    )
    assert score != pytest.approx(shared.score(X, y))


def test_regressor_score_weighs_rows_as_r2_score_does(regressor):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 2))
    y = np.column_stack([X[:, 0], X[:, 1] - 1.0]) + rng.normal(size=(30, 2))
    weight = rng.uniform(0.1, 5.0, size=30)
    score = regressor.score(X, y, sample_weight=weight)
    assert score == pytest.approx(
        r2_score(y, regressor.predict(X), sample_weight=weight)
    )
    assert score != pytest.approx(regressor.score(X, y))


def test_closed_form_classifier_score_weighs_rows_too():
    tasks = _class_tasks(labels=("a", "b"), n_tasks=4)
    est = MetaRidgeClassifier(
        hidden_layer_sizes=(4,), n_components=2, max_iter=5, k_shot=2, random_state=0
    ).fit(tasks)
    X, y = tasks[0]
    y = y.copy()
    y[:3] = np.where(est.predict(X[:3]) == "a", "b", "a")
    weight = np.r_[np.full(3, 4.0), np.ones(len(y) - 3)]
    assert est.score(X, y, sample_weight=weight) == pytest.approx(
        accuracy_score(y, est.predict(X), sample_weight=weight)
    )


# -- refusals, word for word ---------------------------------------------------
def test_unknown_labels_are_refused_saying_how_to_declare_them(shared):
    with pytest.raises(
        ValueError,
        match=r"^Labels \[7\] are not among classes_ \[0, 2, 4\]; pass all labels as "
        r"classes= on the first partial_fit\.$",
    ):
        shared.partial_fit([(np.zeros((4, 2)), [0, 7, 0, 7])])
    with pytest.raises(
        ValueError,
        match=r"^The support set has labels \[3\] that are not among classes_ "
        r"\[0, 2, 4\] seen in training; in the shared label space adapt only takes "
        r"known labels \(set n_way for new classes\)\.$",
    ):
        shared.adapt(np.zeros((4, 2)), [0, 3, 0, 3])


def test_episodic_refusals_name_the_task_and_the_limit(episodic):
    with pytest.raises(
        ValueError,
        match=r"^The support set has 3 classes but the model is 2-way: adapt takes "
        r"at most n_way=2 classes\.$",
    ):
        episodic.adapt(np.zeros((3, 2)), [0, 1, 2])
    tasks = _class_tasks() + [(np.zeros((6, 2)), np.zeros(6, dtype=int))]
    with pytest.raises(
        ValueError,
        match=r"^task 3 has 1 classes but n_way=2 are needed for each episode; use a "
        r"smaller n_way or drop the task\.$",
    ):
        MAMLClassifier(n_way=2, **FAST).fit(tasks)
    # A class of one row is a class; the first task short of n_way is named.
    tasks = [
        (np.zeros((6, 2)), np.array([0, 0, 0, 0, 0, 1])),
        (np.zeros((6, 2)), np.array([0, 0, 1, 1, 2, 2])),
        (np.zeros((6, 2)), np.zeros(6, dtype=int)),
    ]
    with pytest.raises(ValueError, match=r"^task 2 has 1 classes but n_way=2 "):
        MAMLClassifier(n_way=2, **FAST).fit(tasks)
    # One task (a plain fit): y is named, and there is no task to drop.
    for task_ids in (None, np.full(6, 7)):
        with pytest.raises(
            ValueError,
            match=r"^y has 3 classes but n_way=4 are needed for each episode; use "
            r"a smaller n_way\.$",
        ):
            MAMLClassifier(n_way=4, **FAST).fit(*tasks[1], task_ids=task_ids)


def test_regressor_refuses_a_different_number_of_outputs(regressor):
    X = np.zeros((4, 2))
    with pytest.raises(
        ValueError, match=r"^y has 1 outputs but the model was fitted with 2\.$"
    ):
        regressor.partial_fit(X, np.zeros(4), task_ids=[0, 0, 1, 1])
    with pytest.raises(
        ValueError,
        match=r"^The support set has 3 outputs but the model was fitted with 2\.$",
    ):
        regressor.adapt(X, np.zeros((4, 3)))


def test_classifier_refuses_continuous_labels_everywhere(shared):
    X = np.zeros((4, 2))
    for call in (
        lambda: MAMLClassifier(**FAST).fit(
            X, [0.5, 1.5, 0.5, 1.5], task_ids=[0, 0, 1, 1]
        ),
        lambda: shared.adapt(X, [0.5, 1.5, 0.5, 1.5]),
        lambda: shared.predict_episodes(
            [(X, np.array([0.5, 1.5, 0.5, 2.5]))], [X], ["t"]
        ),
    ):
        with pytest.raises(ValueError, match="Unknown label type: continuous"):
            call()


# -- what the encoding gives users ---------------------------------------------
def test_labels_of_any_type_round_trip_in_sorted_classes_order():
    tasks = [
        (X, np.where(y == 0, "zebra", np.where(y == 2, "ant", "moose")))
        for X, y in _class_tasks()
    ]
    est = MAMLClassifier(**FAST).fit(tasks)
    np.testing.assert_array_equal(est.classes_, ["ant", "moose", "zebra"])
    X = np.random.default_rng(5).normal(size=(20, 2))
    proba = est.predict_proba(X)
    assert proba.shape == (20, 3)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(1)])
    est.adapt(tasks[0][0][:6], tasks[0][1][:6])
    np.testing.assert_array_equal(est.classes_, ["ant", "moose", "zebra"])
    np.testing.assert_array_equal(
        est.predict(X), est.classes_[est.predict_proba(X).argmax(1)]
    )


def test_partial_fit_classes_fix_the_label_space_before_they_are_seen():
    est = MAMLClassifier(**FAST).partial_fit(_class_tasks(), classes=[4, 9, 0, 2])
    np.testing.assert_array_equal(est.classes_, [0, 2, 4, 9])
    assert est.predict_proba(np.zeros((3, 2))).shape == (3, 4)
    est.partial_fit([(np.zeros((8, 2)), [9, 0] * 4)] * 2)
    np.testing.assert_array_equal(est.classes_, [0, 2, 4, 9])


def test_tasks_missing_a_class_train_without_a_warning_in_the_shared_space():
    tasks = _class_tasks(rows=12)
    tasks.append((tasks[0][0], np.resize([0, 2], 12)))  # no class 4, last task
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = MAMLClassifier(**FAST).fit(tasks)
    assert est.n_iter_ == FAST["max_iter"]


def test_episodic_classes_fit_and_refit_from_support_sets(episodic):
    est = MAMLClassifier(n_way=3, **FAST).fit(_class_tasks())
    assert not hasattr(est, "classes_")
    X, y = _class_tasks(labels=("b", "a"), seed=4)[0]
    est.adapt(X, y)  # two classes for a 3-way model
    np.testing.assert_array_equal(est.classes_, ["a", "b"])
    assert est.predict_proba(X).shape == (len(X), 2)
    assert set(est.predict(X)) <= {"a", "b"}
    (episode,) = est.predict_episodes([(X, y)], [X], ["task 0"])
    np.testing.assert_array_equal(episode, est.predict(X))
    est.fit(_class_tasks())  # a new meta-training forgets the last support set
    assert not hasattr(est, "classes_")


def test_multi_output_and_1d_targets_keep_their_shape(regressor):
    X = np.random.default_rng(6).normal(size=(5, 2))
    assert regressor.n_outputs_ == 2
    assert regressor.predict(X).shape == (5, 2)
    (episode,) = regressor.predict_episodes(
        [(X, np.column_stack([X[:, 0], X[:, 1]]))], [X], ["task 0"]
    )
    assert episode.shape == (5, 2)
    single = MAMLRegressor(**FAST).fit(
        np.r_[X, X], np.r_[X[:, 0], X[:, 0]], task_ids=np.repeat([0, 1], 5)
    )
    assert single.n_outputs_ == 1
    assert single.predict(X).shape == (5,)
    assert single.adapt(X, X[:, 0]).predict(X).shape == (5,)


def test_tags_say_multiclass_and_multi_output():
    assert get_tags(MAMLClassifier()).classifier_tags.multi_class
    assert get_tags(MetaRidgeClassifier()).classifier_tags.multi_class
    assert get_tags(MAMLRegressor()).target_tags.multi_output


# -- the pure helpers ----------------------------------------------------------
def test_episodic_slots_are_the_rank_of_the_class_within_its_task():
    rng = np.random.default_rng(7)
    task_codes = rng.integers(0, 4, size=60)
    y = rng.choice([3, 10, 11, 40, 55], size=60)
    slots, n_slots = episodic_slots(task_codes, y)
    for t in range(4):
        labels = np.unique(y[task_codes == t])
        expected = np.searchsorted(labels, y[task_codes == t])
        np.testing.assert_array_equal(slots[task_codes == t], expected)
    assert n_slots == max(len(np.unique(y[task_codes == t])) for t in range(4))


def _pairs(sizes):
    return TaskSet([(np.zeros((n, 1)), np.zeros(n)) for n in sizes])


def test_usable_tasks_keep_tasks_of_two_rows_and_count_the_short_ones():
    tasks = _pairs([8, 2, 1, 5])
    counts = np.array([[4, 4], [1, 1], [1, 0], [3, 2]])
    with pytest.warns(UserWarning) as record:
        usable = usable_tasks(counts, tasks, 2, 2, " per class")
    np.testing.assert_array_equal(usable, [True, True, False, True])
    assert len(record) == 1
    assert str(record[0].message) == (
        "2 of 4 tasks have fewer than k_shot + n_query = 4 rows per class and "
        "contribute the rows they have; 1 with a single row are left out of "
        "meta-training."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a class absent from a task is not short
        usable = usable_tasks(np.array([[4, 0], [0, 4]]), _pairs([4, 4]), 2, 2, "")
    np.testing.assert_array_equal(usable, [True, True])


def test_usable_tasks_refuse_tasks_of_single_rows():
    with pytest.raises(
        ValueError,
        match=r"^No task has two rows or more \(n_samples = 2\): meta-training needs "
        r"a support and a query row per task\.$",
    ):
        usable_tasks(np.array([[1], [1]]), _pairs([1, 1]), 1, 1, "")


def test_short_task_warning_points_at_the_caller_of_fit():
    tasks = _class_tasks(rows=12)
    tasks[1] = (tasks[1][0][:3], tasks[1][1][:3])
    with pytest.warns(
        UserWarning,
        match=r"^1 of 3 tasks have fewer than k_shot \+ n_query = 4 rows "
        r"per class and contribute",
    ) as record:
        MAMLClassifier(**FAST).fit(tasks)
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutation adds frames
        assert record[0].filename == __file__
    X = np.random.default_rng(8).normal(size=(13, 2))
    with pytest.warns(
        UserWarning,
        match=r"^1 of 2 tasks have fewer than k_shot \+ n_query = 4 rows "
        r"and contribute",
    ):
        MAMLRegressor(**FAST).fit(X, X[:, 0], task_ids=[0] * 10 + [1] * 3)
    with pytest.warns(UserWarning, match=r"= 4 rows per class and contribute"):
        MetaRidgeClassifier(
            hidden_layer_sizes=(4,), n_components=2, max_iter=2, k_shot=2
        ).fit(tasks)
