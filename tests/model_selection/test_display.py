"""The few-shot curve and the training history, plotted as scikit-learn does."""

import os
import re
import sys
import warnings

import numpy as np
import pytest
import sklearn
from scipy import stats
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import EpochScoring

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from sktransfer import (  # noqa: E402
    FewShotCurveDisplay,
    FineTuneClassifier,
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
from sktransfer.exceptions import NegativeTransferWarning  # noqa: E402

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


@pytest.fixture(scope="module")
def classification():
    X, y, t = make_related_classification_tasks(
        n_tasks=16, n_samples=30, n_features=4, random_state=0
    )
    est = MetaRidgeClassifier(k_shot=2, **FAST)
    est.fit(X[t < 12], y[t < 12], task_ids=t[t < 12])
    return est, (X[t >= 12], y[t >= 12], t[t >= 12])


def _accuracy(net, X, y):
    """Accuracy of the trainer's logits, as a skorch scoring callable."""
    return float(np.mean(net.predict(X).argmax(1) == y))


def _error_rate(net, X, y):
    """One minus the accuracy: a loss, lower is better."""
    return 1.0 - _accuracy(net, X, y)


@pytest.fixture(scope="module")
def fine_tuned():
    """A fine-tuner whose history holds user callbacks' scores and a loss."""
    X, y, _ = make_related_classification_tasks(
        n_tasks=4, n_samples=30, n_features=4, random_state=0
    )
    callbacks = [
        ("acc", EpochScoring(_accuracy, name="valid_acc", lower_is_better=False)),
        ("train_acc", EpochScoring(_accuracy, name="train_acc", on_train=True)),
        # An error rate is a loss, though its name says accuracy.
        ("error", EpochScoring(_error_rate, name="valid_acc_loss")),
    ]
    return FineTuneClassifier(
        hidden_layer_sizes=(8,),
        max_iter=4,
        early_stopping=True,
        random_state=0,
        callbacks=callbacks,
    ).fit(X, y)


def _quiet_report(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeTransferWarning)
        return transfer_report(*args, **kwargs)


def _t_interval(per_task):
    """Mean and Student-t 95% interval over tasks, written out with scipy."""
    per_task = np.asarray(per_task)
    mean = per_task.mean()
    half = stats.t.ppf(0.975, len(per_task) - 1) * stats.sem(per_task)
    return mean, np.array([mean - half, mean + half])


def _band_limits(band, k_shots):
    """Lowest and highest y of the shaded band at each k_shot."""
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    return np.array(
        [
            [
                vertices[vertices[:, 0] == k, 1].min(),
                vertices[vertices[:, 0] == k, 1].max(),
            ]
            for k in k_shots
        ]
    )


def _legend(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _missing_pyplot(caller):
    return re.escape(
        f"{caller} requires matplotlib, which is not installed: pip install matplotlib."
    )


# -- FewShotCurveDisplay.from_estimator --------------------------------------


def test_few_shot_curve_plots_the_scores_of_transfer_report(regression):
    est, train, new = regression
    fig, ax = plt.subplots()
    display = FewShotCurveDisplay.from_estimator(
        est, new, k_shots=K_SHOTS, train_tasks=train, random_state=0, ax=ax
    )
    assert display.ax_ is ax and display.figure_ is fig
    # The numbers: transfer_report at every k_shot, run independently, and the
    # band the Student-t interval of its per-task scores.
    expected_ci = []
    for i, k in enumerate(K_SHOTS):
        report = _quiet_report(est, new, k_shot=k, train_tasks=train, random_state=0)
        mean, interval = _t_interval(report.adapted)
        assert display.scores[i] == pytest.approx(mean, abs=1e-12)
        np.testing.assert_allclose(display.ci95[i], interval, rtol=1e-10)
        expected_ci.append(interval)
        for name, scores in report.baselines.items():
            assert display.baseline_scores[name][i] == pytest.approx(
                scores.mean(), abs=1e-12
            )
        result = few_shot_score(est, new, k_shot=k, random_state=0)
        np.testing.assert_allclose(display.ci95[i], result.ci95, rtol=1e-12)
        np.testing.assert_allclose(display.reports[i].adapted, report.adapted)
    # The plotted data are those numbers.
    np.testing.assert_array_equal(display.line_.get_xdata(), K_SHOTS)
    np.testing.assert_allclose(display.line_.get_ydata(), display.scores)
    np.testing.assert_allclose(_band_limits(display.band_, K_SHOTS), expected_ci)
    assert list(display.baseline_lines_) == [
        "support set only",
        "pooled",
        "pooled + shrunk offset",
    ]
    for name, line in display.baseline_lines_.items():
        np.testing.assert_array_equal(line.get_xdata(), K_SHOTS)
        np.testing.assert_allclose(line.get_ydata(), display.baseline_scores[name])
        assert line.axes is ax
    # The estimator's class name labels its line and band; the axes name the
    # metric and what k_shot counts.
    assert display.estimator_name == "MetaRidgeRegressor"
    assert sorted(_legend(ax)) == sorted(
        [
            "MetaRidgeRegressor",
            "MetaRidgeRegressor, 95% CI",
            "support set only",
            "pooled",
            "pooled + shrunk offset",
        ]
    )
    assert ax.get_xlabel() == "labelled rows per task (k_shot)"
    assert ax.get_ylabel() == "R² on the other rows"
    assert display.metric == "R²"
    assert len(display.reports) == len(K_SHOTS)


def test_few_shot_curve_band_over_two_tasks_and_none_for_one(regression):
    est, _, new = regression
    X, y, t = new
    two = t <= 31
    display = FewShotCurveDisplay.from_estimator(
        est, (X[two], y[two], t[two]), k_shots=[5], random_state=0
    )
    report = _quiet_report(est, (X[two], y[two], t[two]), k_shot=5, random_state=0)
    assert report.adapted.shape == (2,)
    mean, interval = _t_interval(report.adapted)  # t with one degree of freedom
    assert display.scores == pytest.approx([mean])
    np.testing.assert_allclose(display.ci95, [interval], rtol=1e-10)
    np.testing.assert_allclose(_band_limits(display.band_, [5]), [interval])
    # One task has no interval: no band, the line alone in the legend.
    one = t == 30
    display = FewShotCurveDisplay.from_estimator(
        est, (X[one], y[one], t[one]), k_shots=[5], random_state=0, name="mine"
    )
    assert np.isnan(display.ci95).all()
    assert display.band_ is None
    assert _legend(display.ax_) == ["mine", "support set only"]
    np.testing.assert_array_equal(display.line_.get_xdata(), [5])


def test_few_shot_curve_passes_its_settings_to_transfer_report(regression):
    est, train, new = regression
    settings = dict(
        baselines={"support ridge": SupportSetRegressor()},
        n_query=3,
        n_episodes=2,
        metric="neg_mean_absolute_error",
        random_state=0,
    )
    display = FewShotCurveDisplay.from_estimator(
        est, new, k_shots=[2, 5], train_tasks=train, name="meta ridge", **settings
    )
    for i, k in enumerate([2, 5]):
        report = _quiet_report(est, new, k_shot=k, train_tasks=train, **settings)
        assert display.scores[i] == pytest.approx(report.adapted.mean(), abs=1e-12)
        assert display.baseline_scores["support ridge"][i] == pytest.approx(
            report.baselines["support ridge"].mean(), abs=1e-12
        )
    assert list(display.baseline_scores) == ["support ridge"]
    assert display.ax_.get_ylabel() == "neg_mean_absolute_error on the other rows"
    assert display.estimator_name == "meta ridge"
    assert display.line_.get_label() == "meta ridge"
    assert sorted(_legend(display.ax_)) == [
        "meta ridge",
        "meta ridge, 95% CI",
        "support ridge",
    ]


def test_few_shot_curve_of_a_classifier_counts_rows_per_class(classification):
    est, new = classification
    display = FewShotCurveDisplay.from_estimator(
        est, new, k_shots=[1, 3], random_state=0, support="random"
    )
    # The support rule reaches transfer_report ("random" draws other rows
    # than the default "balanced" on these tasks).
    for i, k in enumerate([1, 3]):
        report = _quiet_report(est, new, k_shot=k, random_state=0, support="random")
        assert display.scores[i] == pytest.approx(report.adapted.mean(), abs=1e-12)
    balanced = _quiet_report(est, new, k_shot=3, random_state=0)
    assert display.scores[1] != pytest.approx(balanced.adapted.mean())
    assert display.per_class is True
    assert display.estimator_name == "MetaRidgeClassifier"
    assert display.ax_.get_xlabel() == "labelled rows per class (k_shot)"
    assert display.ax_.get_ylabel() == "accuracy on the other rows"


@pytest.mark.parametrize("k_shots", [[], [[1, 2], [3, 4]], 5])
def test_few_shot_curve_refuses_k_shots_that_are_not_a_list(regression, k_shots):
    est, _, new = regression
    with pytest.raises(ValueError, match=r"k_shots must be a 1-D list of ints, got"):
        FewShotCurveDisplay.from_estimator(est, new, k_shots=k_shots)


def test_few_shot_curve_refuses_an_estimator_not_fitted(regression):
    _, _, new = regression
    with pytest.raises(NotFittedError, match="MetaRidgeRegressor .*not fitted"):
        FewShotCurveDisplay.from_estimator(MetaRidgeRegressor(), new, k_shots=[2])


def test_few_shot_curve_silences_negative_transfer_only(regression):
    est, train, new = regression
    # transfer_report warns of negative transfer on these tasks at k_shot=2 ...
    with pytest.warns(NegativeTransferWarning):
        transfer_report(est, new, k_shot=2, train_tasks=train, random_state=0)
    # ... the curve does not (it shows where a baseline wins), but says that a
    # task too short for k_shot=10 is left out there.
    X, y, t = new
    keep = (t != 31) | (np.cumsum(t == 31) <= 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FewShotCurveDisplay.from_estimator(
            est,
            (X[keep], y[keep], t[keep]),
            k_shots=[2, 10],
            train_tasks=train,
            random_state=0,
        )
    assert [w.category for w in caught] == [UserWarning]
    assert "1 of 8 tasks cannot give k_shot=10 support rows" in str(caught[0].message)


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


def test_few_shot_curve_measures_k_shots_in_order_and_once(regression):
    # Unsorted k_shots drew a zigzag and a duplicate was measured twice: as
    # sklearn's learning_curve does with train_sizes, they are sorted, and a
    # duplicate is dropped with a warning.
    est, _, new = regression
    in_order = FewShotCurveDisplay.from_estimator(
        est, new, k_shots=[2, 4], random_state=0
    )
    with pytest.warns(
        UserWarning,
        match=r"^Removed duplicate entries from k_shots \[4, 2, 4\]: each is "
        r"measured once\.$",
    ) as record:
        display = FewShotCurveDisplay.from_estimator(
            est, new, k_shots=[4, 2, 4], random_state=0
        )
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutation adds a frame
        assert record[0].filename == __file__
    np.testing.assert_array_equal(display.k_shots, [2, 4])
    np.testing.assert_array_equal(display.scores, in_order.scores)
    np.testing.assert_array_equal(display.line_.get_xdata(), [2, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        unsorted = FewShotCurveDisplay.from_estimator(
            est, new, k_shots=[4, 2], random_state=0
        )
    np.testing.assert_array_equal(unsorted.scores, in_order.scores)


def test_few_shot_curve_refuses_k_shots_that_are_not_integers(regression):
    """A k_shot of 2.5 was measured at int(2.5) == 2 and plotted at 2.5."""
    est, _, new = regression
    for k_shots in ([2.5, 5], [2.0, 5.0], ["2", "5"]):
        with pytest.raises(ValueError, match="k_shots must be a 1-D list of ints"):
            FewShotCurveDisplay.from_estimator(est, new, k_shots=k_shots)


# -- FewShotCurveDisplay from numbers computed elsewhere ---------------------

CURVE = dict(
    k_shots=[1, 2, 4],
    scores=[0.5, 0.6, 0.7],
    ci95=[[0.4, 0.6], [0.5, 0.7], [0.6, 0.8]],
    baseline_scores={"pooled": [0.1, 0.2, 0.3], "support set only": [0.2, 0.3, 0.4]},
)


def test_curve_plot_defaults_on_a_new_figure():
    fig, _ = plt.subplots()
    display = FewShotCurveDisplay(**CURVE).plot()
    assert display.figure_ is not fig
    assert display.ax_ in display.figure_.axes
    assert display.line_.axes is display.ax_
    assert display.ax_.get_xlabel() == "labelled rows per task (k_shot)"
    assert display.ax_.get_ylabel() == "score on the other rows"
    assert _legend(display.ax_) == [
        "adapted estimator",
        "adapted estimator, 95% CI",
        "pooled",
        "support set only",
    ]
    # The band takes the line's colour, see-through; the line is solid with
    # round markers, the baselines dashed with dots, each its own colour.
    assert to_hex(display.band_.get_facecolor()[0]) == to_hex(display.line_.get_color())
    assert 0 < display.band_.get_alpha() < 1
    assert display.line_.get_marker() == "o"
    assert display.line_.get_linestyle() == "-"
    colours = {to_hex(display.line_.get_color())}
    for name, line in display.baseline_lines_.items():
        assert line.get_label() == name
        assert line.get_marker() == "."
        assert line.get_linestyle() == "--"
        np.testing.assert_array_equal(line.get_xdata(), CURVE["k_shots"])
        np.testing.assert_allclose(line.get_ydata(), CURVE["baseline_scores"][name])
        colours.add(to_hex(line.get_color()))
    assert len(colours) == 3
    np.testing.assert_allclose(_band_limits(display.band_, [1, 2, 4]), CURVE["ci95"])


def test_curve_plot_on_given_axes_with_a_name_metric_and_per_class():
    display = FewShotCurveDisplay(
        **CURVE, metric="balanced accuracy", estimator_name="MAML", per_class=True
    )
    fig, ax = plt.subplots()
    assert display.plot(ax=ax) is display
    assert display.ax_ is ax and display.figure_ is fig
    assert display.line_.get_label() == "MAML"
    assert "MAML, 95% CI" in _legend(ax)
    assert ax.get_xlabel() == "labelled rows per class (k_shot)"
    assert ax.get_ylabel() == "balanced accuracy on the other rows"
    _, other = plt.subplots()
    display.plot(ax=other, name="mine")
    assert display.ax_ is other and display.line_.axes is other
    assert _legend(other)[:2] == ["mine", "mine, 95% CI"]
    assert _legend(ax)[0] == "MAML"
    # A second curve on the same axes: its own colour, its band in it.
    second = FewShotCurveDisplay(**CURVE, estimator_name="ProtoNet").plot(ax=ax)
    colour = to_hex(second.line_.get_color())
    assert colour != to_hex(ax.get_lines()[0].get_color())
    assert to_hex(second.band_.get_facecolor()[0]) == colour
    assert "ProtoNet, 95% CI" in _legend(ax)


def test_curve_missing_numbers_are_nan_a_gap_without_band():
    display = FewShotCurveDisplay(
        k_shots=[1, 2, 4],
        scores=[0.5, None, 0.7],
        ci95=[[0.4, 0.6], [None, None], [0.6, 0.8]],
        baseline_scores={"pooled": [0.1, None, 0.3]},
    )
    np.testing.assert_array_equal(display.scores, [0.5, np.nan, 0.7])
    np.testing.assert_array_equal(display.ci95[1], [np.nan, np.nan])
    np.testing.assert_array_equal(display.baseline_scores["pooled"], [0.1, np.nan, 0.3])
    display.plot()
    assert display.band_ is None
    assert _legend(display.ax_) == ["adapted estimator", "pooled"]


@pytest.mark.parametrize(
    "k_shots, scale",
    [([1, 5], "log"), ([2, 5, 10], "log"), ([0, 5], "linear"), ([5], "linear")],
)
def test_curve_x_axis_is_logarithmic_from_one_row_on(k_shots, scale):
    n = len(k_shots)
    display = FewShotCurveDisplay(
        k_shots=k_shots, scores=np.linspace(0.5, 0.7, n), ci95=np.full((n, 2), np.nan)
    ).plot()
    assert display.ax_.get_xscale() == scale
    # One tick at each k_shot, labelled with it (not 10^0 and the like).
    display.figure_.canvas.draw()
    np.testing.assert_array_equal(display.ax_.get_xticks(), k_shots)
    labels = [label.get_text() for label in display.ax_.get_xticklabels()]
    assert labels == [str(k) for k in k_shots]


def test_curve_plot_without_matplotlib_names_the_caller(monkeypatch):
    curve = FewShotCurveDisplay(k_shots=[1], scores=[0.5], ci95=[[0.4, 0.6]])
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=_missing_pyplot("FewShotCurveDisplay.plot")):
        curve.plot()


# -- TrainingHistoryDisplay ---------------------------------------------------


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
    epochs = est.history_[:, "epoch"]
    np.testing.assert_array_equal(display.epochs, epochs)
    for name in ("train_loss", "valid_loss", "valid_score"):
        np.testing.assert_array_equal(display.lines_[name].get_xdata(), epochs)
        np.testing.assert_allclose(
            display.lines_[name].get_ydata(), est.history_[:, name]
        )
        assert display.lines_[name].get_label() == name
    assert display.lines_["valid_score"].axes is display.score_ax_
    assert display.lines_["train_loss"].axes is ax
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss"
    assert display.score_ax_.get_ylabel() == "score"
    assert ax.get_title() == "MAMLRegressor"
    assert _legend(ax) == ["train_loss", "valid_loss", "valid_score"]


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
    # The adapting estimator's name, not the pipeline's; a new figure.
    assert display.ax_.get_title() == "MetaRidgeRegressor"
    assert display.figure_ is display.ax_.figure
    for unfit in (SupportSetRegressor(), MAMLRegressor()):
        name = type(unfit).__name__
        message = re.escape(
            f"{name} has no training history (history_): fit a meta-learner or "
            "fine-tuner first."
        )
        with pytest.raises(TypeError, match=message):
            TrainingHistoryDisplay.from_estimator(unfit)


def test_history_display_of_a_fine_tuner_and_its_callbacks(fine_tuned):
    display = TrainingHistoryDisplay.from_estimator(fine_tuned, name="pre-training")
    # skorch's *_best flags are no curves; an error rate named "..._acc_loss"
    # is a loss, not also a score.
    assert list(display.losses) == ["train_loss", "valid_loss", "valid_acc_loss"]
    assert list(display.scores) == ["valid_acc", "train_acc"]
    history = fine_tuned.history_
    for name, line in display.lines_.items():
        np.testing.assert_array_equal(line.get_xdata(), history[:, "epoch"])
        np.testing.assert_allclose(line.get_ydata(), history[:, name])
        is_score = name in display.scores
        assert line.axes is (display.score_ax_ if is_score else display.ax_)
        assert line.get_marker() == "."
        assert line.get_linestyle() == ("--" if is_score else "-")
    # Scores, on their own axes, do not reuse the losses' colours.
    colours = {to_hex(line.get_color()) for line in display.lines_.values()}
    assert len(colours) == 5
    assert _legend(display.ax_) == list(display.lines_)
    assert display.ax_.get_title() == "pre-training"


def test_history_display_from_numbers_missing_ones_nan():
    display = TrainingHistoryDisplay(
        epochs=[1, 2, 3],
        losses={"train_loss": [1.0, 0.5, None]},
        scores={"valid_score": [None, 0.2, 0.3]},
        estimator_name="my model",
    )
    np.testing.assert_array_equal(display.losses["train_loss"], [1.0, 0.5, np.nan])
    np.testing.assert_array_equal(display.scores["valid_score"], [np.nan, 0.2, 0.3])
    display.plot()
    assert display.ax_.get_title() == "my model"
    np.testing.assert_array_equal(display.lines_["train_loss"].get_xdata(), [1, 2, 3])
    untitled = TrainingHistoryDisplay(
        epochs=[1, 2], losses={"train_loss": [1.0, 0.5]}
    ).plot()
    assert untitled.ax_.get_title() == ""
    assert untitled.score_ax_ is None


def test_without_matplotlib_plot_says_what_is_missing(regression, monkeypatch):
    est = regression[0]
    display = TrainingHistoryDisplay.from_estimator(est)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(
        ImportError, match=_missing_pyplot("TrainingHistoryDisplay.plot")
    ):
        display.plot()
