"""FineTuneClassifier and FineTuneRegressor: pre-train, freeze, adapt, transfer."""

import ast
import copy
import pickle
import re
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from skorch.callbacks import Callback
from torch import nn

from sktransfer.datasets import make_related_classification_tasks
from sktransfer.finetune import FineTuneClassifier, FineTuneRegressor
from sktransfer.nn import MLP

FAST = dict(hidden_layer_sizes=(16,), max_iter=50, lr=0.01, random_state=0)


@pytest.fixture(scope="module")
def source_target():
    """Pooled source tasks and held-out target tasks with their own shift."""
    X, y, t = make_related_classification_tasks(
        n_tasks=36, n_samples=400, task_shift=3.0, random_state=0
    )
    source = (t >= 6) & (np.arange(len(t)) % 400 < 60)  # 30 tasks x 60 rows
    targets = [(X[t == i], y[t == i]) for i in range(6)]
    return X[source], y[source], t[source], targets


@pytest.fixture(scope="module")
def pretrained(source_target):
    X, y, _, _ = source_target
    return FineTuneClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)


def _adapted(est, X, y, **params):
    return pickle.loads(pickle.dumps(est)).set_params(**params).adapt(X, y)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- freezing and the head ------------------------------------------------
@pytest.mark.parametrize(
    "freeze, frozen",
    [
        ("body", {"0.weight", "0.bias"}),
        (1, {"0.weight", "0.bias"}),
        (["0.weight"], {"0.weight"}),
        (["*.bias"], {"0.bias", "2.bias"}),
        (None, set()),
    ],
)
def test_frozen_parameters_are_bit_identical(pretrained, source_target, freeze, frozen):
    X, y = source_target[3][0]
    before = _state(pretrained.pretrained_module_)
    est = _adapted(pretrained, X[:20], y[:20], freeze=freeze, head="keep")
    after = _state(est.module_)
    for name in before:
        assert torch.equal(before[name], after[name]) == (name in frozen), name
    # The pre-trained network itself is never touched by adapt.
    for name, value in _state(est.pretrained_module_).items():
        assert torch.equal(value, before[name])


def test_fresh_head_exactly_when_classes_differ(pretrained, source_target):
    X, y = source_target[3][0]
    head_before = _state(pretrained.pretrained_module_)["2.weight"]
    tiny = dict(adapt_lr=1e-12, adapt_max_iter=1)

    same = _adapted(pretrained, X[:20], y[:20], **tiny)
    assert same.classes_.tolist() == [0, 1]
    torch.testing.assert_close(same.module_[2].weight, head_before)

    relabelled = _adapted(pretrained, X[:20], np.where(y[:20] == 1, "b", "a"), **tiny)
    assert relabelled.classes_.tolist() == ["a", "b"]
    assert relabelled.module_[2].weight.shape == head_before.shape
    assert not torch.allclose(relabelled.module_[2].weight, head_before)
    assert set(relabelled.predict(X[20:])) <= {"a", "b"}

    three = np.arange(20) % 3
    more = _adapted(pretrained, X[:20], three, **tiny)
    assert more.module_[2].out_features == 3
    assert more.predict_proba(X[:5]).shape == (5, 3)

    reset = _adapted(pretrained, X[:20], y[:20], head="reset", **tiny)
    assert not torch.allclose(reset.module_[2].weight, head_before)

    # Refitting drops the adaptation and restores the source classes.
    more.partial_fit(*source_target[:2])
    assert more.classes_.tolist() == [0, 1]
    assert more.module_ is more.pretrained_module_


def test_adapt_twice_equals_once(pretrained, source_target):
    (Xa, ya), (Xb, yb) = source_target[3][:2]
    once = _adapted(pretrained, Xb[:20], yb[:20], freeze=None)
    twice = _adapted(pretrained, Xa[:20], ya[:20], freeze=None)
    twice.adapt(Xb[:20], yb[:20]).adapt(Xb[:20], yb[:20])
    for name, value in _state(once.module_).items():
        assert torch.equal(value, _state(twice.module_)[name])
    np.testing.assert_array_equal(once.predict_proba(Xb), twice.predict_proba(Xb))


def test_gradual_unfreezing_and_layer_learning_rates(pretrained, source_target):
    X, y = source_target[3][0]
    body = _state(pretrained.pretrained_module_)["0.weight"]

    still = _adapted(pretrained, X[:20], y[:20], unfreeze_every=2, adapt_max_iter=2)
    assert torch.equal(still.module_[0].weight, body)
    thawed = _adapted(pretrained, X[:20], y[:20], unfreeze_every=2, adapt_max_iter=3)
    assert not torch.equal(thawed.module_[0].weight, body)

    decayed = _adapted(
        pretrained, X[:20], y[:20], freeze=None, layer_lr_decay=1e-4, adapt_max_iter=5
    )
    step = (decayed.module_[0].weight - body).abs().max().item()
    head_step = (
        (decayed.module_[2].weight - pretrained.pretrained_module_[2].weight)
        .abs()
        .max()
        .item()
    )
    assert 0 < step < 1e-5 < head_step


