"""Behaviour of MetaRidgeRegressor / MetaRidgeClassifier that users rely on.

The learning tests meta-train on some tasks of a family and compare, on new
tasks of the same family, the adapted model with the unadapted prior and with
a model fitted on the support rows alone (sklearn's `Ridge`, or
`NearestCentroid` on the raw features). The hyper-parameters were checked by
hand with ``random_state`` 0, 1 and 2 (figures in the comments); the tests fix
one seed.
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_predict
from sklearn.neighbors import NearestCentroid
from skorch.callbacks import Callback

from sktransfer import MetaRidgeClassifier, MetaRidgeRegressor, TaskSet, few_shot_score
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.meta._closed_form import random_intercept
from sktransfer.meta._engine import clearly_better, within_noise
from sktransfer.model_selection._few_shot import draw_episodes

FAST = dict(hidden_layer_sizes=(8,), n_components=4, max_iter=30, random_state=0)
EPOCH = 50  # meta-iterations of one epoch for a few dozen tasks


# -- task families ---------------------------------------------------------------
def linear_tasks(n_tasks, n_rows, seed, noise=0.3, slope_spread=0.5):
    """y = a_t + b_t . x + noise: a task-specific intercept and slopes.

    The slopes scatter around shared ones, so a prior learned from many tasks
    beats fitting three features on a handful of rows.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_tasks * n_rows, 3))
    t = np.repeat(np.arange(n_tasks), n_rows)
    a = rng.normal(0.0, 2.0, size=n_tasks)
    b = np.array([2.0, -1.0, 0.5]) + rng.normal(0.0, slope_spread, size=(n_tasks, 3))
    y = a[t] + np.einsum("rf,rf->r", X, b[t]) + rng.normal(0.0, noise, size=len(t))
    return X, y, t


