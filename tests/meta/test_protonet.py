"""Behaviour of ProtoNetClassifier that users rely on.

The learning test meta-trains on tasks whose classes are separated along two
directions shared by all tasks, buried among six noisy ones, and compares on
new tasks with `NearestCentroid` on the raw features of the support set (the
same rule, without the learned embedding). Hyper-parameters were checked by
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
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.neighbors import NearestCentroid

from sktransfer import MetaRidgeClassifier, ProtoNetClassifier, TaskSet, few_shot_score
from sktransfer.datasets import make_related_classification_tasks

FAST = dict(hidden_layer_sizes=(8,), n_components=4, max_iter=30, random_state=0)
EPOCH = 50  # meta-iterations of one epoch for a few dozen tasks


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


@pytest.fixture(scope="module")
def episodic():
    return buried_tasks(8, 8, seed=0)


@pytest.fixture(scope="module")
def class_tasks():
    return make_related_classification_tasks(
        n_tasks=12, n_samples=40, n_features=4, random_state=0
    )


# -- task forms, names, seeds ----------------------------------------------------
@pytest.mark.parametrize("n_way", [None, 3])
def test_three_task_forms_give_identical_predictions(n_way, episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=n_way, k_shot=2, **FAST)
    pairs = TaskSet.from_arrays(X, y, t).to_pairs()
    fits = [
        clone(est).fit(X, y, task_ids=t),
        clone(est).fit(pairs),
        clone(est).fit(TaskSet(pairs)),
    ]
    support = t == 1
    outputs = [
        fit.adapt(X[support][:6], y[support][:6]).predict_proba(X) for fit in fits
    ]
    np.testing.assert_array_equal(outputs[1], outputs[0])
    np.testing.assert_array_equal(outputs[2], outputs[0])


def test_pandas_feature_names_are_kept(episodic):
    pd = pytest.importorskip("pandas")  # in the dev extra
    X, y, t = episodic
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    est = ProtoNetClassifier(n_way=3, k_shot=2, **FAST).fit(frame, y, task_ids=t)
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.adapt(frame[t == 0], y[t == 0]).predict(frame)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)


def test_random_state_is_bit_identical_and_leaves_global_rng_alone(episodic):
    X, y, t = episodic
    torch_state = torch.random.get_rng_state()

    def run(seed, early_stopping=True):
        est = ProtoNetClassifier(
            n_way=3,
            k_shot=2,
            early_stopping=early_stopping,
            **{**FAST, "random_state": seed},
        )
        est.fit(X, y, task_ids=t)
        return est.adapt(X[t == 0], y[t == 0]).predict_proba(X)

    for early_stopping in (True, False):
        a = run(0, early_stopping)
        assert torch.equal(torch.random.get_rng_state(), torch_state)
        np.testing.assert_array_equal(run(0, early_stopping), a)
    assert not np.allclose(run(1, early_stopping=False), a)


# -- learning ------------------------------------------------------------------------
@pytest.mark.slow
def test_episodic_protonet_beats_nearest_centroid():
    # 3-way 2-shot on new tasks; seeds 0, 1, 2: 0.92 / 0.93 / 0.92 against
    # 0.53 for NearestCentroid on the raw features.
    X, y, t = buried_tasks(40, 10, seed=0)
    new = buried_tasks(20, 10, seed=1)
    est = ProtoNetClassifier(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=300,
        k_shot=2,
        n_way=3,
        random_state=0,
    ).fit(X, y, task_ids=t)
    assert est.kind_weights_ == {"learned": 1.0}
    assert est.module_(torch.zeros(1, X.shape[1])).shape == (1, 4)
    adapted, centroid = [], []
    for task in range(20):
        Xt, yt = new[0][new[2] == task], new[1][new[2] == task]
        s, q = _per_class_support(yt, 2)
        adapted.append(np.mean(est.adapt(Xt[s], yt[s]).predict(Xt[q]) == yt[q]))
        nc = NearestCentroid().fit(Xt[s], yt[s])
        centroid.append(np.mean(nc.predict(Xt[q]) == yt[q]))
    assert np.mean(adapted) > 0.8
    assert np.mean(adapted) > np.mean(centroid) + 0.2
    # The same rule as NearestCentroid in the learned embedding: the nearest
    # prototype wins.
    Xt, yt = new[0][new[2] == 0], new[1][new[2] == 0]
    s, q = _per_class_support(yt, 2)
    with torch.no_grad():
        embed = est.module_.double()
        z_s = embed(torch.as_tensor((Xt[s] - est.x_mean_) / est.x_scale_)).numpy()
        z_q = embed(torch.as_tensor((Xt[q] - est.x_mean_) / est.x_scale_)).numpy()
    nearest = NearestCentroid().fit(z_s, yt[s]).predict(z_q)
    np.testing.assert_array_equal(est.adapt(Xt[s], yt[s]).predict(Xt[q]), nearest)


@pytest.fixture(scope="module")
def shared_protonet(class_tasks):
    X, y, t = class_tasks
    return ProtoNetClassifier(
        hidden_layer_sizes=(8,),
        n_components=4,
        max_iter=100,
        k_shot=5,
        random_state=0,
    ).fit(X[t < 8], y[t < 8], task_ids=t[t < 8])


def test_shared_space_predicts_before_adapt_from_learned_priors(
    shared_protonet, class_tasks
):
    # Before adapt, the meta-learned prior prototypes predict. Without early
    # stopping the same fit scores 0.81 on the new tasks; a constant class
    # scores 0.50.
    X, y, t = class_tasks
    est = shared_protonet
    prior = est.predict_proba(X)
    np.testing.assert_allclose(prior.sum(1), 1.0)
    assert len(np.unique(est.predict(X))) == 2
    assert np.mean(est.predict(X[t >= 8]) == y[t >= 8]) > 0.6


def test_shared_space_adapt_shifts_predictions_toward_support_labels(
    shared_protonet, class_tasks
):
    # Without early stopping, so that this test does not depend on which
    # iteration the one-standard-error rule keeps.
    X, y, t = class_tasks
    est = clone(shared_protonet).set_params(early_stopping=False)
    est.fit(X[t < 8], y[t < 8], task_ids=t[t < 8])
    prior = est.predict_proba(X)
    for task in range(8, 12):
        Xt = X[t == task]
        for label in (0, 1):
            after = est.adapt(Xt[:10], np.full(10, label)).predict_proba(Xt)
            assert after[:, label].mean() > prior[t == task][:, label].mean() + 0.05
    # A class absent from the support set keeps its prior prototype.
    Xt, yt = X[t == 9], y[t == 9]
    est.adapt(Xt[yt == 1][:5], yt[yt == 1][:5])
    assert est.predict_proba(Xt)[:, 0].max() > 0.5


# -- early stopping, partial_fit ----------------------------------------------------
def test_early_stopping_records_validation_and_stops():
    X, y, t = buried_tasks(12, 8, seed=0)
    est = ProtoNetClassifier(
        hidden_layer_sizes=(8,),
        n_components=4,
        max_iter=5000,
        meta_lr=0.02,
        n_iter_no_change=2,
        n_way=3,
        k_shot=2,
        random_state=0,
    ).fit(X, y, task_ids=t)
    assert est.n_iter_ < 5000 and est.n_iter_ % EPOCH == 0
    losses = np.asarray(est.history_[:, "valid_loss_learned"])
    assert np.isfinite(losses).all()
    assert losses[-2:].min() >= losses[:-2].min() - est.tol
    assert set(est.best_iteration_) == {"learned"}
    assert 0 <= est.best_iteration_["learned"] <= est.n_iter_


def test_single_task_holds_out_classes_or_says_why():
    # One task of 8 classes: early stopping holds out classes.
    X, y, _ = buried_tasks(1, 6, seed=0, n_classes=8)
    est = ProtoNetClassifier(n_way=2, k_shot=2, **FAST).fit(X, y)
    assert est.n_iter_ == FAST["max_iter"]
    assert "valid_loss_learned" in est.history_[-1]
    X, y, _ = buried_tasks(1, 6, seed=0, n_classes=3)
    with pytest.raises(ValueError, match="too few for two folds"):
        ProtoNetClassifier(n_way=2, k_shot=2, **FAST).fit(X, y)
    with pytest.warns(UserWarning, match="fitted on a single task"):
        shared = ProtoNetClassifier(k_shot=2, **FAST).fit(X, y)
    assert shared.n_iter_ == FAST["max_iter"]


def test_partial_fit_initialises_then_goes_on(episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=3, k_shot=2, **FAST)
    est.partial_fit(X, y, task_ids=t)
    assert est.n_iter_ == EPOCH and len(est.history_) == 1
    assert not hasattr(est, "best_iteration_")
    first = est.adapt(X[t == 0], y[t == 0]).predict_proba(X)
    est.partial_fit(X, y, task_ids=t)
    assert est.n_iter_ == 2 * EPOCH and len(est.history_) == 2
    assert not hasattr(est, "adapted_")  # training drops the adaptation
    assert not np.allclose(first, est.adapt(X[t == 0], y[t == 0]).predict_proba(X))


# -- score, adapt, pickling -----------------------------------------------------------
def test_score_with_task_ids_is_the_few_shot_score(episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=3, k_shot=2, **FAST)
    est.fit(X[t < 5], y[t < 5], task_ids=t[t < 5])
    held = t >= 5
    score = est.score(X[held], y[held], task_ids=t[held])
    reference = few_shot_score(
        est, (X[held], y[held], t[held]), k_shot=2, random_state=0
    )
    assert score == reference.mean
    assert not hasattr(est, "adapted_")  # scoring leaves the estimator alone


def test_adapt_always_starts_from_the_prior(episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=3, k_shot=2, **FAST).fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="call adapt"):
        est.predict(X[:2])
    A, B = (X[t == 0], y[t == 0]), (X[t == 1], 10 + y[t == 1])
    once = est.adapt(*A).predict_proba(X)
    np.testing.assert_array_equal(est.adapt(*A).predict_proba(X), once)
    only_b = est.adapt(*B).predict_proba(X)
    np.testing.assert_array_equal(est.adapt(*A).adapt(*B).predict_proba(X), only_b)
    np.testing.assert_array_equal(est.classes_, [10, 11, 12])
    shared = ProtoNetClassifier(k_shot=2, **FAST).fit(X, y, task_ids=t)
    prior = shared.predict_proba(X)
    shared.adapt(*A)
    shared.adapt(*A)
    assert not np.allclose(shared.predict_proba(X), prior)
    np.testing.assert_array_equal(
        shared.predict_proba(X), shared.adapt(*A).predict_proba(X)
    )


@pytest.mark.parametrize("n_way", [None, 3])
def test_pickle_round_trip_before_and_after_adapt(n_way, episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=n_way, k_shot=2, **FAST).fit(X, y, task_ids=t)
    if n_way is None:
        clone_ = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(clone_.predict_proba(X), est.predict_proba(X))
    est.adapt(X[t == 2], y[t == 2])
    clone_ = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone_.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(clone_.predict(X), est.predict(X))


def test_grid_search_routes_task_ids_to_fit_and_score(episodic):
    X, y, t = episodic
    est = ProtoNetClassifier(n_way=3, k_shot=2, early_stopping=False, **FAST)
    grid = {"n_components": [2, 4]}
    cv = GroupKFold(n_splits=2)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(est, grid, cv=cv).fit(X, y, groups=t, task_ids=t)
    for i, params in enumerate(search.cv_results_["params"]):
        for k, (train, test) in enumerate(cv.split(X, y, groups=t)):
            fitted = clone(est).set_params(**params)
            fitted.fit(X[train], y[train], task_ids=t[train])
            expected = fitted.score(X[test], y[test], task_ids=t[test])
            assert search.cv_results_[f"split{k}_test_score"][i] == expected


# -- bad input -----------------------------------------------------------------------
def test_bad_input_is_refused_clearly(episodic, class_tasks):
    X, y, t = episodic
    bad = X.copy()
    bad[np.flatnonzero(t == 5)[1], 3] = np.inf
    est = ProtoNetClassifier(n_way=3, k_shot=2, **FAST)
    with pytest.raises(ValueError, match="task 5 contains NaN or infinity"):
        est.fit(bad, y, task_ids=t)
    with pytest.raises(ValueError, match="n_way=4 are needed"):
        ProtoNetClassifier(n_way=4, k_shot=2, **FAST).fit(X, y, task_ids=t)
    est.fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="4 classes but the model is 3-way"):
        est.adapt(X[:8], [0, 1, 2, 3] * 2)
    with pytest.raises(ValueError, match="features"):
        est.adapt(X[:6, :5], y[:6])
    Xc, yc, tc = class_tasks
    shared = ProtoNetClassifier(k_shot=3, **FAST).fit(Xc, yc, task_ids=tc)
    with pytest.raises(ValueError, match=r"labels \[5\] that are not among classes_"):
        shared.adapt(Xc[:4], [0, 1, 5, 5])
    before = shared.predict_proba(Xc)
    with pytest.raises(ValueError):
        shared.adapt(Xc[:4, :2], [0, 1, 0, 1])
    np.testing.assert_array_equal(shared.predict_proba(Xc), before)


def test_shared_space_with_tasks_of_different_class_counts():
    # One task holds 4 of 12 classes, the others 2: the cross-validation fold
    # that holds it out gives episodes half as wide as the other folds, and
    # all folds still train side by side.
    rng = np.random.default_rng(0)
    centres = 3 * rng.normal(size=(12, 4))
    X, y, t = [], [], []
    for task in range(30):
        for c in rng.choice(12, 4 if task == 0 else 2, replace=False):
            X.append(centres[c] + 0.3 * rng.normal(size=(12, 4)))
            y += [c] * 12
            t += [task] * 12
    X, y, t = np.vstack(X), np.array(y), np.array(t)
    est = ProtoNetClassifier(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=40,
        k_shot=2,
        random_state=0,
    ).fit(X, y, task_ids=t)
    new = np.vstack([centres[c] + 0.3 * rng.normal(size=(5, 4)) for c in (1, 5, 9)])
    truth = np.repeat([1, 5, 9], 5)
    est.adapt(new[::5], truth[::5])
    assert (est.predict(new) == truth).mean() >= 0.6  # chance: 1 / 12


@pytest.mark.parametrize("cls", [ProtoNetClassifier, MetaRidgeClassifier])
def test_episodic_predict_before_adapt_says_what_to_do(cls, episodic):
    X, y, t = episodic
    est = cls(n_way=3, k_shot=3, **{**FAST, "max_iter": 2, "early_stopping": False})
    est.fit(X, y, task_ids=t)
    message = (
        r"^This episodic \(n_way\) model has no classes until it sees a support "
        r"set: call adapt\(X_support, y_support\) before predicting\.$"
    )
    for method in (est.predict, est.predict_proba, est.decision_function):
        with pytest.raises(ValueError, match=message):
            method(X[:2])
