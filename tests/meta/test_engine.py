"""The MAML family's engine: validation episodes and the meta-iteration loop.

At the end of every epoch with early stopping, the engine adapts to the
held-out episodes and records their query loss and score: checked here
against a plain loop over the tasks, written independently (adaptation in
train mode, prediction in eval mode, R² from scikit-learn).
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from skorch.callbacks import Callback
from torch import nn
from torch.func import functional_call

from sktransfer import MAMLRegressor
from sktransfer.datasets import make_related_regression_tasks
from sktransfer.meta._engine import MetaModule, pooled_loss, stack_episodes


class ModeShift(nn.Module):
    """Adds 1 in train mode only: tells the two modes apart deterministically.
    Every call's mode is noted in ``modes`` (shared by the copies fit makes)."""

    modes = []

    def forward(self, x):
        ModeShift.modes.append(self.training)
        return x + 1.0 if self.training else x


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), ModeShift(), nn.Tanh(), nn.Linear(6, 1))


class Capture(Callback):
    """What each epoch validated: the weights, the episodes, the record."""

    def initialize(self):
        self.epochs_ = []
        self.steps_ = []
        return self

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        assert dataset_train is net.pool_
        self.valid_ = dataset_valid

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        ModeShift.modes.clear()
        self.batch_ = (batch, training)

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        # Meta-training runs the network in train mode only.
        assert ModeShift.modes and all(ModeShift.modes)
        assert (batch, training) == self.batch_
        self.steps_.append((len(net.history), batch, training, float(loss.detach())))

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        assert dataset_train is net.pool_
        assert dataset_valid is self.valid_
        self.epochs_.append(
            {
                "weights": {
                    name: value.detach().clone()
                    for name, value in net.module_.net.named_parameters()
                },
                "episodes": dataset_valid,
                "n_steps": net.config_.n_adapt_steps,
                "valid_loss": net.history[-1, "valid_loss"],
                "valid_score": net.history[-1, "valid_score"],
                "iterations": list(net.get_iterator(None, training=True)),
                "per_epoch": net.config_.iterations_per_epoch,
            }
        )


def reference_validation(net, weights, episodes, n_steps, inner_lr):
    """Adapt each task by gradient steps on its support rows (train mode),
    then score its query rows (eval mode): mean loss and mean R² over tasks."""
    (X_s, y_s, w_s), (X_q, y_q, w_q) = episodes
    losses, scores = [], []
    for b in range(len(X_s)):
        params = {
            name: value.clone().requires_grad_() for name, value in weights.items()
        }
        net.train()
        for _ in range(n_steps):
            out = functional_call(net, params, (X_s[b],))
            per_row = ((out - y_s[b]) ** 2).mean(-1)
            loss = (per_row * w_s[b]).sum() / w_s[b].sum()
            grads = torch.autograd.grad(loss, list(params.values()))
            params = {
                name: value - inner_lr * grad
                for (name, value), grad in zip(params.items(), grads, strict=True)
            }
        net.eval()
        with torch.no_grad():
            out = functional_call(net, params, (X_q[b],))
        keep = w_q[b] > 0
        per_row = ((out - y_q[b]) ** 2).mean(-1)
        losses.append(float((per_row * w_q[b]).sum() / w_q[b].sum()))
        scores.append(
            r2_score(
                y_q[b][keep].numpy(), out[keep].numpy(), sample_weight=w_q[b][keep]
            )
        )
    return np.mean(losses), np.mean(scores)


def test_validation_adapts_in_train_mode_and_scores_in_eval_mode():
    X, y, t = make_related_regression_tasks(
        n_tasks=10, n_samples=15, n_features=3, random_state=0
    )
    capture = Capture()
    est = MAMLRegressor(
        module=make_net(),
        max_iter=4,
        meta_batch_size=4,
        k_shot=3,
        n_adapt_steps=2,
        inner_lr=0.3,
        early_stopping=True,
        n_iter_no_change=10,
        callbacks=[("capture", capture)],
        random_state=0,
    ).fit(X, y, task_ids=t)
    assert len(capture.epochs_) == 2
    net = make_net()
    for epoch in capture.epochs_:
        # skorch's iterator of an epoch: its meta-iteration numbers.
        assert epoch["iterations"] == list(range(epoch["per_epoch"])) == [0, 1, 2]
        loss, score = reference_validation(
            net, epoch["weights"], epoch["episodes"], epoch["n_steps"], 0.3
        )
        assert epoch["n_steps"] == 2
        assert epoch["valid_loss"] == pytest.approx(loss, rel=1e-4)
        assert epoch["valid_score"] == pytest.approx(score, rel=1e-4, abs=1e-5)
    # Every meta-iteration reached the callbacks, numbered within its epoch,
    # and an epoch's train_loss is the mean of its steps' losses.
    assert [step[:3] for step in capture.steps_] == [
        (1, 0, True),
        (1, 1, True),
        (1, 2, True),
        (2, 0, True),
    ]
    for epoch, row in enumerate(est.history_, start=1):
        losses = [step[3] for step in capture.steps_ if step[0] == epoch]
        assert row["train_batch_count"] == len(losses)
        assert row["train_loss"] == pytest.approx(np.mean(losses), rel=1e-6)
    assert est.n_iter_ == 4
    # Each epoch validated the weights it ended with, the second the final ones.
    final = dict(est.net_.module_.net.named_parameters())
    for name, value in capture.epochs_[-1]["weights"].items():
        assert torch.equal(value, final[name])