def test_early_stopping_on_held_out_target_rows(pretrained, source_target):
    X, y = source_target[3][0]
    est = _adapted(
        pretrained,
        X[:200],
        y[:200],
        freeze=None,
        adapt_lr=0.05,
        adapt_max_iter=300,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=3,
    )
    assert est.adapt_n_iter_ < 300
    assert "valid_loss" in est.adapt_history_[-1]


# -- transfer ---------------------------------------------------------------
@pytest.mark.slow
def test_fine_tuning_transfers_and_the_advantage_shrinks_with_data(
    pretrained, source_target
):
    """Mean accuracy over 6 new tasks (task_shift=3), tested on 100 rows of each.

    Measured (seed 0, default adapt settings: frozen body, 100 epochs at
    lr=1e-3, standardised features): with 20 target rows, fine-tuned 0.76,
    the same network trained on the target rows alone 0.68, the source model
    without adaptation 0.68. With 300 target rows: fine-tuned (frozen body)
    0.78, fine-tuned (nothing frozen) 0.88, from scratch 0.88. (With
    standardize=False: 0.74, 0.69, 0.67; 0.79, 0.88, 0.89.) The test
    asserts that fine-tuning wins with 20 rows, and that with 300 rows its
    lead over training from scratch is gone: neither fine-tuned model beats
    the from-scratch one by more than 0.01 (the frozen body even costs
    accuracy once the target data suffice on their own).
    """
    scratch_params = dict(hidden_layer_sizes=(16,), random_state=0)
    scores = {}
    for X, y in source_target[3]:
        X_test, y_test = X[300:], y[300:]
        runs = {
            "source": pretrained,
            "tuned": _adapted(pretrained, X[:20], y[:20]),
            "scratch": FineTuneClassifier(**scratch_params).fit(X[:20], y[:20]),
            "tuned+": _adapted(pretrained, X[:300], y[:300]),
            "full+": _adapted(pretrained, X[:300], y[:300], freeze=None),
            "scratch+": FineTuneClassifier(**scratch_params).fit(X[:300], y[:300]),
        }
        for key, est in runs.items():
            scores.setdefault(key, []).append(est.score(X_test, y_test))
    mean = {key: round(float(np.mean(value)), 3) for key, value in scores.items()}
    print(mean)
    assert mean["tuned"] > mean["scratch"] + 0.03
    assert mean["tuned"] > mean["source"] + 0.03
    assert max(mean["tuned+"], mean["full+"]) - mean["scratch+"] < 0.01


# -- the contract shared with the MAML family -------------------------------
def test_three_task_forms_pool_to_the_same_model(source_target):
    X, y, t, _ = source_target
    pairs = [(X[t == i], y[t == i]) for i in np.unique(t)]
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    flat = FineTuneClassifier(**params).fit(X, y).predict_proba(X)
    by_ids = FineTuneClassifier(**params).fit(X, y, task_ids=t).predict_proba(X)
    tasks = FineTuneClassifier(**params).fit(pairs).predict_proba(X)
    np.testing.assert_array_equal(flat, by_ids)
    np.testing.assert_array_equal(flat, tasks)


def test_partial_fit_is_one_epoch_with_classes_on_first_call(source_target):
    X, y, _, _ = source_target
    est = FineTuneClassifier(hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X[y == 0], y[y == 0], classes=[0, 1])
    est.partial_fit(X, y)
    assert est.n_iter_ == 2 and len(est.history_) == 2
    assert est.classes_.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"labels \[7\].*classes="):
        est.partial_fit(X[:5], np.full(5, 7))


@pytest.mark.slow
def test_reproducible_and_leaves_global_rng_alone(source_target):
    X, y, _, targets = source_target
    state = torch.random.get_rng_state()
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=3)
    a = FineTuneClassifier(**params).fit(X, y).adapt(*targets[0])
    b = FineTuneClassifier(**params).fit(X, y).adapt(*targets[0])
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    assert torch.equal(state, torch.random.get_rng_state())


def test_pandas_feature_names_are_kept_and_checked(source_target):
    pd = pytest.importorskip("pandas")
    X, y, _, targets = source_target
    columns = [f"f{i}" for i in range(X.shape[1])]
    est = FineTuneClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    est.fit(pd.DataFrame(X, columns=columns), pd.Series(y))
    assert est.feature_names_in_.tolist() == columns
    X_t, y_t = targets[0]
    est.adapt(pd.DataFrame(X_t[:20], columns=columns), y_t[:20])
    with pytest.raises(ValueError, match="feature names"):
        est.adapt(pd.DataFrame(X_t[:20], columns=columns[::-1]), y_t[:20])


def test_pickle_round_trip_predicts_the_same(pretrained, source_target):
    X, y = source_target[3][0]
    est = _adapted(pretrained, X[:20], y[:20])
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.predict_proba(X), clone.predict_proba(X))


