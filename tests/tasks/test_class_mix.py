"""Support sets that follow a task's class mix (``support="stratified"`` and
``"random"``), and the few-shot scores that use them."""

import warnings
from fractions import Fraction

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import SupportSetClassifier, TaskSet, few_shot_score, transfer_report
from sktransfer.tasks._splits import scorable_tasks, split_by_class_mix


def imbalanced(n_tasks=6, seed=0):
    """Tasks of 20 to 40 rows, a quarter of them class 0 (the rest class 1),
    and one of three classes."""
    rng = np.random.RandomState(seed)
    ys, ts = [], []
    for task in range(n_tasks):
        n = rng.randint(20, 41)
        y = (rng.random_sample(n) > 0.25).astype(int)
        y[:2] = [0, 1]
        ys.append(y)
        ts.append(np.full(n, task))
    ys.append(np.repeat([0, 1, 2], [3, 9, 12]))
    ts.append(np.full(24, n_tasks))
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


def test_n_query_rows_follow_the_mix_too():
    tasks = imbalanced()
    splits = split_by_class_mix(
        tasks, 2, n_query=4, rng=np.random.RandomState(0), support="stratified"
    )
    for code, (support, query) in enumerate(splits):
        rows = np.flatnonzero(tasks.task_codes == code)
        counts = np.bincount(tasks.y[rows], minlength=3)
        n_classes = int((counts > 0).sum())
        taken = largest_remainders(6 * n_classes, list(counts))
        assert len(support) + len(query) == 6 * n_classes
        assert np.bincount(tasks.y[np.r_[support, query]], minlength=3).tolist() == (
            taken
        )


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
    with pytest.raises(ValueError, match="has 24 rows, so none is left to score"):
        split_by_class_mix(tasks, 8, rng=np.random.RandomState(0), support="random")


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
