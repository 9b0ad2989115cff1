"""Support sets that follow a task's class mix (``support="stratified"`` and
``"random"``), and the few-shot scores that use them."""

import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import SupportSetClassifier, TaskSet, few_shot_score, transfer_report
from sktransfer.tasks._splits import (
    draw_episodes,
    scorable_tasks,
    split_by_class_mix,
    split_support_query,
)


def imbalanced(n_tasks=6, seed=0):
    """Tasks of 20 to 40 rows, a quarter of them class 0 (the rest class 1),
    and two of three classes, one with a class of a single row."""
    rng = np.random.RandomState(seed)
    ys, ts = [], []
    for task in range(n_tasks):
        n = rng.randint(20, 41)
        y = (rng.random_sample(n) > 0.25).astype(int)
        y[:2] = [0, 1]
        ys.append(y)
        ts.append(np.full(n, task))
    ys.append(np.repeat([0, 1, 2], [1, 9, 14]))  # a class of one row
    ts.append(np.full(24, n_tasks))
    ys.append(np.repeat([0, 1, 2], [3, 9, 12]))
    ts.append(np.full(24, n_tasks + 1))
    y, t = np.concatenate(ys), np.concatenate(ts)
    return TaskSet.from_arrays(rng.normal(size=(len(y), 2)), y, t)


