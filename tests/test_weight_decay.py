"""``weight_decay``: one meaning in every network family (AdamW's decoupled decay)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sktransfer import (
    DANNClassifier,
    DANNRegressor,
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from tests._marks import slow_except

# Small networks and few steps at a high learning rate, so that the decay
# (``lr * weight_decay`` of every weight per step) shows within a fraction of
# a second.
FAMILIES = {
    "maml": (
        MAMLRegressor,
        dict(hidden_layer_sizes=(16,), max_iter=20, meta_lr=1e-2, meta_batch_size=4),
    ),
    "closed_form": (
        MetaRidgeRegressor,
        dict(
            hidden_layer_sizes=(16,),
            max_iter=60,
            meta_lr=1e-2,
            meta_batch_size=4,
            k_shot=5,
            early_stopping=False,
            linear_ensemble=False,
        ),
    ),
    "finetune": (
        FineTuneRegressor,
        dict(hidden_layer_sizes=(16,), max_iter=20, lr=1e-2, adapt_max_iter=5),
    ),
    "dann": (
        DANNRegressor,
        dict(
            hidden_layer_sizes=(16,),
            domain_hidden_layer_sizes=(8,),
            max_iter=10,
            lr=1e-2,
            validation_fraction=None,
        ),
    ),
}


class _OptimiserGroups(Callback):
    """Hands ``sink`` the optimiser's parameter groups when training begins."""

    def __init__(self, sink):
        self.sink = sink

    def on_train_begin(self, net, **kwargs):
        self.sink(net.optimizer_.param_groups)


@pytest.fixture(scope="module")
def data():
    X, y, t = make_sinusoid_tasks(n_tasks=12, n_samples=20, random_state=0)
    return X, y, t


def _fit(family, data, **params):
    cls, fast = FAMILIES[family]
    X, y, t = data
    est = cls(**fast, random_state=0, **params)
    if family == "finetune":
        return est.fit(X, y)
    if family == "dann":
        domain = np.where(t < 6, 1, -1)
        return est.fit(X, np.where(domain > 0, y, np.nan), sample_domain=domain)
    return est.fit(X, y, task_ids=t)


def _decayed_weights(family, est):
    """The weights ``weight_decay`` is documented to shrink."""
    if family == "finetune":
        return list(est.pretrained_module_.parameters())
    return list(est.module_.parameters())


def _decay_by_parameter(groups):
    return {id(p): group["weight_decay"] for group in groups for p in group["params"]}


def _norm(params):
    return float(torch.sqrt(sum(p.detach().double().square().sum() for p in params)))


@pytest.mark.parametrize("family", slow_except(list(FAMILIES), "finetune"))
def test_weight_decay_shrinks_the_weights(family, data):
    plain = _fit(family, data, weight_decay=0.0)
    decayed = _fit(family, data, weight_decay=1.0)
    plain_norm = _norm(_decayed_weights(family, plain))
    assert _norm(_decayed_weights(family, decayed)) < 0.9 * plain_norm


@pytest.mark.parametrize("family", slow_except(list(FAMILIES), "maml"))
def test_the_optimiser_decays_exactly_the_documented_weights(family, data):
    seen = []
    est = _fit(
        family,
        data,
        weight_decay=0.3,
        callbacks=[("groups", _OptimiserGroups(seen.append))],
    )
    if family == "dann":  # the engine is not kept: its groups as training began
        trained, groups = est.module_, seen[0]
    else:
        trained, groups = est.net_.module_, est.net_.optimizer_.param_groups
    if family == "closed_form":
        # The learned network of every member (one per fold, and the last);
        # not the heads' prior and noise.
        documented = trained.kinds["learned"].body.parameters()
    else:
        documented = _decayed_weights(family, est)
    documented = {id(p) for p in documented}
    decay = _decay_by_parameter(groups)
    assert documented
    for p in trained.parameters():
        assert decay[id(p)] == (0.3 if id(p) in documented else 0.0)
    if family == "closed_form":
        assert len(documented) < len(list(trained.parameters()))


def test_maml_learned_step_sizes_are_not_decayed(data):
    X, y, t = data
    est = MAMLRegressor(
        hidden_layer_sizes=(8,),
        max_iter=2,
        learn_inner_lr=True,
        weight_decay=0.3,
        random_state=0,
    ).fit(X, y, task_ids=t)
    decay = _decay_by_parameter(est.net_.optimizer_.param_groups)
    network = {id(p) for p in est.module_.parameters()}
    step_sizes = list(est.net_.module_.inner_lrs.parameters())
    assert step_sizes
    assert all(decay[i] == 0.3 for i in network)
    assert all(decay[id(p)] == 0.0 for p in step_sizes)


def test_closed_form_default_decays_the_learned_network_by_1e_4(data):
    est = _fit("closed_form", data)
    assert est.weight_decay == 1e-4
    decay = _decay_by_parameter(est.net_.optimizer_.param_groups)
    body = est.net_.module_.kinds["learned"].body
    assert {decay[id(p)] for p in body.parameters()} == {1e-4}


def test_finetune_adapt_decays_but_frozen_weights_stay_bit_identical(data):
    X, y, t = data
    est = _fit("finetune", data, weight_decay=1.0)
    est.adapt(X[t == 0], y[t == 0])
    decay = _decay_by_parameter(est.adapt_net_.optimizer_.param_groups)
    assert set(decay.values()) == {1.0}
    pretrained = dict(est.pretrained_module_.named_parameters())
    adapted = dict(est.module_.named_parameters())
    head = list(adapted)[-2:]  # the output layer's weight and bias
    for name, value in adapted.items():
        if name in head:
            assert not torch.equal(value, pretrained[name])
        else:
            assert torch.equal(value, pretrained[name])


_ESTIMATORS = [
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
    FineTuneClassifier,
    FineTuneRegressor,
    DANNClassifier,
    DANNRegressor,
]


@pytest.mark.parametrize("cls", _ESTIMATORS, ids=lambda cls: cls.__name__)
def test_negative_weight_decay_is_refused_before_training(cls):
    X, y, _ = make_related_classification_tasks(n_tasks=2, random_state=0)
    est = cls(weight_decay=-1e-3)
    with pytest.raises(ValueError, match="'weight_decay' parameter"):
        est.fit(X, y)
    assert not hasattr(est, "n_iter_")
