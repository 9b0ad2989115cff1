"""Early stopping of the closed-form meta-learners, against a reference.

A callback scores every model kind on the held-out episodes at the start and
at the end of every epoch, on its own (eval mode, the fold members only,
squared error or cross-entropy per held-out task in numpy), and keeps the
weights of the member trained on every task. From these, written here
independently, follow when each kind must stop (``n_iter_no_change``
scorings without an improvement larger than ``tol``), which iteration the
paired one-standard-error rule keeps (a trained one replaces the start model
only when better by two paired standard errors) and the weights kept: the
estimator must agree on all of them.
"""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sktransfer import MetaRidgeRegressor, ProtoNetClassifier

DIVERGED = "Floating-point under-/overflow occurred at "


class ModeShift(nn.Module):
    """Adds 1 in train mode only: scoring in train mode would show."""

    def forward(self, x):
        return x + 1.0 if self.training else x


def mode_net(n_features, n_components):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(n_features, 8), ModeShift(), nn.Tanh(), nn.Linear(8, n_components)
    )


def linear_tasks(n_tasks=12, n_rows=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_tasks * n_rows, 3))
    t = np.repeat(np.arange(n_tasks), n_rows)
    a = rng.normal(0.0, 2.0, n_tasks)
    b = np.array([2.0, -1.0, 0.5]) + rng.normal(0.0, 0.5, (n_tasks, 3))
    y = a[t] + np.einsum("rf,rf->r", X, b[t]) + rng.normal(0.0, 0.3, len(t))
    return X, y, t


def class_tasks(n_tasks=10, n_per_class=8, seed=0):
    rng = np.random.default_rng(seed)
    X, y, t = [], [], []
    for task in range(n_tasks):
        centres = rng.normal(0.0, 1.5, (3, 4))
        for c in range(3):
            X.append(centres[c] + rng.normal(size=(n_per_class, 4)))
            y += [c] * n_per_class
            t += [task] * n_per_class
    return np.vstack(X), np.array(y), np.array(t)


def unit_losses(outputs, query, units, classification):
    """Pooled loss of the fold members and mean loss per held-out unit."""
    target, weight = query[1].numpy(), query[2].numpy()
    outputs = outputs.double().numpy()
    if classification:
        shifted = outputs - outputs.max(-1, keepdims=True)
        log_proba = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        per_row = -np.take_along_axis(log_proba, target[..., None], -1)[..., 0]
    else:
        per_row = ((outputs - target) ** 2).mean(-1)
    loss = (per_row * weight).sum(-1).ravel()
    total = weight.sum(-1).ravel()
    units = units.numpy().ravel()
    per_unit = np.array(
        [loss[units == u].sum() / total[units == u].sum() for u in np.unique(units)]
    )
    return loss.sum() / total.sum(), per_unit


class Candidates(Callback):
    """Every kind scored independently at the start and after every epoch,
    with the weights of its last member (the one trained on every task)."""

    def __init__(self, start_is_a_model):
        self.start_is_a_model = start_is_a_model

    def initialize(self):
        self.scores_ = {}
        return self

    def score(self, net, valid, iteration):
        support, query, units = valid
        engine = net.module_
        last = engine.n_members - 1
        fold_query = tuple(part[:last] for part in query)
        training = engine.training
        engine.eval()
        with torch.no_grad():
            for name, kind in engine.kinds.items():
                outputs = kind.validation_outputs(support, query)[:last]
                loss, per_unit = unit_losses(
                    outputs, fold_query, units[:last], kind.classification
                )
                state = {k: v[last].clone() for k, v in kind.state_dict().items()}
                self.scores_.setdefault(name, []).append(
                    (iteration, loss, per_unit, state)
                )
        engine.train(training)

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if len(net.history) == 1 and self.start_is_a_model:
            self.score(net, dataset_valid, 0)

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        done = sum(row["train_batch_count"] for row in net.history)
        self.score(net, dataset_valid, done)


def clearly_better(per_unit, reference, n_errors):
    diff = per_unit - reference
    error = diff.std(ddof=1) / np.sqrt(len(diff))
    return diff.mean() < -n_errors * error


def expected_run(scores, patience, tol, start_is_a_model):
    """Per kind: the scorings it takes before it stops, and the kept one."""
    runs = {}
    for name, candidates in scores.items():
        best, left, taken = np.inf, patience, []
        for candidate in candidates:
            taken.append(candidate)
            loss = candidate[1]
            if loss < best - tol:
                left = patience
            else:
                left -= 1
            best = min(best, loss)
            if left == 0:
                break
        # The paired one-standard-error rule: the earliest candidate not
        # clearly worse (one error) than the best.
        lowest = min(range(len(taken)), key=lambda i: taken[i][1])
        kept = next(
            i
            for i, c in enumerate(taken)
            if not clearly_better(taken[lowest][2], c[2], 1.0)
        )
        if start_is_a_model and not clearly_better(taken[kept][2], taken[0][2], 2.0):
            kept = 0
        runs[name] = (taken, taken[kept])
    return runs