def buried_tasks(n_tasks, n_per_class, seed, n_classes=3, n_features=8):
    """Classes separated along 2 directions shared by all tasks, buried in 6
    noisy ones; every task places its own class centres (episodic classes)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(
        np.random.default_rng(123).normal(size=(n_features, n_features))
    )
    std = np.r_[np.full(2, 0.5), np.full(n_features - 2, 3.0)]
    labels = np.repeat(np.arange(n_classes), n_per_class)
    X, y, t = [], [], []
    for task in range(n_tasks):
        centers = np.zeros((n_classes, n_features))
        centers[:, :2] = rng.normal(0.0, 2.0, size=(n_classes, 2))
        rows = centers[labels] + std * rng.normal(size=(len(labels), n_features))
        X.append(rows @ rotation)
        y.append(labels)
        t.append(np.full(len(labels), task))
    return np.vstack(X), np.concatenate(y), np.concatenate(t)


def _per_class_support(y, k):
    """Indices of the first ``k`` rows of every class, and of the other rows."""
    support = np.concatenate([np.flatnonzero(y == c)[:k] for c in np.unique(y)])
    return support, np.setdiff1d(np.arange(len(y)), support)


def _unadapted(est):
    """A copy without adaptation: it predicts from the meta-learned prior."""
    est = pickle.loads(pickle.dumps(est))
    est.__dict__.pop("adapted_", None)
    return est


@pytest.fixture(scope="module")
def sinusoids():
    return make_sinusoid_tasks(n_tasks=30, n_samples=20, random_state=0)


@pytest.fixture(scope="module")
def class_tasks():
    return make_related_classification_tasks(
        n_tasks=12, n_samples=40, n_features=4, random_state=0
    )


@pytest.fixture(scope="module")
def linear_family():
    """40 training tasks, 30 new ones, and the linear model fitted on them."""
    train = linear_tasks(40, 20, seed=0)
    new = linear_tasks(30, 40, seed=1)
    est = MetaRidgeRegressor(n_components=0, max_iter=300, k_shot=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(*train[:2], task_ids=train[2])
    return est, new


# -- the three task forms, names, seeds ---------------------------------------------
@pytest.mark.parametrize(
    "estimator", ["regressor", pytest.param("classifier", marks=pytest.mark.slow)]
)
def test_three_task_forms_give_identical_predictions(estimator, sinusoids, class_tasks):
    if estimator == "regressor":
        X, y, t = sinusoids
        est = MetaRidgeRegressor(k_shot=5, **FAST)
    else:
        X, y, t = class_tasks
        est = MetaRidgeClassifier(k_shot=3, **FAST)
    pairs = TaskSet.from_arrays(X, y, t).to_pairs()
    flat = clone(est).fit(X, y, task_ids=t)
    from_pairs = clone(est).fit(pairs)
    from_taskset = clone(est).fit(TaskSet(pairs))
    for other in (from_pairs, from_taskset):
        np.testing.assert_array_equal(other.predict(X), flat.predict(X))
        other.adapt(X[t == 1][:6], y[t == 1][:6])
    flat.adapt(X[t == 1][:6], y[t == 1][:6])
    for other in (from_pairs, from_taskset):
        np.testing.assert_array_equal(other.predict(X), flat.predict(X))


def test_pandas_feature_names_are_kept_and_checked(class_tasks):
    pd = pytest.importorskip("pandas")  # in the dev extra
    X, y, t = class_tasks
    frame = pd.DataFrame(X, columns=["age", "dose", "weight", "height"])
    est = MetaRidgeClassifier(k_shot=3, **FAST).fit(frame, y, task_ids=t)
    np.testing.assert_array_equal(
        est.feature_names_in_, ["age", "dose", "weight", "height"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.adapt(frame[t == 0][:6], y[t == 0][:6]).predict(frame)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    pairs = [(frame[t == i], y[t == i]) for i in range(4)]
    est = MetaRidgeClassifier(k_shot=3, **FAST).fit(pairs)
    np.testing.assert_array_equal(
        est.feature_names_in_, ["age", "dose", "weight", "height"]
    )


@pytest.mark.slow
def test_random_state_is_bit_identical_and_leaves_global_rng_alone(sinusoids):
    X, y, t = sinusoids
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()

    def run(seed, early_stopping=True):
        est = MetaRidgeRegressor(
            k_shot=5, early_stopping=early_stopping, **{**FAST, "random_state": seed}
        )
        est.fit(X, y, task_ids=t)
        return est.adapt(X[:5], y[:5]).predict(X, return_std=True)

    for early_stopping in (True, False):
        a = run(0, early_stopping)
        assert torch.equal(torch.random.get_rng_state(), torch_state)
        np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
        b = run(0, early_stopping)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # Another seed, another network (early stopping may keep the seed-free
    # starting point after so few iterations, so it is off here).
    c = run(1, early_stopping=False)
    assert not np.allclose(a[0], c[0])


def test_batch_size_does_not_change_predictions(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
    est.adapt(X[:5], y[:5])
    mean, std = est.predict(X, return_std=True)
    est.batch_size = 7
    mean7, std7 = est.predict(X, return_std=True)
    np.testing.assert_allclose(mean7, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std7, std, rtol=1e-12)


def test_multi_output_targets_keep_their_shape(sinusoids):
    X, y, t = sinusoids
    Y = np.column_stack([y, -2 * y + 1])
    est = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, Y, task_ids=t)
    mean, std = est.adapt(X[:5], Y[:5]).predict(X[:7], return_std=True)
    assert mean.shape == std.shape == (7, 2)
    assert (std > 0).all()
    with pytest.raises(ValueError, match="1 outputs but the model was fitted with 2"):
        est.adapt(X[:5], y[:5])


# -- learning --------------------------------------------------------------------
def _query_mse(est, tasks, k):
    """Mean over tasks of the query MSE: adapted, from the prior, Ridge on the
    support rows alone (first ``k`` rows support, the second half query)."""
    X, y, t = tasks
    prior = _unadapted(est)
    out = {"adapted": [], "prior": [], "ridge": []}
    for task in np.unique(t):
        Xt, yt = X[t == task], y[t == task]
        half = len(yt) // 2
        Xs, ys, Xq, yq = Xt[:k], yt[:k], Xt[half:], yt[half:]
        out["adapted"].append(np.mean((est.adapt(Xs, ys).predict(Xq) - yq) ** 2))
        out["prior"].append(np.mean((prior.predict(Xq) - yq) ** 2))
        ridge = Ridge(alpha=1.0).fit(Xs, ys)
        out["ridge"].append(np.mean((ridge.predict(Xq) - yq) ** 2))
    return {name: float(np.mean(value)) for name, value in out.items()}


def test_regressor_learns_a_prior_over_intercepts_and_slopes(linear_family):
    # 3 support rows, 3 features; seeds 0, 1, 2: adapted 0.54 / 0.55 / 0.54,
    # prior 4.6 / 4.8 / 4.4, support-only Ridge 3.6.
    est, new = linear_family
    mse = _query_mse(est, new, k=3)
    assert mse["adapted"] < 0.3 * mse["ridge"]
    assert mse["adapted"] < 0.3 * mse["prior"]
    assert est.kind_weights_ == {"linear": 1.0}
    assert est.module_ is None


@pytest.mark.slow
def test_regressor_learns_features_of_sinusoids():
    # 5 support rows; seeds 0, 1, 2: adapted 0.18 / 0.16 / 0.29, prior
    # 2.2 / 2.2 / 2.1, support-only Ridge 4.0; the learned kind takes weight
    # 1.0 every time.
    X, y, t = make_sinusoid_tasks(n_tasks=60, n_samples=20, random_state=0)
    train = t < 40
    est = MetaRidgeRegressor(
        hidden_layer_sizes=(32,),
        n_components=8,
        max_iter=400,
        k_shot=10,
        random_state=0,
    ).fit(X[train], y[train], task_ids=t[train])
    mse = _query_mse(est, (X[~train], y[~train], t[~train]), k=5)
    assert mse["adapted"] < 0.2 * mse["ridge"]
    assert mse["adapted"] < 0.2 * mse["prior"]
    weights = est.kind_weights_
    assert set(weights) == {"learned", "linear"}
    assert weights["learned"] + weights["linear"] == pytest.approx(1.0)
    assert weights["learned"] >= 0.5


def test_predictive_std_shrinks_as_the_support_grows(linear_family):
    # The linear kind alone is exactly Bayesian: a larger support (the same
    # rows and more) lowers the predictive std of every query row.
    est, (X, y, t) = linear_family
    for task in range(5):
        Xt, yt = X[t == task], y[t == task]
        stds = [
            est.adapt(Xt[:n], yt[:n]).predict(Xt[20:], return_std=True)[1]
            for n in (1, 3, 10, 20)
        ]
        for fewer, more in zip(stds, stds[1:], strict=False):
            assert (more < fewer).all()
    prior_std = _unadapted(est).predict(Xt[20:], return_std=True)[1]
    assert (prior_std > stds[0]).all()


def test_predictive_std_is_roughly_calibrated(linear_family):
    # Gaussian noise and Gaussian task parameters: about 68% of query targets
    # lie within one predicted std, 95% within two. Seeds 0, 1, 2: 0.71 /
    # 0.70 / 0.71 within one std.
    est, (X, y, t) = linear_family
    within_1, within_2 = [], []
    for task in np.unique(t):
        Xt, yt = X[t == task], y[t == task]
        mean, std = est.adapt(Xt[:3], yt[:3]).predict(Xt[20:], return_std=True)
        within_1.append(np.abs(yt[20:] - mean) < std)
        within_2.append(np.abs(yt[20:] - mean) < 2 * std)
    assert 0.6 < np.mean(within_1) < 0.8
    assert 0.88 < np.mean(within_2) < 0.99


@pytest.mark.slow
def test_episodic_classifier_beats_nearest_centroid():
    # 3-way 2-shot on new tasks; seeds 0, 1, 2: 0.91 / 0.89 / 0.89 against
    # 0.53 for NearestCentroid on the raw features.
    X, y, t = buried_tasks(40, 10, seed=0)
    new = buried_tasks(20, 10, seed=1)
    est = MetaRidgeClassifier(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=300,
        k_shot=2,
        n_way=3,
        random_state=0,
    ).fit(X, y, task_ids=t)
    adapted, centroid = [], []
    for task in range(20):
        Xt, yt = new[0][new[2] == task], new[1][new[2] == task]
        s, q = _per_class_support(yt, 2)
        adapted.append(np.mean(est.adapt(Xt[s], yt[s]).predict(Xt[q]) == yt[q]))
        nc = NearestCentroid().fit(Xt[s], yt[s])
        centroid.append(np.mean(nc.predict(Xt[q]) == yt[q]))
    assert np.mean(adapted) > 0.8
    assert np.mean(adapted) > np.mean(centroid) + 0.2


@pytest.mark.slow
def test_shared_space_adapt_shifts_predictions_toward_support_labels(class_tasks):
    X, y, t = class_tasks
    est = MetaRidgeClassifier(
        hidden_layer_sizes=(8,),
        n_components=4,
        max_iter=100,
        k_shot=5,
        random_state=0,
    ).fit(X[t < 8], y[t < 8], task_ids=t[t < 8])
    for task in range(8, 12):
        Xt = X[t == task]
        before = _unadapted(est).predict_proba(Xt)
        for label in (0, 1):
            after = est.adapt(Xt[:10], np.full(10, label)).predict_proba(Xt)
            assert after[:, label].mean() > before[:, label].mean() + 0.05


# -- model kinds and their weights -------------------------------------------------
def test_model_kinds_and_their_weights(sinusoids):
    X, y, t = sinusoids
    linear = MetaRidgeRegressor(k_shot=5, **{**FAST, "n_components": 0})
    linear.fit(X, y, task_ids=t)
    assert linear.kind_weights_ == {"linear": 1.0}
    assert linear.module_ is None
    assert set(linear.best_iteration_) == {"linear"}
    learned = MetaRidgeRegressor(k_shot=5, linear_ensemble=False, **FAST)
    learned.fit(X, y, task_ids=t)
    assert learned.kind_weights_ == {"learned": 1.0}
    assert isinstance(learned.module_, torch.nn.Module)
    # Without held-out folds nothing chooses: the two kinds average.
    both = MetaRidgeRegressor(k_shot=5, early_stopping=False, **FAST)
    assert both.fit(X, y, task_ids=t).kind_weights_ == {
        "learned": 0.5,
        "linear": 0.5,
    }
    # With them, a weight on a grid of 0.05, chosen on the folds' predictions.
    both = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
    w = both.kind_weights_["learned"]
    assert 0.0 <= w <= 1.0 and np.isclose(20 * w, round(20 * w))
    assert w + both.kind_weights_["linear"] == pytest.approx(1.0)
    # The prediction is the mixture of the kinds' predictions with the weights.
    both.adapt(X[:5], y[:5])
    parts = []
    for weights in ({"learned": 1.0, "linear": 0.0}, {"learned": 0.0, "linear": 1.0}):
        one = pickle.loads(pickle.dumps(both))
        one.kind_weights_ = weights
        parts.append(one.predict(X, return_std=True))
    (m1, s1), (m2, s2) = parts
    both.kind_weights_ = {"learned": 0.3, "linear": 0.7}
    mean, std = both.predict(X, return_std=True)
    np.testing.assert_allclose(mean, 0.3 * m1 + 0.7 * m2, rtol=1e-9, atol=1e-12)
    mixture = 0.3 * s1**2 + 0.7 * s2**2 + 0.3 * 0.7 * (m1 - m2) ** 2
    np.testing.assert_allclose(std, np.sqrt(mixture), rtol=1e-9)


class _Pools(Callback):
    """Keeps the task pools and validation episodes meta-training starts with."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.pools_, self.valid_ = X["train"], X["valid"]


