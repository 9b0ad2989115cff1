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
    SupportSetClassifier,
    SupportSetRegressor,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.model_selection import default_baselines


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        report = transfer_report(
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        single = transfer_report(
            est, one, k_shot=5, baselines={"majority": DummyClassifier()}
        )
    assert np.isnan(single.ci95["majority"]).all()


def test_a_scorer_name_keeps_greater_is_better(sinusoids):
    est, _, target = sinusoids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        report = transfer_report(
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        as_is = transfer_report(
            est, target, k_shot=5, baselines={"p": fitted}, random_state=0
        )
        fitted_here = transfer_report(
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        report = transfer_report(
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
