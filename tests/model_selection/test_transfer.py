"""transfer_report: the adapted estimator beside baselines on identical splits."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import root_mean_squared_error

from sktransfer import (
    MAMLClassifier,
    MAMLRegressor,
    NegativeTransferWarning,
    PooledClassifier,
    PooledRegressor,
    SupportSetClassifier,
    SupportSetRegressor,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.model_selection import default_baselines


def _quiet_report(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        return transfer_report(*args, **kwargs)


@pytest.fixture(scope="module")
def shared():
    # Tasks drawn from one distribution: the pooled model is near the Bayes
    # classifier, a barely meta-trained MAML adapted on 5 rows per class is not.
    X, y, t = make_related_classification_tasks(
        n_tasks=50, n_samples=40, task_shift=0.0, random_state=0
    )
    train = t < 40
    est = MAMLClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    est.fit(X[train], y[train], task_ids=t[train])
    held = ~train
    return est, (X[train], y[train], t[train]), (X[held], y[held], t[held])


@pytest.fixture(scope="module")
def sinusoids():
    X, y, t = make_sinusoid_tasks(n_tasks=50, n_samples=20, random_state=0)
    train = t < 40
    est = MAMLRegressor(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    est.fit(X[train], y[train], task_ids=t[train])
    held = ~train
    return est, (X[train], y[train], t[train]), (X[held], y[held], t[held])


def test_a_winning_pooled_model_is_named_with_its_margin(shared):
    est, train, target = shared
    baselines = {**default_baselines(est, train), "majority": DummyClassifier()}
    with pytest.warns(NegativeTransferWarning) as caught:
        report = transfer_report(
            est,
            target,
            k_shot=5,
            baselines=baselines,
            train_tasks=train,
            random_state=0,
        )
    assert len(caught) == 1
    message = str(caught[0].message)
    assert list(report.baselines) == [
        "support set only",
        "pooled",
        "pooled + shrunk offset",
        "majority",
    ]
    for name in ("pooled", "pooled + shrunk offset"):
        gain = report.gain[name]
        np.testing.assert_allclose(gain, report.adapted - report.baselines[name])
        assert report.mean_gain[name] < -0.1  # measured -0.22: the pooled model wins
        low, high = report.ci95[name]
        assert low < report.mean_gain[name] < high < 0
        losses = int((gain < 0).sum())
        assert (
            f"{name!r} scores {-report.mean_gain[name]:.3f} higher than the adapted "
            f"estimator on average over 10 tasks (95% CI of the difference "
            f"{-high:.3f} to {-low:.3f}; better on {losses} of them)"
        ) in message
    # A baseline the adapted model beats is not named.
    assert report.mean_gain["majority"] > 0.1
    assert "majority" not in message


def test_beating_every_baseline_is_quiet_and_the_adapted_side_is_few_shot_score(
    shared,
):
    est, _, target = shared
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeTransferWarning)
        report = transfer_report(
            est,
            target,
            k_shot=5,
            baselines={"majority": DummyClassifier()},
            n_episodes=2,
            random_state=0,
        )
    assert report.mean_gain["majority"] > 0
    expected = few_shot_score(est, target, k_shot=5, n_episodes=2, random_state=0)
    np.testing.assert_allclose(report.adapted, expected.per_task)
    np.testing.assert_array_equal(report.task_labels, np.arange(40, 50))
    # A plain estimator is fitted on each support set alone, on the same splits.
    alone = few_shot_score(
        SupportSetClassifier(DummyClassifier()),
        target,
        k_shot=5,
        n_episodes=2,
        random_state=0,
    )
    np.testing.assert_allclose(report.baselines["majority"], alone.per_task)


def test_ci95_is_scipys_paired_t_interval(shared):
    est, _, target = shared
    report = _quiet_report(
        est,
        target,
        k_shot=5,
        baselines={"logistic": LogisticRegression(C=0.1)},
        random_state=1,
    )
    paired = stats.ttest_rel(report.adapted, report.baselines["logistic"])
    interval = paired.confidence_interval(confidence_level=0.95)
    np.testing.assert_allclose(report.ci95["logistic"], interval)
    one = (target[0][:40], target[1][:40], target[2][:40])  # a single task
    single = _quiet_report(
        est, one, k_shot=5, baselines={"majority": DummyClassifier()}
    )
    assert np.isnan(single.ci95["majority"]).all()


def test_a_scorer_name_keeps_greater_is_better(sinusoids):
    est, _, target = sinusoids
    report = _quiet_report(
        est,
        target,
        k_shot=5,
        baselines={"support mean": DummyRegressor()},
        metric="neg_root_mean_squared_error",
        random_state=0,
    )
    rmse = {
        "adapted": few_shot_score(
            est, target, k_shot=5, random_state=0, metric=root_mean_squared_error
        ).per_task,
        "baseline": few_shot_score(
            SupportSetRegressor(DummyRegressor()),
            target,
            k_shot=5,
            random_state=0,
            metric=root_mean_squared_error,
        ).per_task,
    }
    # Positive gain: the adapted model's RMSE is lower.
    np.testing.assert_allclose(
        report.gain["support mean"], rmse["baseline"] - rmse["adapted"]
    )
    np.testing.assert_allclose(report.adapted, -rmse["adapted"])
    assert report.metric == "neg_root_mean_squared_error"


def test_pooled_baselines_need_train_tasks_or_a_fit(shared):
    est, train, target = shared
    needs = r"Baseline 'mine' \(PooledClassifier\) is not fitted.*train_tasks="
    with pytest.raises(ValueError, match=needs):
        transfer_report(est, target, k_shot=5, baselines={"mine": PooledClassifier()})
    # Without train_tasks the defaults are the support-set model alone.
    assert list(default_baselines(est)) == ["support set only"]
    fitted = PooledClassifier().fit(*train[:2], task_ids=train[2])
    as_is = _quiet_report(
        est, target, k_shot=5, baselines={"p": fitted}, random_state=0
    )
    fitted_here = _quiet_report(
        est,
        target,
        k_shot=5,
        baselines={"p": PooledClassifier()},
        train_tasks=train,
        random_state=0,
    )
    np.testing.assert_allclose(as_is.baselines["p"], fitted_here.baselines["p"])
    with pytest.raises(ValueError, match="must be a classifier"):
        transfer_report(est, target, k_shot=5, baselines={"r": DummyRegressor()})


@pytest.mark.slow
def test_episodic_estimators_get_the_support_set_baselines():
    X, y, t = make_related_classification_tasks(
        n_tasks=24, n_samples=48, n_classes=4, random_state=0
    )
    train = t < 20
    est = MAMLClassifier(hidden_layer_sizes=(16,), n_way=4, max_iter=20, random_state=0)
    est.fit(X[train], y[train], task_ids=t[train])
    report = _quiet_report(
        est,
        (X[~train], y[~train] + 10, t[~train]),
        k_shot=3,
        train_tasks=(X[train], y[train], t[train]),
        random_state=0,
    )
    assert list(report.baselines) == ["support set only", "nearest centroid"]
    pytest.importorskip("pandas")  # to_frame; in the dev extra
    frame = report.to_frame()
    assert list(frame.columns) == ["adapted", "support set only", "nearest centroid"]
    assert "nearest centroid" in str(report)


# -- what a user reads off the report (from mutation survivors) ---------------


def test_the_printed_table_gives_each_baselines_score_gain_interval_and_wins(shared):
    est, _, target = shared
    # The estimator itself as a baseline ties on every task: a gain of 0 is
    # neither a win nor negative transfer.
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeTransferWarning)
        report = transfer_report(
            est,
            target,
            k_shot=5,
            baselines={"majority": DummyClassifier(), "the estimator itself": est},
            random_state=0,
        )
    np.testing.assert_array_equal(report.gain["the estimator itself"], 0.0)
    lines = str(report).splitlines()
    assert lines[0] == "Transfer report: accuracy over 10 tasks (greater is better)"
    assert lines[1].split() == (
        "score gain 95% CI of the gain adapted better on".split()
    )
    score_end = lines[1].index("score") + len("score")
    rows = {"adapted estimator": lines[2]}
    rows.update(zip(report.baselines, lines[3:], strict=True))
    for name, line in rows.items():
        assert line.startswith(name + "  ")
        # The score column lines up under its title, whatever the name's length.
        assert line[score_end - 1].isdigit()
        assert line[score_end : score_end + 1] in ("", " ")
    assert float(rows["adapted estimator"].split()[-1]) == pytest.approx(
        report.adapted.mean(), abs=5e-4
    )
    for name, scores in report.baselines.items():
        fields = rows[name][len(name) :].split()
        score, gain, low, _, high, wins, _, n_tasks = fields
        assert float(score) == pytest.approx(np.mean(scores), abs=5e-4)
        assert float(gain) == pytest.approx(np.mean(report.adapted - scores), abs=5e-4)
        better = sum(a > b for a, b in zip(report.adapted, scores, strict=True))
        assert (int(wins), int(n_tasks)) == (better, 10)
        if name == "majority":
            paired = stats.ttest_rel(report.adapted, scores)
            interval = paired.confidence_interval(confidence_level=0.95)
            assert (float(low), float(high)) == pytest.approx(interval, abs=5e-4)
    assert int(rows["majority"].split()[-3]) > 0
    one = (target[0][:40], target[1][:40], target[2][:40])
    single = _quiet_report(est, one, k_shot=5, baselines={"m": DummyClassifier()})
    assert str(single).splitlines()[0] == (
        "Transfer report: accuracy over 1 task (greater is better)"
    )


def test_to_frame_has_one_row_per_task_indexed_by_its_label(shared):
    pd = pytest.importorskip("pandas")  # in the dev extra
    est, _, target = shared
    report = _quiet_report(
        est, target, k_shot=5, baselines={"majority": DummyClassifier()}
    )
    frame = report.to_frame()
    assert frame.index.name == "task"
    pd.testing.assert_index_equal(frame.index, pd.Index(np.arange(40, 50), name="task"))
    np.testing.assert_array_equal(frame.loc[43, "adapted"], report.adapted[3])
    np.testing.assert_array_equal(frame["majority"], report.baselines["majority"])


def test_default_baselines_are_the_documented_estimators():
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = make_sinusoid_tasks(n_tasks=4, random_state=0)
    shared = default_baselines(MAMLRegressor(), train)
    assert shared["pooled"].offset is None
    assert shared["pooled + shrunk offset"].offset == "shrunk"
    episodic = default_baselines(MAMLClassifier(n_way=3), train)
    assert isinstance(episodic["nearest centroid"].estimator, NearestCentroid)
    # The n_way that counts is the one of the estimator that adapts, also
    # inside a pipeline (not fitted yet).
    pipeline = make_pipeline(StandardScaler(), MAMLClassifier(n_way=3))
    assert list(default_baselines(pipeline, train)) == [
        "support set only",
        "nearest centroid",
    ]


def test_negative_transfer_names_every_winner_on_one_task_and_on_two(shared):
    est, train, target = shared
    pooled = PooledClassifier().fit(*train[:2], task_ids=train[2])
    # A baseline the estimator beats first: the winners after it are named.
    baselines = {"majority": DummyClassifier(), "pooled": pooled, "again": pooled}
    X, y, t = target
    one = t == 40
    with pytest.warns(NegativeTransferWarning) as caught:
        report = transfer_report(
            est, (X[one], y[one], t[one]), k_shot=5, baselines=baselines
        )
    assert report.gain["pooled"][0] < 0  # measured -0.1 to -0.43 on each task
    margin = -report.mean_gain["pooled"]
    part = (
        "{!r} scores %.3f higher than the adapted estimator on average over 1 "
        "task (no confidence interval from one task; better on 1 of them)." % margin
    )
    assert str(caught[0].message) == (
        "Negative transfer: " + part.format("pooled") + " " + part.format("again")
    )
    two = (t == 40) | (t == 41)
    with pytest.warns(NegativeTransferWarning) as caught:
        report = transfer_report(
            est,
            (X[two], y[two], t[two]),
            k_shot=5,
            baselines={"pooled": pooled},
            random_state=0,
        )
    paired = stats.ttest_rel(report.adapted, report.baselines["pooled"])
    low, high = paired.confidence_interval(confidence_level=0.95)
    np.testing.assert_allclose(report.ci95["pooled"], (low, high))
    assert np.isfinite([low, high]).all()
    assert (
        f"over 2 tasks (95% CI of the difference {-high:.3f} to {-low:.3f}; "
        "better on 2 of them)."
    ) in str(caught[0].message)


def test_negative_transfer_counts_the_tasks_a_baseline_wins_not_ties(shared):
    est, train, target = shared
    pooled = PooledClassifier().fit(*train[:2], task_ids=train[2])

    def reaches_70_percent(y_true, y_pred):  # a pass mark: ties are common
        return float(np.mean(y_true == y_pred) >= 0.7)

    with pytest.warns(NegativeTransferWarning) as caught:
        report = transfer_report(
            est,
            target,
            k_shot=5,
            baselines={"pooled": pooled},
            metric=reaches_70_percent,
            random_state=0,
        )
    assert report.metric == "reaches_70_percent"
    adapted, baseline = report.adapted, report.baselines["pooled"]
    ties = sum(a == b for a, b in zip(adapted, baseline, strict=True))
    wins = sum(b > a for a, b in zip(adapted, baseline, strict=True))
    assert ties > 0 and wins < 10  # measured: 3 ties, 7 wins
    assert f"better on {wins} of them)." in str(caught[0].message)


def test_a_scorer_with_keyword_arguments_scores_with_them(shared):
    from sklearn.metrics import f1_score

    est, _, target = shared
    report = _quiet_report(
        est,
        target,
        k_shot=5,
        baselines={"majority": DummyClassifier()},
        metric="f1_macro",
        random_state=0,
    )

    def f1_macro(y_true, y_pred):
        return f1_score(y_true, y_pred, average="macro")

    expected = few_shot_score(est, target, k_shot=5, random_state=0, metric=f1_macro)
    np.testing.assert_allclose(report.adapted, expected.per_task)
    # Binary labels: the default average="binary" scores another number.
    binary = few_shot_score(est, target, k_shot=5, random_state=0, metric=f1_score)
    assert not np.allclose(binary.per_task, expected.per_task)


def test_refusals_say_what_is_wrong_and_what_to_do(shared, sinusoids):
    est, _, target = shared
    with pytest.raises(ValueError) as caught:
        transfer_report(est, target, k_shot=5, metric="neg_log_loss")
    assert str(caught.value) == (
        "metric='neg_log_loss' scores the output of predict_proba, but "
        "transfer_report compares predictions: use a scorer of predict (e.g. "
        "'accuracy', 'neg_root_mean_squared_error') or a callable "
        "metric(y_true, y_pred)."
    )
    regressor, _, tasks = sinusoids
    with pytest.raises(ValueError) as caught:
        transfer_report(regressor, tasks, k_shot=5, baselines={"c": DummyClassifier()})
    assert str(caught.value) == (
        "Baseline 'c' (DummyClassifier) must be a regressor, as the adapted "
        "estimator is."
    )
    with pytest.raises(ValueError) as caught:
        transfer_report(est, target, k_shot=5, baselines={"p": PooledClassifier()})
    assert str(caught.value) == (
        "Baseline 'p' (PooledClassifier) is not fitted and learns from training "
        "tasks: pass train_tasks= (the tasks the adapted estimator was trained "
        "on), or fit it first."
    )


def test_a_metric_without_a_name_scores_and_prints(shared):
    from functools import partial

    from sklearn.metrics import fbeta_score

    est, _, target = shared
    f_half = partial(fbeta_score, beta=0.5)  # no __name__
    report = _quiet_report(
        est,
        target,
        k_shot=5,
        baselines={"majority": DummyClassifier()},
        metric=f_half,
        random_state=0,
    )
    expected = few_shot_score(est, target, k_shot=5, random_state=0, metric=f_half)
    np.testing.assert_allclose(report.adapted, expected.per_task)
    assert str(report).startswith("Transfer report: metric over 10 tasks")


def test_a_plain_classifier_is_fitted_as_a_classifier_on_each_support_set():
    X, y, t = make_related_classification_tasks(n_tasks=6, n_samples=30, random_state=0)
    labels = np.array(["no", "yes"])[y]  # string labels: a classifier's own
    labels[t == 0] = "no"  # a task of one class: its support sets are of one class
    report = _quiet_report(
        SupportSetClassifier(),
        (X, labels, t),
        k_shot=4,
        baselines={"logistic": LogisticRegression()},
        random_state=0,
    )
    alone = few_shot_score(
        SupportSetClassifier(LogisticRegression()),
        (X, labels, t),
        k_shot=4,
        random_state=0,
    )
    np.testing.assert_allclose(report.baselines["logistic"], alone.per_task)
    assert report.baselines["logistic"][0] == 1.0  # the one class, predicted


def _site_table(n_tasks=12, n_rows=16, seed=0):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(seed)
    n = n_tasks * n_rows
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "site": rng.choice(np.array(["north", "south", "west"], dtype=object), n),
            "x1": rng.normal(size=n),
        }
    )
    # The site's effect is linear in no numbering of the sites: read as a
    # number, a site's code cannot fit it.
    effect = X["site"].map({"north": 0.0, "south": 3.0, "west": 0.0}).to_numpy()
    y = X["x0"].to_numpy() + effect + 0.1 * rng.normal(size=n)
    return X, y, np.repeat(np.arange(n_tasks), n_rows)


def test_baselines_read_the_categorical_columns_as_categories():
    from sklearn.linear_model import LinearRegression

    X, y, t = _site_table()
    train = t < 8
    est = SupportSetRegressor().fit(X[train], y[train])  # encodes "site"
    tasks = (X[~train], y[~train], t[~train])
    report = _quiet_report(
        est,
        tasks,
        k_shot=6,
        baselines={
            "linear": LinearRegression(),
            "linear, wrapped by hand": SupportSetRegressor(LinearRegression()),
            "told there are none": SupportSetRegressor(
                LinearRegression(), categorical_features=None
            ),
        },
        random_state=0,
    )
    # Wrapped or not, the baseline one-hot encodes the site column.
    np.testing.assert_allclose(
        report.baselines["linear"], report.baselines["linear, wrapped by hand"]
    )
    by_hand = SupportSetRegressor(LinearRegression()).fit(X[train], y[train])
    alone = few_shot_score(by_hand, tasks, k_shot=6, random_state=0)
    np.testing.assert_allclose(report.baselines["linear"], alone.per_task)
    # A baseline told there are no categorical columns reads the codes as
    # numbers, as asked: a line through them misses the site's effect.
    none = report.baselines["told there are none"]
    assert none.mean() < report.baselines["linear"].mean() - 0.5  # measured -1.7
    fitted = PooledRegressor(cv=3).fit(X[train], y[train], task_ids=t[train])
    with pytest.raises(ValueError) as caught:
        transfer_report(est, tasks, k_shot=6, baselines={"fitted": fitted})
    assert str(caught.value) == (
        "Baseline 'fitted' (PooledRegressor) is fitted, and the adapted "
        "estimator encodes categorical columns: pass the baseline unfitted, "
        "with train_tasks=, so that it learns from the same encoded rows."
    )
