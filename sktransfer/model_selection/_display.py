"""Plots of few-shot performance and of meta-training, as scikit-learn's displays."""

import warnings

import numpy as np
from scipy import stats
from sklearn.base import is_classifier

from sktransfer._adapt import adaptation_path
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.model_selection._transfer import prepare_baselines, transfer_report


def _pyplot(caller):
    """matplotlib's pyplot, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed: "
            "pip install matplotlib."
        ) from exc
    return plt


def _mean_ci95(per_task):
    """Mean over tasks and its Student's t 95% interval (NaN for one task)."""
    mean = float(np.mean(per_task))
    if len(per_task) < 2:
        return mean, (np.nan, np.nan)
    half = stats.t.ppf(0.975, len(per_task) - 1) * stats.sem(per_task)
    return mean, (mean - half, mean + half)


class FewShotCurveDisplay:
    """Few-shot score against the number of labelled rows, beside baselines.

    The question every user of a transfer model asks: from how many labelled
    rows of a new task on does meta-training pay, and against what? Build it
    with `from_estimator`, which runs
    `~sktransfer.model_selection.transfer_report` at every ``k_shot``; the
    constructor takes numbers computed elsewhere.

    Parameters
    ----------
    k_shots : array-like of shape (n_k,)
        Labelled (support) rows per class for classifiers, per task for
        regressors.
    scores : array-like of shape (n_k,)
        Mean over tasks of the adapted estimator's score at each ``k_shot``.
    ci95 : array-like of shape (n_k, 2)
        95% confidence interval of each mean (Student's t over tasks).
    baseline_scores : dict of str to array-like of shape (n_k,), default=None
        Mean score of each baseline at each ``k_shot``, on the same splits.
    metric : str, default="score"
        What the scores are (greater is better); the y-axis label.
    estimator_name : str, default=None
        Legend label of the adapted estimator.
    per_class : bool, default=False
        Whether ``k_shots`` count rows per class (the x-axis label says so).
    reports : list of TransferReport, default=None
        The report at each ``k_shot``, with the per-task scores.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The adapted estimator's mean scores.
    band_ : matplotlib PolyCollection or None
        Its 95% confidence band (None without a finite interval).
    baseline_lines_ : dict of str to matplotlib Line2D
        The baselines' mean scores.
    ax_ : matplotlib Axes
        The axes of the plot.
    figure_ : matplotlib Figure
        The figure of the plot.

    See Also
    --------
    sktransfer.model_selection.transfer_report : The numbers at one ``k_shot``.
    TrainingHistoryDisplay : Losses and scores during meta-training.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktransfer import FewShotCurveDisplay, MetaRidgeRegressor
    >>> from sktransfer.datasets import make_related_regression_tasks
    >>> X, y, t = make_related_regression_tasks(n_tasks=50, random_state=0)
    >>> train = (X[t < 40], y[t < 40], t[t < 40])
    >>> new = (X[t >= 40], y[t >= 40], t[t >= 40])
    >>> est = MetaRidgeRegressor(max_iter=50, random_state=0).fit(*train)
    >>> display = FewShotCurveDisplay.from_estimator(
    ...     est, new, k_shots=[2, 5, 10], train_tasks=train, random_state=0
    ... )
    >>> display.scores.shape
    (3,)
    >>> sorted(display.baseline_scores)
    ['pooled', 'pooled + shrunk offset', 'support set only']
    """

    def __init__(
        self,
        *,
        k_shots,
        scores,
        ci95,
        baseline_scores=None,
        metric="score",
        estimator_name=None,
        per_class=False,
        reports=None,
    ):
        self.k_shots = np.asarray(k_shots)
        self.scores = np.asarray(scores, dtype=float)
        self.ci95 = np.asarray(ci95, dtype=float).reshape(len(self.k_shots), 2)
        self.baseline_scores = {
            name: np.asarray(values, dtype=float)
            for name, values in (baseline_scores or {}).items()
        }
        self.metric = metric
        self.estimator_name = estimator_name
        self.per_class = per_class
        self.reports = reports

    @classmethod
    def from_estimator(
        cls,
        estimator,
        tasks,
        *,
        k_shots=(1, 2, 5, 10, 20),
        baselines=None,
        train_tasks=None,
        n_query=None,
        n_episodes=1,
        random_state=None,
        metric=None,
        support="balanced",
        ax=None,
        name=None,
    ):
        """Measure and plot the few-shot curve of a fitted estimator.

        At every ``k_shot``, `~sktransfer.model_selection.transfer_report`
        adapts the estimator and every baseline to the same seeded support
        rows of every task and scores them on the same query rows. The
        baselines are fitted once (on ``train_tasks``), not at every
        ``k_shot``. No `~sktransfer.exceptions.NegativeTransferWarning` is
        raised: the plot shows where a baseline wins.

        Parameters
        ----------
        estimator : estimator
            A fitted sktransfer estimator, or a `~sklearn.pipeline.Pipeline`,
            `~sklearn.compose.TransformedTargetRegressor` or fitted search
            object around one (see `sktransfer.adapt`). It is left as it was.
        tasks : sequence of (X, y) pairs, TaskSet or tuple (X, y, task_ids)
            The new tasks; every task needs more than ``max(k_shots)`` rows
            (per class for classifiers).
        k_shots : array-like of int, default=(1, 2, 5, 10, 20)
            Labelled rows per class (classifiers) or per task (regressors),
            measured in increasing order; a duplicate is measured once, with
            a warning (as ``train_sizes`` of
            `~sklearn.model_selection.learning_curve`).
        baselines : dict of str to estimator, default=None
            As in `~sktransfer.model_selection.transfer_report`; ``None`` is
            `~sktransfer.model_selection.default_baselines`.
        train_tasks : sequence of (X, y) pairs, TaskSet or tuple \
                (X, y, task_ids), default=None
            The tasks the estimator was trained on, to fit the pooled
            baselines.
        n_query : int, default=None
            Query rows per class (or per task); ``None`` scores all other rows.
        n_episodes : int, default=1
            Episodes per task at every ``k_shot``.
        random_state : int, RandomState instance or None, default=None
            Seeds the splits.
        metric : str or callable, default=None
            As in `~sktransfer.model_selection.transfer_report`: ``None`` is
            accuracy or R².
        support : {"balanced", "stratified", "random"}, default="balanced"
            How a classifier's support rows follow the task's classes, as in
            `~sktransfer.model_selection.few_shot_score`.
        ax : matplotlib Axes, default=None
            Axes to plot on; ``None`` makes a new figure.
        name : str, default=None
            Legend label of the estimator; ``None`` is its class name.

        Returns
        -------
        display : FewShotCurveDisplay
            The measured numbers and the plot.
        """
        k_shots = np.asarray(k_shots)
        # Integers only, as transfer_report's k_shot: a float such as 2.5
        # would be measured at int(2.5) and plotted at 2.5.
        if k_shots.ndim != 1 or len(k_shots) == 0 or k_shots.dtype.kind not in "iu":
            raise ValueError(f"k_shots must be a 1-D list of ints, got {k_shots!r}.")
        # Measured in increasing order, each once, as sklearn's learning_curve
        # treats train_sizes: the curve is drawn from left to right.
        if len(np.unique(k_shots)) < len(k_shots):
            warnings.warn(
                f"Removed duplicate entries from k_shots {k_shots.tolist()}: each "
                "is measured once.",
                UserWarning,
                stacklevel=2,
            )
        k_shots = np.unique(k_shots)
        baselines = prepare_baselines(estimator, baselines, train_tasks)
        reports = []
        for k_shot in k_shots:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NegativeTransferWarning)
                reports.append(
                    transfer_report(
                        estimator,
                        tasks,
                        k_shot=int(k_shot),
                        baselines=baselines,
                        n_query=n_query,
                        n_episodes=n_episodes,
                        random_state=random_state,
                        metric=metric,
                        support=support,
                    )
                )
        means = [_mean_ci95(report.adapted) for report in reports]
        display = cls(
            k_shots=k_shots,
            scores=[mean for mean, _ in means],
            ci95=[ci for _, ci in means],
            baseline_scores={
                name_: [report.baselines[name_].mean() for report in reports]
                for name_ in baselines
            },
            metric=reports[0].metric,
            estimator_name=name or type(adaptation_path(estimator).estimator).__name__,
            per_class=is_classifier(estimator),
            reports=reports,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None, *, name=None):
        """Plot the curve: the estimator with its 95% band, and the baselines.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; ``None`` makes a new figure.
        name : str, default=None
            Legend label of the estimator; ``None`` is ``estimator_name``.

        Returns
        -------
        display : FewShotCurveDisplay
            With ``line_``, ``band_``, ``baseline_lines_``, ``ax_`` and
            ``figure_`` set.
        """
        plt = _pyplot("FewShotCurveDisplay.plot")
        if ax is None:
            _, ax = plt.subplots()
        label = name or self.estimator_name or "adapted estimator"
        (self.line_,) = ax.plot(self.k_shots, self.scores, marker="o", label=label)
        self.band_ = None
        if np.isfinite(self.ci95).all():
            self.band_ = ax.fill_between(
                self.k_shots,
                self.ci95[:, 0],
                self.ci95[:, 1],
                color=self.line_.get_color(),
                alpha=0.2,
                label=f"{label}, 95% CI",
            )
        self.baseline_lines_ = {
            baseline: ax.plot(
                self.k_shots, scores, marker=".", linestyle="--", label=baseline
            )[0]
            for baseline, scores in self.baseline_scores.items()
        }
        if len(self.k_shots) > 1 and self.k_shots.min() > 0:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(self.k_shots, labels=[str(k) for k in self.k_shots])
        unit = "per class" if self.per_class else "per task"
        ax.set_xlabel(f"labelled rows {unit} (k_shot)")
        ax.set_ylabel(f"{self.metric} on the other rows")
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _history_columns(history):
    """Loss and score columns of a skorch history, in order of appearance."""
    names = []
    for row in history:
        names.extend(key for key in row if key not in names)
    losses = [n for n in names if "loss" in n and not n.endswith("_best")]
    scores = [
        n
        for n in names
        if ("score" in n or "acc" in n) and "loss" not in n and not n.endswith("_best")
    ]
    return losses, scores