def test_the_meta_module_runs_the_network():
    net = make_net().eval()
    meta = MetaModule(net, ["3.weight", "3.bias"], 0.1, False)
    X = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(meta(X), net(X))
    assert meta.inner_update() == {"inner_lrs": {"3.weight": 0.1, "3.bias": 0.1}}


class StopAt(Callback):
    """Stops training (skorch's way: ``KeyboardInterrupt``) at the ``at``-th
    step's begin or end, noting the losses of the steps taken."""

    def __init__(self, at, when):
        self.at = at
        self.when = when

    def initialize(self):
        self.seen_ = 0
        self.losses_ = []
        return self

    def on_batch_begin(self, net, **kwargs):
        if self.when == "begin" and self.seen_ + 1 == self.at:
            raise KeyboardInterrupt

    def on_batch_end(self, net, loss=None, **kwargs):
        self.seen_ += 1
        self.losses_.append((len(net.history), float(loss.detach())))
        if self.when == "end" and self.seen_ == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "at, when, counts",
    [(5, "end", [3, 2]), (3, "end", [3]), (4, "begin", [3, 0]), (2, "begin", [1])],
)
def test_a_callback_stopping_within_an_epoch_records_the_steps_taken(at, when, counts):
    X, y, t = make_related_regression_tasks(
        n_tasks=10, n_samples=12, n_features=3, random_state=0
    )
    stop = StopAt(at, when)
    est = MAMLRegressor(
        hidden_layer_sizes=(6,),
        max_iter=9,
        meta_batch_size=4,
        k_shot=3,
        callbacks=[("stop", stop)],
        random_state=0,
    ).fit(X, y, task_ids=t)
    history = est.history_
    assert history[:, "train_batch_count"] == counts
    assert est.n_iter_ == sum(counts) == len(stop.losses_)
    for epoch, row in enumerate(history, start=1):
        losses = [loss for e, loss in stop.losses_ if e == epoch]
        if losses:
            assert row["train_loss"] == pytest.approx(np.mean(losses), rel=1e-6)
        else:  # stopped before the epoch's first step: no loss to record
            assert "train_loss" not in row
    # The model is whole: it adapts and predicts.
    est.adapt(X[t == 0][:5], y[t == 0][:5])
    assert np.isfinite(est.predict(X)).all()


# -- the closed-form family's held-out scoring ---------------------------------


