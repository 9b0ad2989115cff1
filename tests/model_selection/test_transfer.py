"""transfer_report: gains over a from-scratch baseline, negative transfer warned."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sktransfer import (
    MAMLClassifier,
    NegativeTransferWarning,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import make_related_classification_tasks
from sktransfer.model_selection import default_baseline


@pytest.fixture(scope="module")
def setting():
    X, y, t = make_related_classification_tasks(
        n_tasks=50, n_samples=60, random_state=0
    )
    train = t < 40
    est = MAMLClassifier(
        hidden_layer_sizes=(32,),
        inner_lr=0.05,
        n_adapt_steps=3,
        max_iter=300,
        meta_lr=3e-3,
        random_state=0,
    ).fit(X[train], y[train], task_ids=t[train])
    held = ~train
    return est, X[held], y[held], t[held]


def test_positive_transfer_is_not_warned(setting):
    est, X, y, t = setting
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeTransferWarning)
        report = transfer_report(
            est, (X, y, t), baseline=LogisticRegression(), k_shot=5, random_state=0
        )
    assert report.mean_gain > 0.05
    np.testing.assert_allclose(report.gain, report.adapted - report.baseline)
    assert report.adapted.shape == report.baseline.shape == (10,)
    # The adapted side is the few-shot score on the very same splits.
    expected = few_shot_score(est, (X, y, t), k_shot=5, random_state=0)
    np.testing.assert_allclose(report.adapted, expected.per_task)


def test_reversed_tasks_warn_of_negative_transfer(setting):
    # Target tasks whose relation to the meta-training tasks is reversed:
    # the meta-learned prior now points the wrong way.
    est, X, y, t = setting
    with pytest.warns(NegativeTransferWarning, match="Negative transfer"):
        report = transfer_report(
            est, (X, 1 - y, t), baseline=LogisticRegression(), k_shot=5, random_state=0
        )
    assert report.mean_gain < -0.2
    assert (report.gain < 0).mean() > 0.8


def test_default_baseline_is_the_same_network_from_scratch(setting):
    est = setting[0]
    baseline = default_baseline(est)
    assert baseline.hidden_layer_sizes == est.hidden_layer_sizes
    assert baseline.module is est.module
    assert not hasattr(baseline, "net_")  # unfitted: trained on each support set


def test_default_baseline_separates_positive_and_negative_transfer(setting):
    est, X, y, t = setting
    few = np.isin(t, np.unique(t)[:4])  # four target tasks keep it quick
    report = transfer_report(est, (X[few], y[few], t[few]), k_shot=5, random_state=0)
    assert report.mean_gain > 0.05  # measured: +0.125 (0.88 vs 0.76)
    with pytest.warns(NegativeTransferWarning):
        transfer_report(est, (X[few], 1 - y[few], t[few]), k_shot=5, random_state=0)