def test_fold_members_never_train_on_their_held_out_tasks(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, cv=3, callbacks=[("pools", _Pools())], **FAST)
    est.fit(X, y, task_ids=t)
    seen = dict(est.net_.callbacks_)["pools"]
    # Three fold members on 20 of the 30 tasks, and the full member on all.
    assert [pool.n_tasks for pool in seen.pools_] == [20, 20, 20, 30]
    support, query = seen.valid_[:2]
    held_out = []
    for fold, pool in enumerate(seen.pools_[:-1]):
        trained_on = set(pool.X[:, 0].tolist())
        rows = set()
        for X_v, w_v in ((support[0], support[2]), (query[0], query[2])):
            rows |= set(X_v[fold][w_v[fold] > 0][:, 0].tolist())
        assert rows and not rows & trained_on
        held_out.append(rows)
    # The folds hold out different tasks.
    assert not (held_out[0] & held_out[1] or held_out[1] & held_out[2])
    assert not held_out[0] & held_out[2]


# -- early stopping ----------------------------------------------------------------
@pytest.mark.slow
def test_early_stopping_records_validation_and_stops(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(
        hidden_layer_sizes=(8,),
        n_components=4,
        max_iter=5000,
        meta_lr=0.02,
        n_iter_no_change=2,
        k_shot=5,
        random_state=0,
    ).fit(X, y, task_ids=t)
    assert est.n_iter_ < 5000
    assert est.n_iter_ % EPOCH == 0
    history = est.history_
    assert set(history[:, "train_batch_count"]) == {EPOCH}
    for kind in ("learned", "linear"):
        losses = np.asarray(history[:, f"valid_loss_{kind}"])
        assert len(losses) >= 1 and np.isfinite(losses).all()
        # Each kind stopped after n_iter_no_change epochs without improvement.
        if len(losses) > 2:
            assert losses[-2:].min() >= losses[:-2].min() - est.tol
    assert set(est.best_iteration_) == {"learned", "linear"}
    for iteration in est.best_iteration_.values():
        assert 0 <= iteration <= est.n_iter_ and iteration % EPOCH == 0
    # The learned kind improved on where it started.
    assert est.best_iteration_["learned"] > 0


@pytest.mark.parametrize(
    "slope_spread, kept_start",
    [(0.0, True), pytest.param(0.5, False, marks=pytest.mark.slow)],
)
def test_training_replaces_the_start_only_when_it_clearly_helps(
    slope_spread, kept_start
):
    # Tasks that differ by their offsets only: the empirical-Bayes start (a
    # random-intercept model) is the right model, and meta-training can only
    # fit noise. Keeping a trained iteration that is better on the held-out
    # folds by one standard error only left the start on this seed (seeds
    # 1 and 2 of 0-5; iterations 300 and 100), as it did on the exam data,
    # where the trained model lost 0.5-0.7% to the start on held-out
    # schools. With slopes that differ between tasks, training clearly
    # helps and is kept (seeds 0-5: iterations 200-750).
    X, y, t = linear_tasks(40, 20, seed=1, noise=1.0, slope_spread=slope_spread)
    est = MetaRidgeRegressor(n_components=0, k_shot=10, random_state=1)
    est.fit(X, y, task_ids=t)
    assert (est.best_iteration_["linear"] == 0) == kept_start
    assert est.n_iter_ >= 5 * EPOCH


def test_clearly_better_counts_paired_standard_errors():
    # Paired differences -1, -2, -3, -2: mean -2, standard deviation
    # sqrt(2/3), standard error sqrt(2/3)/2 = 0.408, so -4.9 errors.
    reference = torch.tensor([5.0, 5.0, 5.0, 5.0])
    candidate = reference - torch.tensor([1.0, 2.0, 3.0, 2.0])
    assert clearly_better(candidate, reference)
    assert clearly_better(candidate, reference, n_errors=4.8)
    assert not clearly_better(candidate, reference, n_errors=5.0)
    assert not clearly_better(reference, candidate, n_errors=0.0)
    # -0.1, -0.4, 0.1, -0.2: mean -0.15, standard error 0.104, -1.44 errors.
    mild = reference - torch.tensor([0.1, 0.4, -0.1, 0.2])
    assert not clearly_better(mild, reference)
    assert clearly_better(mild, reference, n_errors=1.0)
    # -0.2, -0.4, 0.0, -0.2: mean -0.2, standard error 0.082, -2.45 errors.
    assert clearly_better(reference - torch.tensor([0.2, 0.4, 0.0, 0.2]), reference)
    # The one-standard-error rule is the same test at one error: the
    # earliest candidate not clearly worse than the best.
    worse = reference + torch.tensor([0.1, 0.5, 0.3, 0.3])  # +3.3 errors
    slightly = reference + torch.tensor([0.0, 0.4, -0.2, 0.2])  # +0.8 error
    assert within_noise([(5.3, worse), (5.1, slightly), (5.0, reference)]) == 1
    assert within_noise([(5.3, worse), (5.0, reference)]) == 1
    # +1.44 errors: beyond the one-error rule, within two.
    assert within_noise([(5.15, reference + (reference - mild)), (5.0, reference)]) == 1
    # Identical losses are not better; without a spread (one unit, or two that
    # differ alike) the sign of the mean decides; -0.1, -2.0: mean -1.05,
    # standard error 0.95, -1.1 errors.
    assert not clearly_better(reference, reference)
    assert clearly_better(torch.tensor([1.0]), torch.tensor([2.0]), n_errors=5.0)
    assert not clearly_better(torch.tensor([2.0]), torch.tensor([1.0]), n_errors=0.0)
    two = torch.tensor([4.9, 3.0]), torch.tensor([5.0, 5.0])
    assert not clearly_better(*two) and clearly_better(*two, n_errors=1.0)


def test_early_stopping_errors_and_single_task_warnings():
    # Episodic space, one task: classes are held out, and 3 are too few for
    # two folds of n_way=2 classes.
    X, y, _ = make_related_classification_tasks(
        n_tasks=1, n_samples=60, n_classes=3, random_state=0
    )
    est = MetaRidgeClassifier(n_way=2, k_shot=2, **FAST)
    with pytest.raises(
        ValueError,
        match=r"^early_stopping holds out classes for validation: with 3 classes and "
        r"n_way=2 there are too few for two folds of at least n_way classes each\. "
        r"Give more classes, or set early_stopping=False\.$",
    ):
        est.fit(X, y)
    est.set_params(early_stopping=False).fit(X, y)
    assert est.n_iter_ == FAST["max_iter"]
    # Shared space, one task: a warning, and max_iter iterations.
    reg = MetaRidgeRegressor(k_shot=5, **FAST)
    X1, y1 = X[:, :1], X[:, 1]
    with pytest.warns(UserWarning, match="fitted on a single task"):
        reg.fit(X1, y1)
    assert reg.n_iter_ == FAST["max_iter"]
    assert not hasattr(reg, "best_iteration_")
    # Task ids naming one task: early stopping cannot hold out a task.
    with pytest.raises(
        ValueError,
        match=r"^early_stopping holds out whole tasks for validation: it needs at "
        r"least 2 tasks, got 1\. Give task_ids, or set early_stopping=False\.$",
    ):
        reg.fit(X1, y1, task_ids=np.zeros(len(y1)))


def test_early_stopping_works_with_the_fewest_tasks_or_classes_it_needs():
    # Two tasks make two folds; one task of 4 classes two folds of n_way=2.
    X, y, _ = make_related_classification_tasks(
        n_tasks=1, n_samples=48, n_classes=4, random_state=0
    )
    params = {**FAST, "max_iter": 2, "k_shot": 2}
    est = MetaRidgeClassifier(n_way=2, **params).fit(X, y)
    assert set(est.best_iteration_) == {"learned", "linear"}
    reg = MetaRidgeRegressor(**params)
    reg.fit(X[:, :1], X[:, 1], task_ids=np.arange(48) % 2)
    assert set(reg.best_iteration_) == {"learned", "linear"}


# -- partial_fit -----------------------------------------------------------------
@pytest.mark.slow
def test_partial_fit_initialises_then_goes_on(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, **FAST)
    est.partial_fit(X, y, task_ids=t)
    assert est.n_iter_ == EPOCH  # an epoch: at least 50 meta-iterations
    assert len(est.history_) == 1
    assert "valid_loss_learned" not in est.history_[-1]  # no early stopping
    assert not hasattr(est, "best_iteration_")
    first = est.predict(X)
    est.partial_fit(X, y, task_ids=t)
    assert est.n_iter_ == 2 * EPOCH and len(est.history_) == 2
    assert not np.allclose(first, est.predict(X))
    est.partial_fit(X[t < 10], y[t < 10], task_ids=t[t < 10])
    assert est.n_iter_ == 3 * EPOCH
    # After a fit with early stopping, partial_fit goes on from the kept model.
    fitted = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
    weights = dict(fitted.kind_weights_)
    fitted.partial_fit(X, y, task_ids=t)
    assert fitted.n_iter_ == FAST["max_iter"] + EPOCH
    assert fitted.kind_weights_ == weights


def test_partial_fit_classes_and_unknown_labels(class_tasks):
    X, y, t = class_tasks
    est = MetaRidgeClassifier(k_shot=3, **FAST)
    est.partial_fit(X, y, task_ids=t, classes=[0, 1, 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.predict_proba(X[:3]).shape == (3, 3)
    with pytest.raises(ValueError, match=r"Labels \[7\] are not among classes_"):
        est.partial_fit(X[:20], np.full(20, 7), task_ids=t[:20])


# -- base_estimator -------------------------------------------------------------
@pytest.mark.parametrize("base", [LinearRegression(), DummyRegressor()])
def test_base_estimator_is_an_input_and_the_offset(base, sinusoids):
    X, y, t = sinusoids
    rng = np.random.default_rng(0)
    X2 = np.column_stack([X, rng.normal(size=len(X))])
    y2 = y + 3.0 * X2[:, 1]
    est = MetaRidgeRegressor(
        base_estimator=base, k_shot=5, **{**FAST, "n_components": 0}
    ).fit(X2, y2, task_ids=t)
    assert est.n_features_in_ == 2
    refit = clone(base).fit(X2, y2)
    np.testing.assert_allclose(est.base_estimator_.predict(X2), refit.predict(X2))
    # The prior prediction is the base prediction plus the prior mean of the
    # head on [x, base, 1] (standardised units): the base is a column too.
    head = est._inference_net.kinds["linear"]
    prior_mean = head.prior_mean[0].detach().numpy()
    assert prior_mean.shape == (4, 1)
    base_std = (refit.predict(X2[:10]) - est.y_mean_) / est.y_scale_
    inputs = np.column_stack(
        [(X2[:10] - est.x_mean_) / est.x_scale_, base_std, np.ones(10)]
    )
    expected = (base_std + (inputs @ prior_mean)[:, 0]) * est.y_scale_ + est.y_mean_
    np.testing.assert_allclose(est.predict(X2[:10]), expected, rtol=1e-9)
    # A support set that agrees with the prior tells the head nothing new.
    before = est.predict(X2)
    est.adapt(X2[:8], est.predict(X2[:8]))
    np.testing.assert_allclose(est.predict(X2), before, rtol=1e-5, atol=1e-5)


def test_base_estimator_classifier_columns_and_episodic_refusal(class_tasks):
    X, y, t = class_tasks
    est = MetaRidgeClassifier(base_estimator=LogisticRegression(), k_shot=3, **FAST)
    est.fit(X, y, task_ids=t)
    proba = est.adapt(X[:10], y[:10]).predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    episodic = MetaRidgeClassifier(
        base_estimator=LogisticRegression(), n_way=2, k_shot=3, **FAST
    )
    with pytest.raises(
        ValueError,
        match=r"^base_estimator needs the shared label space: a pooled model cannot "
        r"predict the new classes of episodic \(n_way\) tasks\.$",
    ):
        episodic.fit(X, y, task_ids=t)
    # Refitted without it, nothing of the base estimator is left.
    est.set_params(base_estimator=None, max_iter=2).fit(X, y, task_ids=t)
    assert not hasattr(est, "base_estimator_")
    fresh = MetaRidgeClassifier(k_shot=3, **{**FAST, "max_iter": 2})
    fresh.fit(X, y, task_ids=t)
    np.testing.assert_array_equal(est.predict_proba(X), fresh.predict_proba(X))


def test_base_estimator_columns_match_the_offset_when_classes_are_given(class_tasks):
    # partial_fit(classes=[0, 1, 2]) on rows of classes 0 and 1: the base
    # model knows two classes (one log-odds column) while classes_ has three.
    # The head's offset must be the base model's columns, never features read
    # as log-odds; refusing the combination clearly would do too.
    X, y, t = class_tasks
    est = MetaRidgeClassifier(base_estimator=LogisticRegression(), k_shot=3, **FAST)
    try:
        est.partial_fit(X, y, task_ids=t, classes=[0, 1, 2])
    except ValueError as exc:
        assert "classes" in str(exc)
        return
    n_added = est._episode_inputs(X).shape[1] - est.n_features_in_
    for name, kind in est._inference_net.kinds.items():
        assert kind.n_offset == n_added, name


@pytest.mark.parametrize(
    "n_tasks, cv, single, splitter",
    [
        (6, 3, False, GroupKFold(3)),  # folds of tasks
        (2, 5, False, GroupKFold(2)),  # at most one fold per task
        (1, 5, False, KFold(5)),  # one task: folds of its rows
        (1, 4, True, KFold(4)),  # fit(X, y): folds of rows
    ],
)
def test_base_estimator_predictions_are_out_of_fold_by_task(
    n_tasks, cv, single, splitter
):
    """The base estimator's inputs to the head come from models that never saw
    the task (the row, for one task): sklearn's cross_val_predict with those
    folds is the reference."""
    X, y, t = make_sinusoid_tasks(n_tasks=n_tasks, n_samples=12, random_state=0)
    est = MetaRidgeRegressor(
        base_estimator=Ridge(),
        cv=cv,
        k_shot=3,
        early_stopping=False,  # one task cannot hold tasks out
        **{**FAST, "max_iter": 2},
    )
    est.fit(X, y) if single else est.fit(X, y, task_ids=t)
    tasks = TaskSet.from_arrays(X, y, np.zeros_like(t) if single else t)
    expected = cross_val_predict(
        Ridge(), X, y, groups=None if single else t, cv=splitter
    )
    np.testing.assert_allclose(est._fit_base_estimator(tasks, single), expected)


def test_binary_base_estimator_adds_one_log_odds_column():
    X, y, t = make_related_classification_tasks(
        n_tasks=6, n_samples=20, n_features=3, n_classes=2, random_state=0
    )
    est = MetaRidgeClassifier(base_estimator=LogisticRegression(), k_shot=3, **FAST)
    est.fit(X, y, task_ids=t)
    assert est._episode_inputs(X).shape[1] == est.n_features_in_ + 1
    for name, kind in est._inference_net.kinds.items():
        assert kind.n_offset == 1, name
    proba = est.adapt(X[:10], y[:10]).predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_linear_ensemble_adds_the_linear_model_beside_learned_features(sinusoids):
    X, y, t = sinusoids
    kinds = {}
    for n_components in (0, 2):
        for ensemble in (False, True):
            est = MetaRidgeRegressor(
                k_shot=5,
                linear_ensemble=ensemble,
                **{**FAST, "n_components": n_components, "max_iter": 3},
            ).fit(X, y, task_ids=t)
            kinds[n_components, ensemble] = set(est._inference_net.kinds)
    # Without learned features the linear model is the model either way.
    assert kinds == {
        (0, False): {"linear"},
        (0, True): {"linear"},
        (2, False): {"learned"},
        (2, True): {"learned", "linear"},
    }


class _PriorAtStart(Callback):
    """Keeps the linear head's prior mean as meta-training starts."""

    def on_train_begin(self, net, **kwargs):
        self.mean_ = net.module_.kinds["linear"].prior_mean.detach().double()


@pytest.mark.parametrize("classifier", [False, True])
def test_linear_prior_starts_at_the_random_intercept_fit(classifier):
    """Meta-training starts from the empirical-Bayes random-intercept model
    of the training rows: targets on [x, 1], classes as one-hot columns."""
    X, y, t = make_related_classification_tasks(
        n_tasks=8, n_samples=20, n_features=3, n_classes=3, random_state=0
    )
    start = _PriorAtStart()
    params = dict(n_components=0, k_shot=3, early_stopping=False, max_iter=1)
    if classifier:
        est = MetaRidgeClassifier(callbacks=[start], **params).fit(X, y, task_ids=t)
        targets, n_classes = np.searchsorted(est.classes_, y), 3
    else:
        target = X[:, 0] + y
        est = MetaRidgeRegressor(callbacks=[start], **params).fit(X, target, task_ids=t)
        targets, n_classes = ((target - est.y_mean_) / est.y_scale_)[:, None], None
    inputs = (X - est.x_mean_) / est.x_scale_
    expected = random_intercept(inputs, targets, t, n_classes=n_classes)[0]
    assert start.mean_.shape == (1, 4, 3 if classifier else 1)
    np.testing.assert_allclose(start.mean_[0].numpy(), expected, atol=1e-6)


def test_prior_starts_at_the_random_intercept_fit_of_what_the_base_leaves():
    X, y, t = make_sinusoid_tasks(n_tasks=8, n_samples=12, random_state=0)
    start = _PriorAtStart()
    est = MetaRidgeRegressor(
        base_estimator=LinearRegression(),
        callbacks=[start],
        n_components=0,
        k_shot=3,
        early_stopping=False,
        max_iter=1,
    ).fit(X, y, task_ids=t)
    # The head's inputs: [x, the base's out-of-fold prediction] in the
    # model's units; its targets: what that prediction leaves.
    oof = est._fit_base_estimator(TaskSet.from_arrays(X, y, t), False)
    inputs = est._head_inputs(X, oof)
    targets = ((y - est.y_mean_) / est.y_scale_)[:, None] - inputs[:, -1:]
    expected = random_intercept(inputs, targets, t)[0]
    np.testing.assert_allclose(start.mean_[0].numpy(), expected, atol=1e-6)


def test_episodic_prior_mean_starts_at_zero():
    X, y, t = make_related_classification_tasks(
        n_tasks=8, n_samples=20, n_features=3, n_classes=3, random_state=0
    )
    start = _PriorAtStart()
    MetaRidgeClassifier(
        n_way=2, callbacks=[start], n_components=0, k_shot=3, max_iter=1
    ).fit(X, y, task_ids=t)
    assert not start.mean_.any()


def test_partial_fit_with_a_base_estimator_uses_its_predictions(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(base_estimator=LinearRegression(), k_shot=5, **FAST)
    est.fit(X, y, task_ids=t).partial_fit(X, y, task_ids=t)
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("cls", [MetaRidgeRegressor, MetaRidgeClassifier])
def test_n_query_sets_the_query_rows_of_training_episodes(cls, class_tasks):
    X, y, t = class_tasks
    target = y if cls is MetaRidgeClassifier else X[:, 0] + y
    losses = [
        cls(k_shot=3, n_query=n_query, **{**FAST, "max_iter": 3})
        .fit(X, target, task_ids=t)
        .history_[:, "train_loss"]
        for n_query in (1, 10)
    ]
    # More query rows per episode: another training loss from the first epoch.
    assert losses[0][0] != losses[1][0]


def test_a_task_of_k_shot_plus_n_query_rows_is_not_short():
    X, y, t = make_sinusoid_tasks(n_tasks=6, n_samples=10, random_state=0)
    keep = (t != 5) | (np.arange(len(t)) % 10 < 4)  # task 5 keeps 4 rows
    est = MetaRidgeRegressor(
        k_shot=3, n_query=1, max_iter=2, early_stopping=False, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no short-task warning
        est.fit(X[keep], y[keep], task_ids=t[keep])
    with pytest.warns(UserWarning, match="fewer than k_shot [+] n_query = 6 rows"):
        est.set_params(n_query=3).fit(X[keep], y[keep], task_ids=t[keep])


# -- short tasks ---------------------------------------------------------------------
def test_short_tasks_give_the_rows_they_have_and_single_rows_are_left_out():
    X = np.random.default_rng(0).normal(size=(31, 2))
    reg = MetaRidgeRegressor(k_shot=5, **FAST)
    with pytest.warns(UserWarning, match="1 of 3 tasks .* 1 with a single row are"):
        reg.fit(X, X[:, 0], task_ids=[0] * 25 + [1] * 5 + [2])
    assert reg.n_iter_ == FAST["max_iter"]
    assert reg.predict(X[:2]).shape == (2,)
    with pytest.raises(ValueError, match="No task has two rows"):
        reg.fit(X[:3], X[:3, 0], task_ids=[0, 1, 2])


# -- score ---------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["regressor", "classifier"])
def test_score_with_task_ids_is_the_few_shot_score(estimator, sinusoids, class_tasks):
    if estimator == "regressor":
        X, y, t = sinusoids
        est = MetaRidgeRegressor(k_shot=5, **FAST)
    else:
        X, y, t = class_tasks
        est = MetaRidgeClassifier(k_shot=3, **FAST)
    est.fit(X[t < 6], y[t < 6], task_ids=t[t < 6])
    held = t >= 6
    est.adapt(X[:6], y[:6])
    before = est.predict(X)
    score = est.score(X[held], y[held], task_ids=t[held])
    reference = few_shot_score(
        est, (X[held], y[held], t[held]), k_shot=est.k_shot, random_state=0
    )
    assert score == reference.mean
    np.testing.assert_array_equal(est.predict(X), before)  # own adaptation kept
    # By hand: the same splits, adapt and predict on a copy.
    tasks = TaskSet.from_arrays(X[held], y[held], t[held])
    splits = draw_episodes(
        tasks,
        k_shot=est.k_shot,
        n_query=None,
        n_episodes=1,
        per_class=estimator == "classifier",
        random_state=0,
    )[0]
    work = pickle.loads(pickle.dumps(est))
    by_hand = [
        work.adapt(tasks.X[s], tasks.y[s]).score(tasks.X[q], tasks.y[q])
        for s, q in splits
    ]
    np.testing.assert_allclose(reference.per_task, by_hand, rtol=1e-5, atol=1e-6)


# -- adapt semantics, pickling ------------------------------------------------------
def test_adapt_always_starts_from_the_prior(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
    prior = est.predict(X)
    A, B = (X[t == 0][:5], y[t == 0][:5]), (X[t == 1][:5], y[t == 1][:5])
    once = est.adapt(*A).predict(X, return_std=True)
    twice = est.adapt(*A).predict(X, return_std=True)
    np.testing.assert_array_equal(once[0], twice[0])
    np.testing.assert_array_equal(once[1], twice[1])
    assert not np.allclose(once[0], prior)
    only_b = est.adapt(*B).predict(X)
    np.testing.assert_array_equal(est.adapt(*A).adapt(*B).predict(X), only_b)


def test_episodic_classes_come_from_the_support_set(class_tasks):
    X, y, t = make_related_classification_tasks(
        n_tasks=5, n_samples=60, n_classes=3, random_state=0
    )
    est = MetaRidgeClassifier(n_way=2, k_shot=2, **FAST).fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="call adapt"):
        est.predict(X[:2])
    support = np.isin(y, [0, 2]) & (t == 0)
    labels = np.where(y[support] == 0, "cat", "dog")
    est.adapt(X[support], labels)
    np.testing.assert_array_equal(est.classes_, ["cat", "dog"])
    proba = est.predict_proba(X[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert set(est.predict(X)) <= {"cat", "dog"}
    with pytest.raises(ValueError, match="3 classes but the model is 2-way"):
        est.adapt(X[:6], [0, 1, 2, 0, 1, 2])


def test_failed_call_leaves_the_fitted_estimator_as_it_was(class_tasks):
    X, y, t = class_tasks
    est = MetaRidgeClassifier(k_shot=3, **FAST).fit(X, y, task_ids=t)
    est.adapt(X[:6], y[:6])
    before = pickle.dumps(est)
    proba = est.predict_proba(X)
    with pytest.raises(ValueError):
        est.adapt(X[:4], [0, 1, 5, 5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        est.fit(bad, y, task_ids=t)
    with pytest.raises(ValueError):
        est.partial_fit(X[:, :3], y, task_ids=t)
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    assert pickle.dumps(est) == before


@pytest.mark.parametrize("estimator", ["regressor", "episodic"])
def test_pickle_round_trip_before_and_after_adapt(estimator, sinusoids):
    if estimator == "regressor":
        X, y, t = sinusoids
        est = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
        clone_ = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(clone_.predict(X), est.predict(X))
    else:
        X, y, t = buried_tasks(6, 10, seed=0)
        est = MetaRidgeClassifier(n_way=3, k_shot=2, **FAST).fit(X, y, task_ids=t)
    est.adapt(X[t == 0], y[t == 0])
    clone_ = pickle.loads(pickle.dumps(est))
    if estimator == "regressor":
        np.testing.assert_array_equal(
            clone_.predict(X, return_std=True), est.predict(X, return_std=True)
        )
    else:
        np.testing.assert_array_equal(clone_.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(clone_.classes_, est.classes_)


def test_pickling_leaves_the_estimator_untouched(sinusoids):
    # Pickling must not change the live estimator: __getstate__ moves the
    # adaptation to the CPU in the state it returns, never in the estimator
    # itself (on a GPU that would leave adapted_ and the model on two devices).
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, **FAST).fit(X, y, task_ids=t)
    est.adapt(X[:5], y[:5])
    state = dict(est.__dict__)
    pickle.dumps(est)
    assert est.__dict__.keys() == state.keys()
    for name, value in state.items():
        assert est.__dict__[name] is value, name


# -- model selection with metadata routing -------------------------------------------
@pytest.mark.slow
def test_grid_search_routes_task_ids_to_fit_and_score(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, early_stopping=False, **FAST)
    grid = {"n_components": [0, 4]}
    cv = GroupKFold(n_splits=2)
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            # Without task_ids, fit would warn of a single task.
            warnings.simplefilter("error")
            search = GridSearchCV(est, grid, cv=cv).fit(X, y, groups=t, task_ids=t)
    # Each candidate's split score is the few-shot score on the held-out tasks.
    for i, params in enumerate(search.cv_results_["params"]):
        for k, (train, test) in enumerate(cv.split(X, y, groups=t)):
            fitted = clone(est).set_params(**params)
            fitted.fit(X[train], y[train], task_ids=t[train])
            expected = fitted.score(X[test], y[test], task_ids=t[test])
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(
                expected, rel=1e-12
            )
            assert expected != pytest.approx(fitted.score(X[test], y[test]))


# -- bad input -----------------------------------------------------------------------
def test_bad_input_is_refused_clearly(sinusoids, class_tasks):
    X, y, t = sinusoids
    bad = X.copy()
    bad[np.flatnonzero(t == 4)[2], 0] = np.nan
    est = MetaRidgeRegressor(k_shot=5, **FAST)
    with pytest.raises(ValueError, match="task 4 contains NaN or infinity"):
        est.fit(bad, y, task_ids=t)
    names = np.array(["north", "south", "east"])[t % 3]
    with pytest.raises(ValueError, match="task 'south' contains NaN or infinity"):
        est.fit(bad, y, task_ids=names)
    pairs = TaskSet.from_arrays(X, y, t).to_pairs()
    pairs[3] = (pairs[3][0].copy(), pairs[3][1].copy())
    pairs[3][1][0] = np.inf
    with pytest.raises(ValueError, match="task 3"):
        est.fit(pairs)
    est.fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="features"):
        est.adapt(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="features"):
        est.predict(np.zeros((5, 3)))
    Xc, yc, tc = class_tasks
    clf = MetaRidgeClassifier(k_shot=3, **FAST).fit(Xc, yc, task_ids=tc)
    with pytest.raises(ValueError, match=r"labels \[5\] that are not among classes_"):
        clf.adapt(Xc[:4], [0, 1, 5, 5])
    with pytest.raises(ValueError, match="n_way=4 are needed"):
        MetaRidgeClassifier(n_way=4, k_shot=3, **FAST).fit(Xc, yc, task_ids=tc)


@pytest.mark.parametrize("kernel", ["linear", "ard"])
def test_few_shot_predictions_equal_adapt_then_predict(sinusoids, kernel):
    # The batched path of few_shot_score and a loop of adapt/predict must give
    # the same predictions: both solve in float64. The linear head's agree to
    # the bit; the kernel head's to rounding, as padding the query rows to one
    # batch changes the shapes of its matrix products (and so BLAS's order of
    # summation).
    from sktransfer.model_selection._few_shot import predict_episodes

    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, kernel=kernel, **FAST).fit(X, y, task_ids=t)
    supports = [(X[t == i][:5], y[t == i][:5]) for i in range(3)]
    queries = [X[t == i][5:] for i in range(3)]
    batched = predict_episodes(est, supports, queries, ["a", "b", "c"])
    rtol = 0 if kernel == "linear" else 1e-12
    for (X_s, y_s), X_q, pred in zip(supports, queries, batched, strict=True):
        want = est.adapt(X_s, y_s).predict(X_q)
        np.testing.assert_allclose(pred, want, rtol=rtol, atol=0)


def _groups(est):
    """(lr, weight_decay, parameter ids) of every group of the meta-optimiser."""
    return [
        (g["lr"], g["weight_decay"], {id(p) for p in g["params"]})
        for g in est.net_.optimizer_.param_groups
    ]


@pytest.mark.parametrize("n_way", [None, 2])
def test_heads_learn_five_times_faster_and_only_the_network_decays(n_way, class_tasks):
    X, y, t = class_tasks
    est = MetaRidgeClassifier(
        **{**FAST, "max_iter": 2}, n_way=n_way, meta_lr=0.01, weight_decay=0.3
    ).fit(X, y, task_ids=t)
    body = {
        id(p)
        for kind in est.net_.module_.kinds.values()
        if kind.body is not None
        for p in kind.body.parameters()
    }
    heads = {id(p) for p in est.net_.module_.parameters()} - body
    assert body and heads
    groups = _groups(est)
    assert (0.01, 0.3, body) in groups
    assert (pytest.approx(0.05), 0.0, heads) in groups
    assert len(groups) == 2


def test_verbose_shows_progress_and_a_log(sinusoids, capsys):
    X, y, t = sinusoids
    params = {**FAST, "max_iter": 2, "k_shot": 5, "early_stopping": False}
    MetaRidgeRegressor(**params, verbose=1).fit(X, y, task_ids=t)
    out = capsys.readouterr()
    assert "meta-training" in out.err and out.out == ""
    MetaRidgeRegressor(**params, verbose=2).fit(X, y, task_ids=t)
    assert "train_loss" in capsys.readouterr().out
    MetaRidgeRegressor(**params, verbose=0).fit(X, y, task_ids=t)
    out = capsys.readouterr()
    assert out.out == out.err == ""


def test_predictions_follow_the_units_of_the_targets(sinusoids):
    # Targets are standardised inside: a model fitted on 10 y + 3 predicts
    # 10 mean + 3, with 10 times the standard deviation.
    X, y, t = sinusoids
    params = {**FAST, "max_iter": 5, "k_shot": 5}
    est = MetaRidgeRegressor(**params).fit(X, y, task_ids=t)
    scaled = MetaRidgeRegressor(**params).fit(X, 10 * y + 3, task_ids=t)
    for model in (est, scaled):
        assert model.predict(X[:4]).shape == (4,)
    mean, std = est.predict(X, return_std=True)
    mean10, std10 = scaled.predict(X, return_std=True)
    np.testing.assert_allclose(mean10, 10 * mean + 3, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std10, 10 * std, rtol=1e-6)
    est.adapt(X[:5], y[:5])
    scaled.adapt(X[:5], 10 * y[:5] + 3)
    mean, std = est.predict(X, return_std=True)
    mean10, std10 = scaled.predict(X, return_std=True)
    np.testing.assert_allclose(mean10, 10 * mean + 3, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std10, 10 * std, rtol=1e-6)
    assert std.shape == (len(X),) and (std > 0).all()


def test_random_state_fixes_the_rows_of_large_tasks():
    # Tasks of more than 4096 rows are shuffled before episodes take windows
    # of them, with random_state: two fits agree bit for bit.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8400, 1))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=8400)
    t = np.repeat([0, 1], 4200)
    params = {**FAST, "max_iter": 2, "early_stopping": False}
    a, b = (MetaRidgeRegressor(**params).fit(X, y, task_ids=t) for _ in range(2))
    np.testing.assert_array_equal(a.predict(X[:50]), b.predict(X[:50]))


def test_refit_without_early_stopping_forgets_the_best_iteration(sinusoids):
    X, y, t = sinusoids
    est = MetaRidgeRegressor(k_shot=5, early_stopping=True, **{**FAST, "max_iter": 3})
    assert hasattr(est.fit(X, y, task_ids=t), "best_iteration_")
    est.set_params(early_stopping=False).fit(X, y, task_ids=t)
    assert not hasattr(est, "best_iteration_")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_base_class_probabilities_enter_the_head_as_log_odds(n_classes):
    """Two classes: the log-odds of class 1; more: log-probabilities less
    their mean over the classes (each row's softmax logits, centred)."""
    X, y, t = make_related_classification_tasks(
        n_tasks=6, n_samples=30, n_features=3, n_classes=n_classes, random_state=0
    )
    est = MetaRidgeClassifier(base_estimator=LogisticRegression(), k_shot=3, **FAST)
    est.fit(X, y, task_ids=t)
    log_proba = np.log(est.base_estimator_.predict_proba(X))
    expected = (
        log_proba[:, 1:] - log_proba[:, :1]
        if n_classes == 2
        else log_proba - log_proba.mean(axis=1, keepdims=True)
    )
    inputs = est._head_inputs(X, np.exp(log_proba))
    np.testing.assert_allclose(inputs[:, 3:], expected, rtol=1e-12)