def test_pretrained_module_adapts_without_fit(pretrained, source_target):
    X, y = source_target[3][0]
    module = pretrained.pretrained_module_
    with pytest.raises(NotFittedError, match="pretrained=True"):
        FineTuneClassifier(module).adapt(X[:20], y[:20])
    est = FineTuneClassifier(module, pretrained=True, random_state=0)
    est.adapt(X[:20], y[:20])
    assert est.classes_.tolist() == [0, 1]
    assert torch.equal(est.module_[0].weight, module[0].weight)
    assert est.score(X[300:], y[300:]) > 0.7
    assert est.module_[2].out_features == 2  # same width: head kept
    three = FineTuneClassifier(module, pretrained=True).adapt(X[:21], np.arange(21) % 3)
    assert three.module_[2].out_features == 3


@pytest.mark.slow
def test_regressor_adapts_and_replaces_head_for_new_outputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    w = rng.normal(size=4)
    y = X @ w
    est = FineTuneRegressor(hidden_layer_sizes=(16,), lr=0.01, random_state=0)
    est.fit(X, y)
    X_t = rng.normal(size=(30, 4))
    y_t = X_t @ (w + 0.3 * rng.normal(size=4)) + 1.0
    before = est.score(X_t, y_t)
    est.set_params(freeze=None, adapt_lr=0.01).adapt(X_t[:20], y_t[:20])
    assert est.module_[2].out_features == 1
    assert est.score(X_t[20:], y_t[20:]) > before
    est.adapt(X_t, np.c_[y_t, -y_t])
    assert est.module_[2].out_features == 2
    assert est.predict(X_t[:3]).shape == (3, 2)
    est.partial_fit(X, y)
    assert est.predict(X_t[:3]).shape == (3,)


# -- refusals ----------------------------------------------------------------
@pytest.mark.parametrize(
    "bad_X, bad_y, params, match",
    [
        ("nan", None, {}, "NaN"),
        ("inf", None, {}, "infinity"),
        ("narrow", None, {}, "3 features, but FineTuneClassifier is expecting 10"),
        (None, "continuous", {}, "Unknown label type"),
        (None, "short", {}, "inconsistent numbers of samples"),
        (None, "unknown", {"head": "keep"}, r"labels \[9\] .*source classes"),
        (None, None, {"freeze": ["nope*"]}, "'nope\\*' matches no parameter"),
        (None, None, {"freeze": 5}, "only 2 parameterised layers"),
        (None, None, {"freeze": ["*"]}, "nothing is left"),
    ],
)
def test_bad_adapt_input_is_refused_and_changes_nothing(
    pretrained, source_target, bad_X, bad_y, params, match
):
    X, y = source_target[3][0]
    est = _adapted(pretrained, X[:20], y[:20]).set_params(**params)
    before = pickle.dumps(est)
    proba = est.predict_proba(X)
    X_bad, y_bad = X[:20].copy(), y[:20].copy()
    if bad_X == "nan":
        X_bad[3, 2] = np.nan
    elif bad_X == "inf":
        X_bad[3, 2] = np.inf
    elif bad_X == "narrow":
        X_bad = X_bad[:, :3]
    if bad_y == "continuous":
        y_bad = y_bad + 0.5
    elif bad_y == "short":
        y_bad = y_bad[:-1]
    elif bad_y == "unknown":
        y_bad[0] = 9
    with pytest.raises(ValueError, match=match):
        est.adapt(X_bad, y_bad)
    assert pickle.dumps(est) == before
    np.testing.assert_array_equal(est.predict_proba(X), proba)