class TrainingHistoryDisplay:
    """Training and validation losses and scores per epoch of a fitted estimator.

    Plots what the estimator's ``history_`` (skorch's ``History``, one row
    per epoch) recorded: every loss (``train_loss``, ``valid_loss``, the
    closed-form family's ``valid_loss_<kind>`` of each model kind) on the
    axes, and every score (``valid_score``, ...) on a second y-axis that
    shares the epochs. Build it with `from_estimator`.

    Parameters
    ----------
    epochs : array-like of shape (n_epochs,)
        The epoch numbers.
    losses : dict of str to array-like of shape (n_epochs,)
        Each loss per epoch (NaN where it was not recorded).
    scores : dict of str to array-like of shape (n_epochs,), default=None
        Each score per epoch (NaN where it was not recorded).
    estimator_name : str, default=None
        The title of the plot.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        One line per loss and score.
    ax_ : matplotlib Axes
        The axes of the losses.
    score_ax_ : matplotlib Axes or None
        The twin axes of the scores, None when there are none.
    figure_ : matplotlib Figure
        The figure of the plot.

    See Also
    --------
    FewShotCurveDisplay : Few-shot score against the number of labelled rows.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktransfer import MAMLRegressor, TrainingHistoryDisplay
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=50, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> display = TrainingHistoryDisplay.from_estimator(est)
    >>> list(display.losses)
    ['train_loss']
    """

    def __init__(self, *, epochs, losses, scores=None, estimator_name=None):
        self.epochs = np.asarray(epochs)
        self.losses = {n: np.asarray(v, dtype=float) for n, v in losses.items()}
        self.scores = {n: np.asarray(v, dtype=float) for n, v in (scores or {}).items()}
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None):
        """Plot the training history of a fitted estimator.

        Parameters
        ----------
        estimator : estimator
            A fitted sktransfer estimator with ``history_`` (the meta-learners
            and fine-tuners), or a `~sklearn.pipeline.Pipeline`,
            `~sklearn.compose.TransformedTargetRegressor` or fitted search
            object around one.
        ax : matplotlib Axes, default=None
            Axes to plot on; ``None`` makes a new figure.
        name : str, default=None
            Title of the plot; ``None`` is the estimator's class name.

        Returns
        -------
        display : TrainingHistoryDisplay
            The recorded numbers and the plot.
        """
        inner = adaptation_path(estimator).estimator
        try:
            history = inner.history_
        except AttributeError:
            raise TypeError(
                f"{type(inner).__name__} has no training history (history_): "
                "fit a meta-learner or fine-tuner first."
            ) from None
        losses, scores = _history_columns(history)

        def column(key):
            return [row.get(key, np.nan) for row in history]

        display = cls(
            epochs=column("epoch"),
            losses={key: column(key) for key in losses},
            scores={key: column(key) for key in scores},
            estimator_name=name or type(inner).__name__,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Plot the losses, and the scores on a second y-axis.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot the losses on; ``None`` makes a new figure.

        Returns
        -------
        display : TrainingHistoryDisplay
            With ``lines_``, ``ax_``, ``score_ax_`` and ``figure_`` set.
        """
        plt = _pyplot("TrainingHistoryDisplay.plot")
        if ax is None:
            _, ax = plt.subplots()
        self.lines_ = {}
        for name, values in self.losses.items():
            (self.lines_[name],) = ax.plot(self.epochs, values, marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self.score_ax_ = None
        if self.scores:
            self.score_ax_ = ax.twinx()
            for i, (name, values) in enumerate(self.scores.items()):
                color = f"C{len(self.losses) + i}"
                (self.lines_[name],) = self.score_ax_.plot(
                    self.epochs,
                    values,
                    marker=".",
                    linestyle="--",
                    color=color,
                    label=name,
                )
            self.score_ax_.set_ylabel("score")
        lines = list(self.lines_.values())
        ax.legend(lines, [line.get_label() for line in lines])
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        self.ax_, self.figure_ = ax, ax.figure
        return self
