"""MAML learns: on held-out tasks, adapting beats not adapting and training anew.

Every test meta-trains on some tasks, then on new tasks (or new classes) adapts
on a small support set and scores the remaining query rows. The same
support/query splits are scored with

- the adapted estimator (``adapt`` with its ``n_adapt_steps``);
- the unadapted estimator: the meta-learned weights (``n_adapt_steps = 0``);
- the same network (`sktransfer.nn.MLP`, same ``hidden_layer_sizes``) trained
  from scratch on the support set alone, in plain torch: Adam, learning rate
  1e-2, 300 full-batch steps, seeded per task.

The hyper-parameters were checked by hand with ``random_state`` 0, 1 and 2 (the
figures are in the comments); the tests fix one seed. Run with ``-s`` to see
the figures.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestCentroid

from sktransfer import (
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    ProtoNetClassifier,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_sinusoid_tasks,
)
from sktransfer.nn import MLP

# Each test meta-trains to a learning target (2-5 s): the whole module is slow.
pytestmark = pytest.mark.slow

SEED = 0
N_NEW_TASKS = 20


def _scratch_predict(X_support, y_support, X_query, *, hidden, n_outputs, seed):
    """Train `MLP` from scratch on the support set alone; raw query outputs.

    Plain torch: Adam (lr 1e-2), 300 full-batch steps, MSE for one output
    (regression), cross-entropy otherwise (y_support holds class indices).
    """
    torch.manual_seed(seed)
    net = MLP(
        n_features=X_support.shape[1],
        n_outputs=n_outputs,
        hidden_layer_sizes=hidden,
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    X = torch.as_tensor(X_support, dtype=torch.float32)
    if n_outputs == 1:
        y = torch.as_tensor(y_support, dtype=torch.float32)[:, None]
        criterion = torch.nn.MSELoss()
    else:
        y = torch.as_tensor(y_support, dtype=torch.int64)
        criterion = torch.nn.CrossEntropyLoss()
    for _ in range(300):
        optimizer.zero_grad()
        criterion(net(X), y).backward()
        optimizer.step()
    with torch.no_grad():
        return net(torch.as_tensor(X_query, dtype=torch.float32)).numpy()


def _adapted_and_unadapted(est, X_support, y_support, X_query):
    """Query predictions after `adapt`, and with the meta-learned weights."""
    adapted = est.adapt(X_support, y_support).predict(X_query)
    n_adapt_steps = est.n_adapt_steps
    est.n_adapt_steps = 0
    try:
        unadapted = est.adapt(X_support, y_support).predict(X_query)
    finally:
        est.n_adapt_steps = n_adapt_steps
    return adapted, unadapted


def test_maml_regressor_learns_sinusoids():
    # Seeds 0, 1, 2 (query MSE, mean over 20 new tasks): adapted 0.80 / 0.60 /
    # 0.32 against scratch 2.73 / 1.73 / 0.92. With y standardised inside, the
    # inner step of 0.01 that fitted raw y adapts too little (1.31 / 1.82 /
    # 1.31): the default 0.05 is used.
    hidden = (40, 40)
    k = 10
    X, y, t = make_sinusoid_tasks(n_tasks=500, n_samples=2 * k, random_state=SEED)
    est = MAMLRegressor(
        hidden_layer_sizes=hidden,
        inner_lr=0.05,
        n_inner_steps=1,
        n_adapt_steps=10,
        meta_lr=3e-3,
        meta_batch_size=25,
        max_iter=600,
        k_shot=k,
        random_state=SEED,
    ).fit(X, y, task_ids=t)

    # New tasks (another draw of amplitudes and phases); rows are i.i.d., so
    # the first k rows of a task are its support set and the rest its query.
    X_new, y_new, t_new = make_sinusoid_tasks(
        n_tasks=N_NEW_TASKS, n_samples=k + 50, random_state=SEED + 1000
    )
    mse = {"adapted": [], "unadapted": [], "scratch": []}
    for task in range(N_NEW_TASKS):
        X_task, y_task = X_new[t_new == task], y_new[t_new == task]
        X_s, y_s, X_q, y_q = X_task[:k], y_task[:k], X_task[k:], y_task[k:]
        adapted, unadapted = _adapted_and_unadapted(est, X_s, y_s, X_q)
        scratch = _scratch_predict(
            X_s, y_s, X_q, hidden=hidden, n_outputs=1, seed=task
        ).ravel()
        mse["adapted"].append(np.mean((adapted - y_q) ** 2))
        mse["unadapted"].append(np.mean((unadapted - y_q) ** 2))
        mse["scratch"].append(np.mean((scratch - y_q) ** 2))
    mse = {name: float(np.mean(v)) for name, v in mse.items()}
    print(f"\nsinusoids, {k}-shot query MSE:", mse)

    assert mse["adapted"] < 0.6 * min(mse["unadapted"], mse["scratch"])


def test_maml_classifier_learns_related_tasks():
    # Seeds 0, 1, 2 (query accuracy, mean over 20 new tasks, adapted /
    # unadapted / scratch): 0.84 / 0.71 / 0.72, 0.85 / 0.68 / 0.73,
    # 0.86 / 0.71 / 0.77.
    hidden = (40, 40)
    k = 5  # support rows per class
    n_classes = 2
    n_train = 200
    # One draw, so that the new tasks share the family's structure; task_shift
    # is doubled from its default so that one model does not fit all tasks.
    X, y, t = make_related_classification_tasks(
        n_tasks=n_train + N_NEW_TASKS,
        n_samples=n_classes * (k + 30),
        n_classes=n_classes,
        task_shift=2.0,
        random_state=SEED,
    )
    train = t < n_train
    est = MAMLClassifier(
        hidden_layer_sizes=hidden,
        inner_lr=0.3,
        n_inner_steps=1,
        n_adapt_steps=5,
        meta_lr=3e-3,
        meta_batch_size=25,
        max_iter=500,
        k_shot=k,
        random_state=SEED,
    ).fit(X[train], y[train], task_ids=t[train])

    rng = np.random.RandomState(SEED)
    accuracy = {"adapted": [], "unadapted": [], "scratch": []}
    for task in range(n_train, n_train + N_NEW_TASKS):
        X_task, y_task = X[t == task], y[t == task]
        support = np.concatenate(
            [
                rng.choice(np.flatnonzero(y_task == c), k, replace=False)
                for c in range(n_classes)
            ]
        )
        query = np.setdiff1d(np.arange(len(y_task)), support)
        X_s, y_s = X_task[support], y_task[support]
        X_q, y_q = X_task[query], y_task[query]
        adapted, unadapted = _adapted_and_unadapted(est, X_s, y_s, X_q)
        scratch = _scratch_predict(
            X_s, y_s, X_q, hidden=hidden, n_outputs=n_classes, seed=task
        ).argmax(axis=1)
        accuracy["adapted"].append(np.mean(adapted == y_q))
        accuracy["unadapted"].append(np.mean(unadapted == y_q))
        accuracy["scratch"].append(np.mean(scratch == y_q))
    accuracy = {name: float(np.mean(v)) for name, v in accuracy.items()}
    print(f"\nrelated classification, {k}-shot query accuracy:", accuracy)

    assert accuracy["adapted"] > max(accuracy["unadapted"], accuracy["scratch"]) + 0.05


# Two networks meta-trained on digits 0-4 and adapted to 5-way episodes of 5-9.
DIGITS_SETTINGS = {
    # A linear network: its meta-learned initialisation and step size give a
    # better start than training from scratch on the five support rows per
    # class. Seeds 0, 1, 2 (adapted / scratch / nearest centroid, 20 episodes):
    # 0.909 / 0.890 / 0.891, 0.889 / 0.872 / 0.879, 0.914 / 0.896 / 0.895.
    "linear": dict(
        hidden_layer_sizes=(),
        inner_lr=0.5,
        n_inner_steps=5,
        n_adapt_steps=50,
        meta_lr=3e-3,
        max_iter=300,
    ),
    # An MLP: it memorises the five meta-training classes and its features do
    # not carry to digits 5-9 (see the xfail below).
    "mlp": dict(
        hidden_layer_sizes=(64, 64),
        inner_lr=0.4,
        n_inner_steps=1,
        n_adapt_steps=50,
        meta_lr=1e-3,
        max_iter=300,
    ),
}


@pytest.fixture(scope="module", params=sorted(DIGITS_SETTINGS))
def digits_accuracy(request):
    """5-way 5-shot accuracy on digits 5-9 after meta-training on digits 0-4.

    Plain ``fit(X, y)`` in the episodic label space: every episode takes the
    five classes of y in a random order with k_shot + n_query rows each, the
    label space's own form for one labelled set of classes (pseudo-tasks cut
    from the same five classes would add no class diversity).
    """
    setting = DIGITS_SETTINGS[request.param]
    hidden = setting["hidden_layer_sizes"]
    k = 5
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    seen = y < 5
    # Pixels share one 0-1 scale already: statistics of digits 0-4 would blow
    # up pixels rarely lit there (up to 104 standard deviations on digits 5-9;
    # the linear network then adapts to 0.88 instead of 0.90 on seeds 0-2).
    est = MAMLClassifier(
        n_way=5,
        meta_batch_size=10,
        k_shot=k,
        n_query=15,
        standardize=False,
        random_state=SEED,
        **setting,
    ).fit(X[seen], y[seen])
    X_new, y_new = X[~seen], y[~seen]
    rng = np.random.RandomState(SEED)
    accuracy = {"adapted": [], "unadapted": [], "scratch": [], "nearest_centroid": []}
    for episode in range(N_NEW_TASKS):
        support = np.concatenate(
            [
                rng.choice(np.flatnonzero(y_new == c), k, replace=False)
                for c in range(5, 10)
            ]
        )
        query = np.setdiff1d(np.arange(len(y_new)), support)
        X_s, y_s, X_q, y_q = X_new[support], y_new[support], X_new[query], y_new[query]
        adapted, unadapted = _adapted_and_unadapted(est, X_s, y_s, X_q)
        scratch = 5 + _scratch_predict(
            X_s, y_s - 5, X_q, hidden=hidden, n_outputs=5, seed=episode
        ).argmax(axis=1)
        with warnings.catch_warnings():
            # Some pixels are constant within a class of a 5-row support set.
            warnings.simplefilter("ignore", UserWarning)
            centroid = NearestCentroid().fit(X_s, y_s).predict(X_q)
        accuracy["adapted"].append(np.mean(adapted == y_q))
        accuracy["unadapted"].append(np.mean(unadapted == y_q))
        accuracy["scratch"].append(np.mean(scratch == y_q))
        accuracy["nearest_centroid"].append(np.mean(centroid == y_q))
    accuracy = {name: float(np.mean(v)) for name, v in accuracy.items()}
    print(f"\ndigits 5-9, 5-way 5-shot query accuracy, {request.param}:", accuracy)
    return request.param, accuracy


def test_maml_digits_adapted_beats_unadapted(digits_accuracy):
    # Seeds 0, 1, 2: adapted 0.84 / 0.83 / 0.84 (mlp), 0.91 / 0.89 / 0.91
    # (linear); unadapted 0.19-0.35 (chance is 0.2).
    _, accuracy = digits_accuracy
    assert accuracy["adapted"] > accuracy["unadapted"] + 0.3


def test_maml_digits_adapted_beats_scratch(digits_accuracy, request):
    network, accuracy = digits_accuracy
    if network == "mlp":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=(
                    "Five meta-training classes are too few for an MLP: MAML "
                    "memorises digits 0-4 (1.00 after one step on new episodes "
                    "of 0-4, 0.27 on 5-9) and its features do not carry to 5-9: "
                    "adapted 0.83-0.84 vs from scratch 0.89-0.90 (seeds 0-2). "
                    "Features of an MLP trained on 0-4 by plain supervision do "
                    "no better (nearest centroid on them: 0.55-0.76 vs 0.89 on "
                    "pixels). ANIL, Meta-SGD, first-order, more inner steps, "
                    "wider layers and rotated digits as extra classes did not "
                    "change it."
                ),
            )
        )
    assert accuracy["adapted"] > accuracy["scratch"] + 0.005


# Closed-form meta-learners on the same split: meta-trained on digits 0-4 (five
# classes: too few for held-out folds of five-way episodes, so no early
# stopping), adapted in closed form to 5-way 5-shot episodes of digits 5-9.
# The RBF head has few meta-parameters (one lengthscale, one prior scale of
# the pixels' slopes) and sees the pixels on their own 0-1 scale (see the
# MAML test above for why not standardised). Seeds 0, 1, 2: 0.908 / 0.908 /
# 0.908; nearest centroid 0.882.
CLOSED_FORM_DIGITS = {
    "MetaRidgeClassifier(kernel='rbf')": (
        MetaRidgeClassifier,
        dict(kernel="rbf", n_components=0, standardize=False),
    ),
    "MetaRidgeClassifier": (MetaRidgeClassifier, {}),
    "ProtoNetClassifier": (ProtoNetClassifier, {}),
}
_PER_FEATURE_OVERFITS = (
    "Five meta-training classes do not teach either head a map that carries "
    "to digits 5-9. Training seeds 0, 1, 2 on the test's episodes: "
    "MetaRidgeClassifier 0.86 / 0.87 / 0.86 (kernel='linear' 0.85 / 0.86 / "
    "0.85, its untrained start 0.87 / 0.87 / 0.88), ProtoNetClassifier "
    "0.43 / 0.41 / 0.43 (its untrained embedding 0.54 / 0.46 / 0.51); "
    "nearest centroid 0.882, an MLP from scratch 0.887 (issue 7). Every "
    "per-feature meta-parameter (the diagonal prior included) overfits the "
    "five classes; kernel='rbf' ties them and passes."
)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=()
            if "kernel" in name
            else pytest.mark.xfail(strict=True, reason=_PER_FEATURE_OVERFITS),
        )
        for name in CLOSED_FORM_DIGITS
    ],
)
def test_closed_form_digits_beats_scratch_and_nearest_centroid(name):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    seen = y < 5
    estimator, params = CLOSED_FORM_DIGITS[name]
    est = estimator(
        n_way=5, early_stopping=False, max_iter=300, random_state=SEED, **params
    ).fit(X[seen], y[seen])
    X_new, y_new = X[~seen], y[~seen]
    rng = np.random.RandomState(SEED)
    accuracy = {"adapted": [], "scratch": [], "nearest_centroid": []}
    for episode in range(N_NEW_TASKS):
        support = np.concatenate(
            [
                rng.choice(np.flatnonzero(y_new == c), 5, replace=False)
                for c in range(5, 10)
            ]
        )
        query = np.setdiff1d(np.arange(len(y_new)), support)
        X_s, y_s, X_q, y_q = X_new[support], y_new[support], X_new[query], y_new[query]
        adapted = est.adapt(X_s, y_s).predict(X_q)
        scratch = 5 + _scratch_predict(
            X_s, y_s - 5, X_q, hidden=(64, 64), n_outputs=5, seed=episode
        ).argmax(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            centroid = NearestCentroid().fit(X_s, y_s).predict(X_q)
        accuracy["adapted"].append(np.mean(adapted == y_q))
        accuracy["scratch"].append(np.mean(scratch == y_q))
        accuracy["nearest_centroid"].append(np.mean(centroid == y_q))
    accuracy = {key: float(np.mean(v)) for key, v in accuracy.items()}
    print(f"\ndigits 5-9, 5-way 5-shot query accuracy, {name}:", accuracy)
    assert accuracy["adapted"] > accuracy["scratch"] + 0.005
    assert accuracy["adapted"] > accuracy["nearest_centroid"] + 0.005