def test_bad_fit_input_is_refused_before_training(source_target):
    X, y, _, _ = source_target
    X_nan = X.copy()
    X_nan[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FineTuneClassifier().fit(X_nan, y)
    with pytest.raises(ValueError, match="task 1 contains NaN"):
        FineTuneClassifier().fit([(X[:10], y[:10]), (X_nan[:10], y[:10])])
    with pytest.raises(ValueError, match="no CUDA GPU"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        FineTuneClassifier(device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="module cannot take"):
        FineTuneClassifier(nn.Linear(3, 2), max_iter=1).fit(X, y)


def test_gpu_model_pickles_to_cpu(source_target):
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    X, y, _, targets = source_target
    est = FineTuneClassifier(hidden_layer_sizes=(8,), max_iter=2, device="cuda")
    est.fit(X, y).adapt(*targets[0])
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(clone.predict_proba(X), est.predict_proba(X))


def test_default_module_is_the_package_mlp(pretrained):
    assert isinstance(pretrained.pretrained_module_, MLP)


# -- behaviours found by mutation testing (tools/mutation.sh) ----------------
def _rows(n=30, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    return X, (X[:, 0] > 0).astype(int), np.arange(n) % 3


@pytest.mark.parametrize("Estimator", [FineTuneClassifier, FineTuneRegressor])
def test_defaults_are_the_documented_ones_and_parameters_are_kept(Estimator):
    documented = {
        name: ast.literal_eval(value)
        for name, value in re.findall(
            r"^    (\w+) : .*default=(.+)$", Estimator.__doc__, re.M
        )
    }
    assert Estimator().get_params() == documented
    given = dict(
        module=MLP,
        module_params={"hidden_layer_sizes": (3,)},
        hidden_layer_sizes=(3,),
        lr=0.5,
        weight_decay=0.1,
        max_iter=7,
        batch_size=7,
        pretrained=True,
        freeze=1,
        head="keep",
        adapt_lr=0.25,
        adapt_max_iter=8,
        unfreeze_every=2,
        layer_lr_decay=0.5,
        early_stopping=True,
        validation_fraction=0.3,
        tol=0.5,
        n_iter_no_change=3,
        standardize=False,
        categorical_features=[0],
        device="cuda:1",
        random_state=5,
        verbose=2,
        callbacks=[],
    )
    assert set(given) == set(documented)
    assert Estimator(**given).get_params() == given


def test_fit_runs_max_iter_epochs_and_standardizes_with_the_training_data():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 10.0
    est = FineTuneRegressor(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    est.fit(X, y)
    assert est.n_iter_ == 4 and len(est.history_) == 4
    np.testing.assert_allclose(est.x_mean_, X.mean(axis=0))
    np.testing.assert_allclose(est.x_scale_, X.std(axis=0))
    np.testing.assert_allclose(est.y_mean_, [y.mean()])
    np.testing.assert_allclose(est.y_scale_, [y.std()])
    labels = np.where(y > 10.0, "high", "low")
    clf = FineTuneClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    clf.fit(X, labels)
    assert clf.classes_.tolist() == ["high", "low"]
    np.testing.assert_allclose(clf.x_mean_, X.mean(axis=0))


def test_refit_drops_the_adaptation_entirely():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 5.0
    params = dict(hidden_layer_sizes=(8,), max_iter=2, adapt_max_iter=2)
    adapted = FineTuneRegressor(**params, random_state=0).fit(X, y)
    plain = pickle.loads(pickle.dumps(adapted))
    # Two outputs: a fresh head learning with the target set's own statistics.
    adapted.adapt(X[:20], np.c_[y[:20], 100.0 - 3.0 * y[:20]])
    assert adapted.predict(X[:3]).shape == (3, 2)
    adapted.partial_fit(X, y)
    plain.partial_fit(X, y)
    for name in ("adapt_n_iter_", "adapt_y_mean_", "adapt_y_scale_"):
        assert not hasattr(adapted, name), name
    with pytest.raises(AttributeError, match="after adapt"):
        _ = adapted.adapt_history_
    assert adapted.predict(X).shape == (60,)
    np.testing.assert_array_equal(adapted.predict(X), plain.predict(X))


def test_early_stopping_hold_out_needs_a_training_row_and_stratifies_by_class():
    X, _, _ = _rows(10, 3)
    reg = FineTuneRegressor(
        hidden_layer_sizes=(4,), max_iter=2, early_stopping=True, random_state=0
    )
    reg.set_params(validation_fraction=0.9).fit(X, X[:, 0])  # one row trains
    assert "valid_loss" in reg.history_[-1]
    with pytest.raises(
        ValueError,
        match=r"^early_stopping holds out rows for validation, but "
        r"validation_fraction=0\.95 of 10 rows holds out 10 and leaves no row to "
        r"train on: lower validation_fraction, give more rows, or set "
        r"early_stopping=False\.$",
    ):
        reg.set_params(validation_fraction=0.95).fit(X, X[:, 0])

    # Two rows of each of three classes: half held out is one row of each.
    X6, y6 = X[:6], np.repeat([0, 1, 2], 2)
    for seed in range(5):
        clf = FineTuneClassifier(
            hidden_layer_sizes=(4,),
            max_iter=1,
            early_stopping=True,
            validation_fraction=0.5,
            random_state=seed,
        ).fit(X6, y6)
        _, valid = clf.net_.get_split_datasets(X6.astype(np.float32), y6)
        assert sorted(y6[valid.indices]) == [0, 1, 2], seed
    with pytest.raises(
        ValueError,
        match=r"but validation_fraction=0\.1 of 6 rows holds out 1 and trains on 5, "
        r"but a split stratified by class needs a row of each of the 3 classes on "
        r"both sides: raise validation_fraction, give more rows, or set "
        r"early_stopping=False\.$",
    ):
        clf.set_params(validation_fraction=0.1).fit(X6, y6)
    # 0.7 of 6 rows holds out 5 and trains on 1: too few the other way.
    with pytest.raises(
        ValueError,
        match=r"holds out 5 and trains on 1, but a split stratified by class needs "
        r"a row of each of the 3 classes on both sides: lower validation_fraction, "
        r"give more rows, or set early_stopping=False\.$",
    ):
        clf.set_params(validation_fraction=0.7).fit(X6, y6)
    # A class with a single row: no stratification, any split of the rows works.
    clf.set_params(validation_fraction=0.4).fit(X[:5], [0, 0, 1, 1, 2])
    assert "valid_loss" in clf.history_[-1]


def test_fresh_head_replaces_the_output_layer_wherever_it_sits():
    X, y, three = _rows()
    nested = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    est = FineTuneClassifier(nested, pretrained=True, adapt_max_iter=2)
    est.adapt(X, three)
    head = est.module_[0][2]
    assert isinstance(head, nn.Linear) and head.out_features == 3
    assert head.bias is not None
    assert torch.equal(est.module_[0][0].weight, nested[0][0].weight)
    assert est.predict_proba(X).shape == (30, 3)

    no_bias = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2, bias=False))
    est = FineTuneClassifier(no_bias, pretrained=True, adapt_max_iter=2)
    assert est.adapt(X, three).module_[2].bias is None
    assert est.module_[2].out_features == 3

    # A module that is itself the layer: its parameters are "weight" and "bias".
    linear = nn.Linear(4, 2)
    est = FineTuneClassifier(
        linear, pretrained=True, freeze=["bias"], head="keep", adapt_max_iter=3
    ).adapt(X, y)
    assert torch.equal(est.module_.bias, linear.bias)
    assert not torch.equal(est.module_.weight, linear.weight)

    for module, where in [
        (nn.Linear(4, 3), "'(the module itself)' is Linear"),
        (nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8)), "'1' is LayerNorm"),
    ]:
        message = (
            "A fresh head needs the module's output layer to be an nn.Linear, but "
            f"its last parameterised layer {where}; use head='keep' or a module "
            "whose output layer is nn.Linear."
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            FineTuneClassifier(module, pretrained=True).adapt(X, y)


def test_fresh_head_has_the_network_dtype_under_a_float64_default():
    X, y, three = _rows()
    est = FineTuneClassifier(
        hidden_layer_sizes=(8,), max_iter=2, adapt_max_iter=2, random_state=0
    ).fit(X, y)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        est.adapt(X, three)
    finally:
        torch.set_default_dtype(default)
    assert {p.dtype for p in est.module_.parameters()} == {torch.float32}
    assert est.predict_proba(X).shape == (30, 3)


def test_pretrained_module_paths():
    X, y, _ = _rows()
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    est = FineTuneClassifier(module, pretrained=True, adapt_max_iter=2).adapt(X, y)
    assert est.n_iter_ == 0  # nothing pre-trained here

    # fit trains the given network further; adapt starts from what fit learned.
    est = FineTuneClassifier(module, pretrained=True, max_iter=3, random_state=0)
    body = est.fit(X, y).pretrained_module_[0].weight.detach().clone()
    assert not torch.equal(body, module[0].weight)
    est.adapt(X, y)
    assert torch.equal(est.module_[0].weight, body) and est.n_iter_ == 3

    # Categorical columns are one-hot before a network trained elsewhere.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "x": X[:, 0],
            "c": pd.Categorical(np.array(["u", "v", "w"])[np.arange(30) % 3]),
        }
    )
    est = FineTuneClassifier(module, pretrained=True, adapt_max_iter=2)
    est.adapt(frame, y)
    assert est.is_categorical_.tolist() == [False, True]
    assert est.predict(frame).shape == (30,)

    three_d = nn.Sequential(nn.Linear(4, 6), nn.Unflatten(1, (2, 3)))
    with pytest.raises(
        ValueError,
        match=r"^The module maps \(2, 4\) inputs to \(2, 2, 3\); expected "
        r"\(n_samples, n_outputs\)\.$",
    ):
        FineTuneClassifier(three_d, pretrained=True).adapt(X, y)
    with pytest.raises(
        NotFittedError,
        match=r"^This FineTuneClassifier is not fitted: call fit first, or pass a "
        r"trained nn\.Module instance as module with pretrained=True to adapt it "
        r"without fit\.$",
    ):
        FineTuneClassifier(module).adapt(X, y)