def largest_remainders(total, counts):
    """The reference allocation, with exact fractions and a plain loop."""
    n = sum(counts)
    exact = [Fraction(total * c, n) for c in counts]
    share = [int(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: -(exact[i] - share[i]))
    for i in by_remainder[: total - sum(share)]:
        share[i] += 1
    return share


@pytest.mark.parametrize("k_shot", [1, 3, 5])
def test_stratified_support_follows_the_class_counts(k_shot):
    tasks = imbalanced()
    splits = split_by_class_mix(
        tasks, k_shot, rng=np.random.RandomState(0), support="stratified"
    )
    for code, (support, query) in enumerate(splits):
        rows = np.flatnonzero(tasks.task_codes == code)
        assert set(support) | set(query) == set(rows)
        assert not set(support) & set(query)
        labels = np.unique(tasks.y)
        counts = [int((tasks.y[rows] == c).sum()) for c in labels]
        n_classes = sum(c > 0 for c in counts)
        expected = largest_remainders(k_shot * n_classes, counts)
        got = [int((tasks.y[support] == c).sum()) for c in labels]
        assert got == expected


def test_stratified_support_with_many_classes_breaks_ties_to_the_first_class():
    """Eighteen classes of 1, 1 and 3 rows: remainders 0.6, 0.6, 0.8, and six
    of the twelve tied at 0.6 get the rows left. The first classes get them,
    as the reference's stable sort gives them (numpy's default sort is not
    stable beyond 16 elements). The last task lacks the last class, so the
    (task, class) table must still span every class."""
    y0 = np.repeat(np.arange(18), [1, 1, 3] * 6)
    y1 = np.repeat(np.arange(5), 5)
    y = np.r_[y0, y1]
    t = np.r_[np.zeros(len(y0), int), np.ones(len(y1), int)]
    tasks = TaskSet.from_arrays(np.zeros((len(y), 1)), y, t)
    labels = np.arange(18)
    splits = split_by_class_mix(
        tasks, 1, rng=np.random.RandomState(0), support="stratified"
    )
    for code, (support, _) in enumerate(splits):
        rows = np.flatnonzero(tasks.task_codes == code)
        counts = [int((tasks.y[rows] == c).sum()) for c in labels]
        n_classes = sum(c > 0 for c in counts)
        expected = largest_remainders(n_classes, counts)
        got = [int((tasks.y[support] == c).sum()) for c in labels]
        assert got == expected
    # 18 rows for task 0: two to each class of three, one to each of the first
    # six classes of one row (classes 0, 1, 3, 4, 6, 7).
    assert np.bincount(tasks.y[splits[0][0]], minlength=18).tolist() == (
        [1, 1, 2] * 3 + [0, 0, 2] * 3
    )
    assert scorable_tasks(tasks, 1, per_class=True).tolist() == [True, True]


@pytest.mark.parametrize("support", ["stratified", "random"])
def test_n_query_rows_follow_the_mix_too(support):
    tasks = imbalanced()
    splits = split_by_class_mix(
        tasks, 2, n_query=4, rng=np.random.RandomState(0), support=support
    )
    for code, (support_rows, query) in enumerate(splits):
        rows = np.flatnonzero(tasks.task_codes == code)
        counts = np.bincount(tasks.y[rows], minlength=3)
        n_classes = int((counts > 0).sum())
        assert len(support_rows) == 2 * n_classes
        assert len(support_rows) + len(query) == 6 * n_classes
        assert not set(support_rows) & set(query)
        if support == "stratified":
            taken = largest_remainders(6 * n_classes, list(counts))
            drawn = np.bincount(tasks.y[np.r_[support_rows, query]], minlength=3)
            assert drawn.tolist() == taken


@pytest.mark.parametrize("support", ["stratified", "random"])
def test_draw_episodes_passes_the_choice_on(support):
    tasks = imbalanced()
    drawn = draw_episodes(
        tasks,
        k_shot=2,
        n_query=3,
        n_episodes=2,
        per_class=True,
        random_state=0,
        support=support,
    )
    rng = np.random.RandomState(0)
    for episode in drawn:
        direct = split_by_class_mix(tasks, 2, n_query=3, rng=rng, support=support)
        for (s, q), (s_ref, q_ref) in zip(episode, direct, strict=True):
            np.testing.assert_array_equal(s, s_ref)
            np.testing.assert_array_equal(q, q_ref)
    balanced = draw_episodes(
        tasks, k_shot=1, n_query=3, n_episodes=1, per_class=True, random_state=0
    )[0]
    reference = split_support_query(
        tasks, 1, n_query=3, per_class=True, rng=np.random.RandomState(0)
    )
    for (s, q), (s_ref, q_ref) in zip(balanced, reference, strict=True):
        np.testing.assert_array_equal(s, s_ref)
        np.testing.assert_array_equal(q, q_ref)


def test_random_support_mixes_classes_as_the_task_does():
    tasks = imbalanced(n_tasks=1)
    rows = np.flatnonzero(tasks.task_codes == 0)
    share = (tasks.y[rows] == 0).mean()
    rng = np.random.RandomState(0)
    draws = [
        split_by_class_mix(tasks, 5, rng=rng, support="random")[0][0]
        for _ in range(2000)
    ]
    assert {len(d) for d in draws} == {10}
    sizes = {int((tasks.y[d] == 0).sum()) for d in draws}
    assert len(sizes) > 3  # the number of class-0 rows varies
    zero = np.mean([(tasks.y[d] == 0).mean() for d in draws])
    assert zero == pytest.approx(share, abs=0.01)
    again = split_by_class_mix(
        tasks, 5, rng=np.random.RandomState(7), support="random"
    )[0][0]
    same = split_by_class_mix(tasks, 5, rng=np.random.RandomState(7), support="random")[
        0
    ][0]
    other = split_by_class_mix(
        tasks, 5, rng=np.random.RandomState(8), support="random"
    )[0][0]
    np.testing.assert_array_equal(again, same)
    assert set(again) != set(other)


def test_a_task_with_a_rare_class_scores_when_the_support_follows_the_mix():
    # The 3-class task has 3 rows of class 0: too few for 5 of each class,
    # enough for 15 rows in its own mix.
    tasks = imbalanced()
    last = tasks.n_tasks - 1
    balanced = scorable_tasks(tasks, 5, per_class=True)
    mixed = scorable_tasks(tasks, 5, per_class=True, support="stratified")
    assert not balanced[last] and mixed[last]
    assert not scorable_tasks(tasks, 8, per_class=True, support="random")[last]
    message = (
        f"task {last - 1} has 24 rows, so none is left to score after k_shot * 3 "
        "classes = 24 support rows; give it more rows or use a smaller k_shot."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        split_by_class_mix(tasks, 8, rng=np.random.RandomState(0), support="random")
    # Regressors: a task of exactly k_shot rows has no query row.
    regression = TaskSet.from_arrays(
        np.zeros((9, 1)), np.arange(9.0), [0] * 5 + [1] * 4
    )
    assert scorable_tasks(regression, 4, per_class=False).tolist() == [True, False]


def test_few_shot_score_support_option_reaches_the_estimator():
    """A support-set majority vote: balanced support sets tie (the smaller
    label, class 0, wins), support sets in the task's mix vote for class 1,
    the query rows' majority."""
    tasks = imbalanced()
    pairs = [tasks[c] for c in range(tasks.n_tasks - 1)]
    vote = SupportSetClassifier(DummyClassifier(strategy="most_frequent"))
    scores = {
        support: few_shot_score(
            vote, pairs, k_shot=4, support=support, random_state=0
        ).mean
        for support in ("balanced", "stratified")
    }
    share_one = np.mean([(y == 1).mean() for _, y in pairs])
    assert scores["balanced"] < 0.35 < 0.65 < scores["stratified"]
    assert scores["stratified"] == pytest.approx(share_one, abs=0.08)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = transfer_report(
            vote, pairs, k_shot=4, support="stratified", random_state=0
        )
    assert report.adapted.mean() == pytest.approx(scores["stratified"])
    with pytest.raises(InvalidParameterError, match="support"):
        few_shot_score(vote, pairs, k_shot=4, support="per_class")


def test_scoring_in_the_task_mix_keeps_the_task_a_balanced_support_skips():
    """The task with a class of 3 rows: left out at k_shot=5 per class (one
    warning, named, the rest scored with their weights); scored when the
    support follows the mix. No task to score: the error of the first."""
    tasks = imbalanced()
    pairs = [tasks[c] for c in range(tasks.n_tasks)]
    vote = SupportSetClassifier(DummyClassifier(strategy="most_frequent"))
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(tasks.y))
    # A plain loop: which tasks have a class of fewer than 5 rows.
    skipped = [
        c
        for c in range(tasks.n_tasks)
        if min(np.unique(tasks[c][1], return_counts=True)[1]) < 5
    ]
    assert {tasks.n_tasks - 2, tasks.n_tasks - 1} <= set(skipped)
    names = ", ".join(f"task {c}" for c in skipped)
    message = (
        f"{len(skipped)} of 8 tasks cannot give k_shot=5 support rows of each "
        f"class and a query row, and are not scored: {names}. The result's "
        "task_labels list the tasks scored."
    )
    with pytest.warns(UserWarning, match=re.escape(message)):
        balanced = few_shot_score(
            vote, pairs, k_shot=5, sample_weight=weight, random_state=0
        )
    kept = [c for c in range(tasks.n_tasks) if c not in skipped]
    assert balanced.task_labels.tolist() == kept
    rest = np.isin(tasks.task_codes, kept)
    alone = few_shot_score(
        vote,
        [pairs[c] for c in kept],
        k_shot=5,
        sample_weight=weight[rest],
        random_state=0,
    )
    np.testing.assert_array_equal(balanced.per_task, alone.per_task)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed = few_shot_score(vote, pairs, k_shot=5, support="stratified")
    assert mixed.task_labels.tolist() == list(range(tasks.n_tasks))
    many = [(np.zeros((3, 2)), np.array([0, 1, 1]))] * 7
    words = "support rows per class, in any mix, and a query row"
    with pytest.raises(ValueError, match="task 0 has 3 rows, so none is left"):
        few_shot_score(vote, many, k_shot=2, support="random")
    with pytest.warns(UserWarning, match=re.escape(words)) as caught:
        few_shot_score(vote, many + [tasks[0]], k_shot=2, support="random")
    assert "task 0, task 1, task 2, task 3, task 4 and 2 more. The" in str(
        caught[0].message
    )