@pytest.mark.parametrize("classification", [False, True])
def test_pooled_loss_is_the_weighted_mean_over_rows_and_units(classification):
    g = torch.Generator().manual_seed(0)
    n_members, n_episodes, n_rows, n_out = 2, 3, 4, 3
    # float64, as the closed-form kinds score.
    shape = (n_members, n_episodes, n_rows, n_out)
    outputs = torch.randn(shape, generator=g, dtype=torch.float64)
    if classification:
        target = torch.randint(n_out, shape[:-1], generator=g)
    else:
        target = torch.randn(shape, generator=g, dtype=torch.float64)
    weight = torch.rand(shape[:-1], generator=g, dtype=torch.float64) + 0.5
    weight[0, 1, 2:] = 0  # padding rows
    weight[1, 2] = 0  # an episode of padding only: its unit (4) is absent
    units = torch.tensor([[0, 1, 3], [1, 3, 4]])
    mean, per_unit = pooled_loss(outputs, target, weight, classification, units)

    sums, totals = {}, {}
    for m in range(n_members):
        for e in range(n_episodes):
            for r in range(n_rows):
                if classification:
                    loss = -torch.log_softmax(outputs[m, e, r], 0)[target[m, e, r]]
                else:
                    loss = ((outputs[m, e, r] - target[m, e, r]) ** 2).mean()
                unit = int(units[m, e])
                sums[unit] = sums.get(unit, 0.0) + float(weight[m, e, r] * loss)
                totals[unit] = totals.get(unit, 0.0) + float(weight[m, e, r])
    assert isinstance(mean, float)
    assert mean == pytest.approx(sum(sums.values()) / sum(totals.values()), rel=1e-9)
    present = [u for u in sorted(sums) if totals[u] > 0]
    assert present == [0, 1, 3]
    expected = torch.tensor([sums[u] / totals[u] for u in present], dtype=torch.float64)
    torch.testing.assert_close(per_unit, expected, rtol=1e-9, atol=0)
    # One row of weight 1: its own loss, as the mean and as its unit's.
    one = (outputs[:1, :1, :1], target[:1, :1, :1], torch.ones(1, 1, 1).double())
    mean, per_unit = pooled_loss(*one, classification, torch.zeros(1, 1).long())
    assert per_unit.shape == (1,)
    assert mean == pytest.approx(float(per_unit[0]), rel=1e-12)


def test_stack_episodes_pads_the_narrower_members_with_weight_zero():
    g = torch.Generator().manual_seed(0)

    def episode(n_support, n_query):
        def side(n):
            return (
                torch.randn(2, n, 3, generator=g),
                torch.randint(3, (2, n), generator=g),
                torch.ones(2, n),
            )

        return side(n_support), side(n_query)

    wide, narrow = episode(5, 4), episode(3, 4)
    support, query = stack_episodes([wide, narrow])
    for stacked, sides, rows in ((support, 0, 5), (query, 1, 4)):
        X, y, w = stacked
        assert X.shape == (2, 2, rows, 3) and y.shape == w.shape == (2, 2, rows)
        for m, member in enumerate((wide, narrow)):
            n = member[sides][0].shape[1]
            for got, part in zip((X, y, w), member[sides], strict=True):
                assert torch.equal(got[m, :, :n], part)
                assert not got[m, :, n:].any()  # zeros: padding of weight 0


def test_first_order_meta_training_takes_other_steps():
    # FOMAML drops the second-order terms: from the same start and the same
    # episodes, its meta-steps differ from MAML's.
    X, y, t = make_related_regression_tasks(
        n_tasks=6, n_samples=12, n_features=3, random_state=0
    )
    weights = {}
    for first_order in (False, True):
        est = MAMLRegressor(
            hidden_layer_sizes=(6,),
            max_iter=2,
            meta_batch_size=3,
            k_shot=3,
            n_inner_steps=2,
            first_order=first_order,
            random_state=0,
        ).fit(X, y, task_ids=t)
        weights[first_order] = torch.cat(
            [p.detach().ravel() for p in est.module_.parameters()]
        )
    assert (weights[True] - weights[False]).abs().max() > 1e-6


class StopAtEpochBegin(Callback):
    """Stops training (``KeyboardInterrupt``) as epoch ``epoch`` begins."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_callback_stopping_as_an_epoch_begins_keeps_the_steps_taken(epoch):
    # The epoch's history row has no batches: this raised KeyError.
    X, y, t = make_related_regression_tasks(
        n_tasks=6, n_samples=12, n_features=3, random_state=0
    )
    est = MAMLRegressor(
        hidden_layer_sizes=(4,),
        max_iter=6,
        meta_batch_size=3,
        k_shot=3,
        callbacks=[("stop", StopAtEpochBegin(epoch))],
        random_state=0,
    ).fit(X, y, task_ids=t)
    assert est.n_iter_ == 2 * (epoch - 1)
    est.adapt(X[t == 0][:5], y[t == 0][:5])
    assert np.isfinite(est.predict(X)).all()


def test_a_closed_form_fit_stopped_as_its_first_epoch_begins_keeps_its_start():
    X, y, t = make_related_regression_tasks(
        n_tasks=6, n_samples=12, n_features=3, random_state=0
    )
    from sktransfer.meta import MetaRidgeRegressor

    with pytest.warns(UserWarning, match="fewer than k_shot"):
        est = MetaRidgeRegressor(
            max_iter=6, callbacks=[("stop", StopAtEpochBegin(1))], random_state=0
        ).fit(X, y, task_ids=t)
    assert est.n_iter_ == 0
    est.adapt(X[t == 0][:5], y[t == 0][:5])
    assert np.isfinite(est.predict(X)).all()