def test_freeze_refusals_and_body_of_a_deeper_network():
    X, y, _ = _rows()
    deep = FineTuneClassifier(
        hidden_layer_sizes=(8, 8), max_iter=2, adapt_max_iter=2, random_state=0
    ).fit(X, y)
    before = _state(deep.pretrained_module_)
    after = _state(_adapted(deep, X, y, head="keep").module_)
    for name in before:  # both hidden layers frozen, the output layer trained
        assert torch.equal(before[name], after[name]) == (not name.startswith("4.")), (
            name
        )
    for freeze, message in [
        (3, "freeze=3 freezes every parameter: nothing is left for adapt to train."),
        (
            4,
            "freeze=4 but the module has only 3 parameterised layers: ['0', '2', '4'].",
        ),
        ([1], "freeze patterns must be strings, got 1."),
    ]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            _adapted(deep, X, y, freeze=freeze)
    root = FineTuneClassifier(nn.Linear(4, 2), pretrained=True, freeze=2)
    with pytest.raises(ValueError, match=re.escape("layers: ['(root)'].")):
        root.adapt(X, y)


def test_layer_learning_rates_decay_from_adapt_lr():
    X, y, _ = _rows()
    est = FineTuneClassifier(
        hidden_layer_sizes=(8, 8),
        max_iter=1,
        lr=1e-3,
        adapt_lr=0.1,
        adapt_max_iter=1,
        freeze=None,
        layer_lr_decay=0.5,
        random_state=0,
    ).fit(X, y)
    est.adapt(X, y)
    by_name = dict(est.adapt_net_.module_.named_parameters())
    lr_of = {
        id(p): group["lr"]
        for group in est.adapt_net_.optimizer_.param_groups
        for p in group["params"]
    }
    for name, expected in [("4.weight", 0.1), ("2.bias", 0.05), ("0.weight", 0.025)]:
        assert lr_of[id(by_name[name])] == pytest.approx(expected), name


