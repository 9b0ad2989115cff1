"""The few-shot curve and the training history, plotted as scikit-learn does."""

import sys
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sktransfer import (  # noqa: E402
    FewShotCurveDisplay,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    SupportSetRegressor,
    TrainingHistoryDisplay,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import (  # noqa: E402
    make_related_classification_tasks,
    make_related_regression_tasks,
)

FAST = dict(hidden_layer_sizes=(16,), n_components=4, max_iter=50, random_state=0)
K_SHOTS = [2, 5, 10]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def regression():
    X, y, t = make_related_regression_tasks(n_tasks=38, n_samples=30, random_state=0)
    train = (X[t < 30], y[t < 30], t[t < 30])
    new = (X[t >= 30], y[t >= 30], t[t >= 30])
    est = MetaRidgeRegressor(k_shot=5, **FAST).fit(*train)
    return est, train, new


def test_few_shot_curve_plots_the_scores_of_transfer_report(regression):
    est, train, new = regression
    fig, ax = plt.subplots()
    display = FewShotCurveDisplay.from_estimator(
        est, new, k_shots=K_SHOTS, train_tasks=train, random_state=0, ax=ax
    )
    assert display.ax_ is ax and display.figure_ is fig
    # The numbers: transfer_report at every k_shot, run independently.
    for i, k in enumerate(K_SHOTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = transfer_report(
                est, new, k_shot=k, train_tasks=train, random_state=0
            )
        assert display.scores[i] == pytest.approx(report.adapted.mean(), abs=1e-12)
        for name, scores in report.baselines.items():
            assert display.baseline_scores[name][i] == pytest.approx(
                scores.mean(), abs=1e-12
            )
        result = few_shot_score(est, new, k_shot=k, random_state=0)
        np.testing.assert_allclose(display.ci95[i], result.ci95, rtol=1e-12)
    # The plotted data are those numbers.
    np.testing.assert_array_equal(display.line_.get_xdata(), K_SHOTS)
    np.testing.assert_allclose(display.line_.get_ydata(), display.scores)
    assert list(display.baseline_lines_) == [
        "support set only",
        "pooled",
        "pooled + shrunk offset",
    ]
    for name, line in display.baseline_lines_.items():
        np.testing.assert_allclose(line.get_ydata(), display.baseline_scores[name])
    band = display.band_.get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(display.ci95[:, 0].min())
    assert band[:, 1].max() == pytest.approx(display.ci95[:, 1].max())
    assert ax.get_xlabel() == "labelled rows per task (k_shot)"
    assert ax.get_ylabel() == "R² on the other rows"
    assert len(display.reports) == len(K_SHOTS)


@pytest.mark.slow
def test_few_shot_curve_of_a_pipeline_classifier_and_plot_on_new_axes():
    X, y, t = make_related_classification_tasks(
        n_tasks=26, n_samples=40, n_features=4, random_state=0
    )
    new = (X[t >= 20], y[t >= 20], t[t >= 20])
    X, y, t = X[t < 20], y[t < 20], t[t < 20]
    pipe = make_pipeline(StandardScaler(), MetaRidgeClassifier(k_shot=2, **FAST))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(X, y, task_ids=t)
    display = FewShotCurveDisplay.from_estimator(
        pipe, new, k_shots=[1, 3], random_state=0, metric="balanced_accuracy"
    )
    assert display.estimator_name == "MetaRidgeClassifier"
    assert list(display.baseline_scores) == ["support set only"]
    report = transfer_report(
        pipe, new, k_shot=3, random_state=0, metric="balanced_accuracy"
    )
    assert display.scores[1] == pytest.approx(report.adapted.mean(), abs=1e-12)
    assert display.ax_.get_ylabel() == "balanced_accuracy on the other rows"
    assert display.ax_.get_xlabel() == "labelled rows per class (k_shot)"
    # plot() again, on other axes, from the same numbers.
    _, ax = plt.subplots()
    assert display.plot(ax=ax, name="mine").ax_ is ax
    assert display.line_.get_label() == "mine"
    np.testing.assert_allclose(display.line_.get_ydata(), display.scores)


def test_history_display_plots_every_loss_and_score():
    X, y, t = make_related_regression_tasks(n_tasks=20, n_samples=20, random_state=0)
    est = MAMLRegressor(
        hidden_layer_sizes=(16,), max_iter=40, early_stopping=True, random_state=0
    ).fit(X, y, task_ids=t)
    fig, ax = plt.subplots()
    display = TrainingHistoryDisplay.from_estimator(est, ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert list(display.losses) == ["train_loss", "valid_loss"]
    assert list(display.scores) == ["valid_score"]
    np.testing.assert_array_equal(display.epochs, est.history_[:, "epoch"])
    for name in ("train_loss", "valid_loss", "valid_score"):
        np.testing.assert_allclose(
            display.lines_[name].get_ydata(), est.history_[:, name]
        )
    assert display.lines_["valid_score"].axes is display.score_ax_
    assert display.lines_["train_loss"].axes is ax


def test_history_display_of_the_closed_form_family_and_refusals(regression):
    est = regression[0]
    display = TrainingHistoryDisplay.from_estimator(make_pipeline(est))
    assert list(display.losses) == [
        "train_loss",
        "valid_loss_learned",
        "valid_loss_linear",
    ]
    assert display.score_ax_ is None
    np.testing.assert_allclose(
        display.lines_["valid_loss_learned"].get_ydata(),
        est.history_[:, "valid_loss_learned"],
    )
    with pytest.raises(TypeError, match="no training history"):
        TrainingHistoryDisplay.from_estimator(SupportSetRegressor())


def test_without_matplotlib_plot_says_what_is_missing(regression, monkeypatch):
    est = regression[0]
    display = TrainingHistoryDisplay.from_estimator(est)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="requires matplotlib"):
        display.plot()
    curve = FewShotCurveDisplay(k_shots=[1], scores=[0.5], ci95=[[0.4, 0.6]])
    with pytest.raises(ImportError, match="requires matplotlib"):
        curve.plot()