def check_against_reference(est, callback, start_is_a_model):
    runs = expected_run(
        callback.scores_, est.n_iter_no_change, est.tol, start_is_a_model
    )
    history = est.history_
    # Training ends when the last kind stops (or at max_iter).
    n_epochs = max(len(taken) - start_is_a_model for taken, _ in runs.values())
    assert len(history) == n_epochs
    for name, (taken, kept) in runs.items():
        trained = [c for c in taken if c[0] > 0]
        # A kind is scored every epoch until it stops, then never again.
        recorded = [row.get(f"valid_loss_{name}") for row in history]
        expected = [c[1] for c in trained] + [None] * (n_epochs - len(trained))
        assert [r is None for r in recorded] == [e is None for e in expected]
        np.testing.assert_allclose(
            [r for r in recorded if r is not None],
            [e for e in expected if e is not None],
            rtol=1e-5,
        )
        assert est.best_iteration_[name] == kept[0]
        kept_state = est.net_.module_.kinds[name].state_dict()
        assert set(kept_state) == set(kept[3])
        for key, value in kept[3].items():
            assert kept_state[key].shape[0] == 1
            torch.testing.assert_close(kept_state[key][0], value, rtol=0, atol=0)
    return runs


def test_ridge_early_stopping_follows_patience_tol_and_the_standard_error_rules():
    X, y, t = linear_tasks()
    callback = Candidates(start_is_a_model=True)
    est = MetaRidgeRegressor(
        module=mode_net(3, 2),
        n_components=2,
        meta_lr=5e-3,
        max_iter=600,
        k_shot=4,
        cv=3,
        n_iter_no_change=3,
        tol=1e-3,
        meta_batch_size=4,
        callbacks=[("candidates", callback)],
        random_state=0,
    ).fit(X, y, task_ids=t)
    runs = check_against_reference(est, callback, start_is_a_model=True)
    # The case is informative: one kind stopped before the other, and a
    # trained iteration was clearly better than the start.
    lengths = {name: len(taken) for name, (taken, _) in runs.items()}
    assert len(set(lengths.values())) == 2
    assert max(est.best_iteration_.values()) > 0
    # Scoring does not leave the network in eval mode: module_ is handed over
    # in train mode, as without early stopping (ModeShift would add 1).
    assert est.module_.training


@pytest.mark.parametrize("seed, meta_lr, tol", [(2, 0.005, 0.0), (0, 0.02, 0.05)])
def test_protonet_early_stopping_follows_patience_tol_and_the_one_error_rule(
    seed, meta_lr, tol
):
    X, y, t = class_tasks(seed=seed)
    callback = Candidates(start_is_a_model=False)
    est = ProtoNetClassifier(
        hidden_layer_sizes=(8,),
        n_components=4,
        meta_lr=meta_lr,
        max_iter=500,
        k_shot=2,
        n_way=3,
        cv=3,
        n_iter_no_change=2,
        tol=tol,
        meta_batch_size=4,
        callbacks=[("candidates", callback)],
        random_state=0,
    ).fit(X, y, task_ids=t)
    runs = check_against_reference(est, callback, start_is_a_model=False)
    assert est.n_iter_ < 500
    if seed == 2:
        # Informative: the kept epoch is not two errors better than the
        # first, which is no start model to fall back to, so it stays kept.
        taken, kept = runs["learned"]
        assert kept[0] > taken[0][0]
        assert not clearly_better(kept[2], taken[0][2], 2.0)


@pytest.mark.parametrize("tol", [0.0, 1e-3])
def test_a_model_that_no_longer_changes_stops_after_n_iter_no_change_epochs(tol):
    # A learning rate far below float32 resolution: every epoch scores the
    # same loss, which is no improvement, with tol=0 too.
    X, y, t = linear_tasks()
    for patience in (1, 3):
        est = MetaRidgeRegressor(
            n_components=0,
            meta_lr=1e-20,
            max_iter=1000,
            k_shot=4,
            cv=3,
            n_iter_no_change=patience,
            tol=tol,
            meta_batch_size=4,
            random_state=0,
        ).fit(X, y, task_ids=t)
        losses = est.history_[:, "valid_loss_linear"]
        assert len(set(losses)) == 1
        # The start is the first scoring: n_iter_no_change epochs follow it.
        assert len(losses) == patience
        assert est.best_iteration_ == {"linear": 0}


def diverged(where):
    return (
        f"{DIVERGED}{where}: the training loss or the weights became NaN or "
        "infinite, so training stopped. A smaller meta_lr, standardize=True (the "
        "default), or scaling the features and targets to similar ranges "
        "(StandardScaler or MinMaxScaler) might help."
    )


def test_a_start_model_that_cannot_be_scored_names_the_start_and_the_cure():
    # Unstandardised targets at 1e20: the empirical-Bayes start's noise
    # variance leaves float32 and its held-out solve fails.
    X, y, t = linear_tasks()
    est = MetaRidgeRegressor(
        n_components=0, standardize=False, max_iter=50, k_shot=4, cv=3
    )
    with pytest.raises(ValueError) as info:
        est.fit(X, y * 1e20, task_ids=t)
    assert str(info.value) == diverged("the start of meta-training (the initial model)")
    assert not hasattr(est, "n_iter_")


class HugeValidationInputs(Callback):
    """From epoch ``epoch`` on, the held-out support rows are at 1e30: their
    held-out solve leaves float32 while training goes on as before."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if len(net.history) == self.epoch:
            dataset_valid[0][0].fill_(1e30)


def test_a_model_that_cannot_be_scored_later_names_the_meta_iteration():
    X, y, t = linear_tasks()
    est = MetaRidgeRegressor(
        n_components=0,
        max_iter=200,
        k_shot=4,
        cv=3,
        meta_batch_size=4,
        callbacks=[("huge", HugeValidationInputs(epoch=2))],
        random_state=0,
    )
    with pytest.raises(ValueError) as info:
        est.fit(X, y, task_ids=t)
    # Epochs of 50 meta-iterations: the second ends at #100.
    assert str(info.value) == diverged("meta-iteration #100")