def test_estimator_tags_that_scikit_learn_reads():
    assert get_tags(FineTuneClassifier()).classifier_tags.multi_class
    assert get_tags(FineTuneRegressor()).target_tags.multi_output
    assert not get_tags(FineTuneRegressor()).input_tags.allow_nan


def test_head_keep_refusals_name_the_way_out(pretrained, source_target):
    X, y = source_target[3][0]
    with pytest.raises(
        ValueError,
        match=r"labels \[9\] that are not among the source classes \[0, 1\]; use "
        r"head='auto' or 'reset' for a fresh head\.$",
    ):
        _adapted(pretrained, X[:3], [0, 1, 9], head="keep")
    module = pretrained.pretrained_module_
    with pytest.raises(
        ValueError,
        match=r"^head='keep' but the target has 3 classes and the pretrained module "
        r"2 outputs; use head='auto' for a fresh head\.$",
    ):
        FineTuneClassifier(module, pretrained=True, head="keep").adapt(X[:3], [0, 1, 2])
    est = FineTuneClassifier(hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X[:4], [0, 0, 1, 1], classes=[0, 1])
    with pytest.raises(
        ValueError,
        match=r"labels \[7\] that are not among the classes \[0, 1\] of the first "
        r"fit; pass all labels as classes= on the first partial_fit\.$",
    ):
        est.partial_fit(X[:2], [7, 7])


def test_regressor_head_and_target_statistics_at_adapt():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 5.0
    est = FineTuneRegressor(
        hidden_layer_sizes=(8,),
        max_iter=2,
        adapt_lr=1e-12,
        adapt_max_iter=1,
        random_state=0,
    ).fit(X, y)
    head = est.pretrained_module_[2].weight.detach().clone()
    # As many outputs as the source: the head and the source statistics stay.
    for target, shape in [(y[:20], (60,)), (y[:20, None], (60, 1))]:
        est.adapt(X[:20], target)
        torch.testing.assert_close(est.module_[2].weight, head)
        assert est.adapt_y_mean_ is None and est.predict(X).shape == shape
    est.set_params(head="reset").adapt(X[:20], y[:20])
    assert not torch.allclose(est.module_[2].weight, head)
    assert est.adapt_y_mean_ is None
    # Two outputs: a fresh head, learning with the target set's statistics.
    Y = np.c_[y[:20], 100.0 - 3.0 * y[:20]]
    est.set_params(head="auto").adapt(X[:20], Y)
    assert est.module_[2].out_features == 2 and est.predict(X).shape == (60, 2)
    np.testing.assert_allclose(est.adapt_y_mean_, Y.mean(axis=0))
    np.testing.assert_allclose(est.adapt_y_scale_, Y.std(axis=0))
    unscaled = FineTuneRegressor(
        hidden_layer_sizes=(8,), max_iter=1, adapt_max_iter=1, standardize=False
    )
    assert unscaled.fit(X, y).adapt(X[:20], Y).adapt_y_mean_ is None
    with pytest.raises(
        ValueError,
        match=r"^head='keep' but the target has 2 outputs and the source 1; use "
        r"head='auto' for a fresh head\.$",
    ):
        est.set_params(head="keep").adapt(X[:20], Y)
    with pytest.raises(
        ValueError, match=r"^y has 2 outputs but the model was fitted with 1\.$"
    ):
        est.partial_fit(X[:20], Y)
    est.partial_fit(X, y)  # back to the source's 1-D targets
    assert est.predict(X).shape == (60,)
    multi = FineTuneRegressor(hidden_layer_sizes=(8,), max_iter=1).fit(X, np.c_[y, y])
    assert multi.predict(X).shape == (60, 2)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_from_a_module_trained_elsewhere(n_outputs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.c_[X[:, 0], X[:, 1]][:, :n_outputs] * 10.0 + 50.0
    y = Y.ravel() if n_outputs == 1 else Y
    module = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, n_outputs))
    est = FineTuneRegressor(
        module, pretrained=True, adapt_lr=1e-12, adapt_max_iter=1, random_state=0
    ).adapt(X, y)
    # Same width: the head is kept and the targets are taken as they are.
    torch.testing.assert_close(est.module_[2].weight, module[2].weight)
    assert est.y_mean_ is None and est.adapt_y_mean_ is None
    assert est.predict(X).shape == y.shape
    est.partial_fit(X, y)  # pre-training goes on from the module
    assert est.predict(X).shape == y.shape
    # Another width: a fresh head, learning with the target set's statistics.
    other = np.c_[Y, Y][:, : 3 - n_outputs]
    other = other.ravel() if other.shape[1] == 1 else other
    est.adapt(X, other)
    assert est.module_[2].out_features == 3 - n_outputs
    np.testing.assert_allclose(
        est.adapt_y_mean_, np.reshape(other, (40, -1)).mean(axis=0)
    )


def test_regressor_fresh_head_predicts_in_the_target_units():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 5.0
    Y = np.c_[y, 1000.0 - 30.0 * y]
    est = FineTuneRegressor(
        hidden_layer_sizes=(8,),
        max_iter=2,
        freeze=None,
        adapt_lr=0.01,
        adapt_max_iter=100,
        random_state=0,
    ).fit(X, y)
    est.adapt(X[:40], Y[:40])
    error = np.abs(est.predict(X[40:]) - Y[40:]).mean(axis=0)
    assert (error < 0.5 * Y.std(axis=0)).all(), error


def test_training_batches_hold_out_nothing_unless_early_stopping():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(201, 3))
    y = (X[:, 0] > 0).astype(int)
    for n, sizes in [(150, [150]), (201, [200, 1])]:
        est = FineTuneClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
        est.fit(X[:n], y[:n])
        batches = est.history_[-1, "batches"]
        assert [b["train_batch_size"] for b in batches] == sizes
        assert "valid_loss" not in est.history_[-1]


def test_random_state_seeds_the_shuffling_and_the_validation_split():
    X, y, _ = _rows(40, 4)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def adapted(seed):
        est = FineTuneClassifier(
            module,
            pretrained=True,
            freeze=None,
            batch_size=5,
            adapt_max_iter=2,
            random_state=seed,
        )
        return est.adapt(X, y).predict_proba(X)

    np.testing.assert_array_equal(adapted(0), adapted(0))
    assert not np.allclose(adapted(0), adapted(1))

    def held_out(seed):
        est = FineTuneClassifier(
            hidden_layer_sizes=(4,),
            max_iter=1,
            early_stopping=True,
            validation_fraction=0.25,
            random_state=seed,
        ).fit(X, y)
        return sorted(est.net_.get_split_datasets(X.astype(np.float32), y)[1].indices)

    assert held_out(0) == held_out(0)
    assert held_out(0) != held_out(1)


class _EpochCounter(Callback):
    """A skorch callback counting the epochs it sees."""

    def initialize(self):
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_each_training_gets_a_fresh_copy_of_the_callbacks():
    X, y, _ = _rows()
    counter = _EpochCounter()
    est = FineTuneClassifier(
        hidden_layer_sizes=(4,),
        max_iter=3,
        adapt_max_iter=2,
        callbacks=[("count", counter)],
        random_state=0,
    ).fit(X, y)
    assert dict(est.net_.callbacks_)["count"].epochs == 3
    assert dict(est.adapt(X, y).adapt_net_.callbacks_)["count"].epochs == 2
    assert not hasattr(counter, "epochs")  # the parameter itself is untouched


def test_verbose_levels(capsys):
    X, y, _ = _rows()
    outputs = []
    for verbose in (0, 1, 2):
        FineTuneClassifier(
            hidden_layer_sizes=(4,), max_iter=2, verbose=verbose, random_state=0
        ).fit(X, y)
        outputs.append(capsys.readouterr())
    assert outputs[0].out == outputs[0].err == ""
    assert "train_loss" not in outputs[1].out and outputs[1].err != ""
    assert "train_loss" in outputs[2].out and outputs[2].err != ""


def test_early_stopping_on_a_small_target_set_warns_at_the_callers_line():
    X, y, three = _rows(60)
    est = FineTuneClassifier(
        hidden_layer_sizes=(4,),
        max_iter=2,
        adapt_max_iter=4,
        early_stopping=True,
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    message = (
        "The target set is too small for early stopping: validation_fraction=0.25 "
        "of 6 rows holds out 2 and trains on 4, but a split stratified by class "
        "needs a row of each of the 3 classes on both sides: raise "
        "validation_fraction. Adapting without "
        "early stopping, for adapt_max_iter=4 epochs on all rows."
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$") as record:
        est.adapt(X[:6], three[:6])
    # The warning names the caller's line (mutmut's trampolines add frames of
    # their own, so the line is checked in plain runs only).
    if "mutmut" not in sys.modules:
        assert record[0].filename == __file__
    assert est.adapt_n_iter_ == 4 and "valid_loss" not in est.adapt_history_[-1]
    # Enough rows: early stopping holds rows out, without a warning.
    reg = FineTuneRegressor(
        hidden_layer_sizes=(4,), max_iter=1, adapt_max_iter=2, early_stopping=True
    ).fit(X, X[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.adapt(X[:20], X[:20, 1])
    assert "valid_loss" in reg.adapt_history_[-1]


def test_a_float64_module_is_never_converted_in_place():
    X, y, _ = _rows()
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    try:
        FineTuneClassifier(module, pretrained=True, adapt_max_iter=1).adapt(X, y)
    except ValueError:
        pass  # whether or not it is accepted, the user's module stays as it was
    assert {p.dtype for p in module.parameters()} == {torch.float64}


class _InfiniteWeightAt(Callback):
    """Makes a weight infinite after each training batch of epoch ``at``: the
    losses stay finite, only the weights show the divergence."""

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.at:
            with torch.no_grad():
                next(net.module_.parameters()).view(-1)[0] = float("inf")


def test_divergence_guard_checks_the_weights_and_names_the_learning_rate():
    X, y, _ = _rows()
    est = FineTuneClassifier(
        hidden_layer_sizes=(4,),
        max_iter=2,
        callbacks=[("inf", _InfiniteWeightAt(3))],
        random_state=0,
    ).fit(X, y)
    expected = est.predict_proba(X)
    with pytest.raises(
        ValueError,
        match=r"^Floating-point under-/overflow occurred at epoch #3: .* A smaller "
        r"lr, ",
    ):
        est.partial_fit(X, y)
    # The weights of the last finite epoch are kept.
    np.testing.assert_array_equal(est.predict_proba(X), expected)
    assert all(torch.isfinite(p).all() for p in est.net_.module_.parameters())
    est.set_params(callbacks=[("inf", _InfiniteWeightAt(1))])
    with pytest.raises(ValueError, match=r"at epoch #1: .* A smaller adapt_lr, "):
        est.adapt(X, y)
    est.set_params(callbacks=[("inf", _InfiniteWeightAt(2))])
    with pytest.raises(ValueError, match=r"at epoch #2: .* A smaller lr, "):
        est.fit(X, y)


def test_task_ids_are_validated_like_the_rows():
    X, y, three = _rows()
    est = FineTuneClassifier(hidden_layer_sizes=(4,), max_iter=1)
    with pytest.raises(ValueError, match="same number of rows"):
        est.fit(X, y, task_ids=three[:-1])
    X_nan = X.copy()
    X_nan[4, 0] = np.nan  # row 4 is in task 1
    with pytest.raises(ValueError, match="task 1 contains NaN"):
        est.fit(X_nan, y, task_ids=three)


def test_divergence_guard_checks_the_loss():
    # Targets of 1e20 without standardisation: the squared error overflows
    # float32 while the gradients, and so the weights, stay finite.
    X, _, _ = _rows()
    est = FineTuneRegressor(hidden_layer_sizes=(4,), max_iter=2, standardize=False)
    with pytest.raises(ValueError, match=r"at epoch #1: the training loss or"):
        est.fit(X, X[:, 0] * 1e20)


def test_fresh_head_of_a_deeper_network_is_its_output_layer():
    X, y, three = _rows()
    est = FineTuneClassifier(
        hidden_layer_sizes=(8, 8), max_iter=1, adapt_max_iter=1, random_state=0
    ).fit(X, y)
    est.adapt(X, three)
    assert [est.module_[i].out_features for i in (0, 2, 4)] == [8, 8, 3]
    assert est.predict_proba(X).shape == (30, 3)


# -- modules that are refused or taken as they are (bugs found by mutation) -----
def test_a_float64_pretrained_module_is_adapted_in_float32_and_left_alone():
    X, y, _ = _rows(40, 4)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    before = copy.deepcopy(module.state_dict())
    params = dict(pretrained=True, adapt_max_iter=5, random_state=0)
    est = FineTuneClassifier(module, **params).adapt(X, y)
    float32 = FineTuneClassifier(copy.deepcopy(module).float(), **params).adapt(X, y)
    # Adapted as the same module given in float32; the user's module untouched.
    np.testing.assert_allclose(
        est.predict_proba(X), float32.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    for name, value in module.state_dict().items():
        assert value.dtype == torch.float64
        assert torch.equal(value, before[name])


@pytest.mark.parametrize("pretrained", [True, False])
def test_a_module_without_parameters_is_refused_with_the_package_message(
    pretrained,
):
    X, y, _ = _rows(20, 2)
    est = FineTuneClassifier(nn.Identity(), pretrained=pretrained, max_iter=1)
    with pytest.raises(
        ValueError, match=r"^The module has no parameters to fine-tune\.$"
    ):
        if pretrained:
            est.adapt(X, y)
        else:
            est.fit(X, y)
    assert not hasattr(est, "net_")
