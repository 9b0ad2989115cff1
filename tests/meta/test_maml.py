"""Behaviour of MAMLClassifier / MAMLRegressor that users rely on."""

import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

import sktransfer
from sktransfer import MAMLClassifier, MAMLRegressor, TaskSet
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.meta._inner_loop import adapt, batched_forward, expand_params
from tests.test_common import INIT_PARAMS

FAST = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0)


def _class_tasks(n_tasks=4, rows=20, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(rows, n_features)), np.tile([0, 1], rows // 2))
        for _ in range(n_tasks)
    ]


@pytest.fixture(scope="module")
def sinusoids():
    return make_sinusoid_tasks(n_tasks=30, n_samples=20, random_state=0)


# -- the three task forms ------------------------------------------------------
def test_three_task_forms_mean_the_same(sinusoids):
    X, y, t = sinusoids
    pairs = TaskSet.from_arrays(X, y, t).to_pairs()
    flat = MAMLRegressor(**FAST).fit(X, y, task_ids=t)
    from_pairs = MAMLRegressor(**FAST).fit(pairs)
    from_taskset = MAMLRegressor(**FAST).fit(TaskSet(pairs))
    np.testing.assert_array_equal(flat.predict(X), from_pairs.predict(X))
    np.testing.assert_array_equal(flat.predict(X), from_taskset.predict(X))


def test_plain_fit_is_one_task_and_shrinks_to_small_data():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3, 2)), rng.normal(size=3)
    est = MAMLRegressor(k_shot=5, **FAST).fit(X, y)
    assert est.predict(X).shape == (3,)
    # Down to one row: its own support and query, weight-0 padding apart.
    est.fit(X[:1], y[:1])
    assert np.isfinite(est.predict(X)).all()


def test_pandas_feature_names_are_kept_and_checked():
    pd = pytest.importorskip("pandas")  # in the dev extra
    X, y, t = make_related_classification_tasks(
        n_tasks=6, n_samples=40, n_features=3, random_state=0
    )
    frame = pd.DataFrame(X, columns=["age", "dose", "weight"])
    est = MAMLClassifier(**FAST).fit(frame, y, task_ids=t)
    np.testing.assert_array_equal(est.feature_names_in_, ["age", "dose", "weight"])
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    pairs = [(frame[t == i], y[t == i]) for i in range(6)]
    est = MAMLClassifier(**FAST).fit(pairs)
    np.testing.assert_array_equal(est.feature_names_in_, ["age", "dose", "weight"])
    with pytest.raises(ValueError, match="task 1 has feature names"):
        MAMLClassifier(**FAST).fit(
            [pairs[0], (pairs[1][0].rename(columns={"age": "x"}), pairs[1][1])]
        )


def test_float64_and_list_inputs():
    tasks = [(X.tolist(), y.tolist()) for X, y in _class_tasks()]
    est = MAMLClassifier(k_shot=3, **FAST).fit(tasks)
    assert est.predict(tasks[0][0]).dtype == np.asarray(tasks[0][1]).dtype


# -- bad input ---------------------------------------------------------------
def test_bad_tasks_are_refused_naming_the_task():
    est = MAMLClassifier(**FAST)
    tasks = _class_tasks()
    tasks[2][0][3, 1] = np.nan
    with pytest.raises(ValueError, match="task 2 contains NaN or infinity"):
        est.fit(tasks)
    tasks = _class_tasks()
    tasks[1] = (np.zeros((20, 4)), tasks[1][1])
    with pytest.raises(ValueError, match="task 1 has 4 features but task 0 has 3"):
        est.fit(tasks)
    with pytest.raises(ValueError, match="task list is empty"):
        est.fit([])
    X, y, _ = make_related_classification_tasks(n_tasks=4, random_state=0)
    t = np.repeat(["north", "south", "east", "west"], len(X) // 4)
    X[len(X) // 2 + 1, 0] = np.inf
    with pytest.raises(ValueError, match="task 'east' contains NaN or infinity"):
        est.fit(X, y, task_ids=t)


def test_short_tasks_give_the_rows_they_have_and_single_rows_are_left_out():
    # A class of 3 rows for k_shot + n_query = 6: the task trains with what it
    # has (one warning counts such tasks); a task of one row is left out.
    est = MAMLClassifier(k_shot=3, **FAST)
    tasks = _class_tasks()
    tasks[3] = (tasks[3][0][:6], tasks[3][1][:6])
    with pytest.warns(UserWarning, match="1 of 4 tasks have fewer than k_shot"):
        est.fit(tasks)
    assert est.n_iter_ == FAST["max_iter"]
    reg = MAMLRegressor(k_shot=5, **FAST)
    X = np.random.default_rng(0).normal(size=(31, 2))
    with pytest.warns(UserWarning, match="1 of 3 tasks .* 1 with a single row are"):
        reg.fit(X, X[:, 0], task_ids=[0] * 25 + [1] * 5 + [2])
    np.testing.assert_array_equal(reg.predict(X[:2]).shape, (2,))


def test_adapt_refuses_unknown_labels_and_too_many_classes():
    est = MAMLClassifier(k_shot=3, **FAST).fit(_class_tasks())
    with pytest.raises(ValueError, match=r"labels \[2\] that are not among classes_"):
        est.adapt(np.zeros((4, 3)), [0, 1, 2, 2])
    episodic = MAMLClassifier(n_way=2, k_shot=2, **FAST).fit(_class_tasks())
    with pytest.raises(ValueError, match="call adapt"):
        episodic.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 classes but the model is 2-way"):
        episodic.adapt(np.zeros((6, 3)), [0, 1, 2, 0, 1, 2])


def test_failed_call_leaves_the_fitted_estimator_as_it_was():
    est = MAMLClassifier(k_shot=3, **FAST).fit(_class_tasks())
    X = _class_tasks(seed=1)[0][0]
    est.adapt(X[:6], [0, 1] * 3)
    before = pickle.dumps(est)
    pred = est.predict(X)
    with pytest.raises(ValueError):
        est.adapt(X[:4], [0, 1, 5, 5])
    bad = _class_tasks()
    bad[0][0][0, 0] = np.nan
    with pytest.raises(ValueError):
        est.fit(bad)
    with pytest.raises(ValueError):
        est.partial_fit(np.zeros((20, 4)), np.tile([0, 1], 10), task_ids=[0] * 20)
    np.testing.assert_array_equal(est.predict(X), pred)
    assert pickle.dumps(est) == before


def test_batch_norm_is_refused():
    module = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="batch normalisation is not supported"):
        MAMLRegressor(module=module, **FAST).fit(np.zeros((20, 2)), np.zeros(20))


def test_module_with_wrong_output_size_is_refused():
    with pytest.raises(ValueError, match=r"expected \(2, 1\)"):
        MAMLRegressor(module=nn.Linear(2, 3), **FAST).fit(
            np.zeros((20, 2)), np.zeros(20)
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error_and_auto_falls_back():
    X, y = np.zeros((20, 2)), np.zeros(20)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        MAMLRegressor(device="cuda", **FAST).fit(X, y)
    est = MAMLRegressor(device="auto", **FAST).fit(X, y)
    assert next(est.module_.parameters()).device.type == "cpu"


# -- modules -----------------------------------------------------------------
class _Residual(nn.Module):
    def __init__(self, n_features=1, n_outputs=1, width=8):
        super().__init__()
        self.inp = nn.Linear(n_features, width)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, n_outputs)

    def forward(self, X):
        h = self.inp(X)
        return self.out(h + torch.tanh(self.norm(h)))


def test_module_class_and_instance(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(module=_Residual, module_params={"width": 6}, **FAST)
    est.fit(X, y, task_ids=t)
    assert est.module_.inp.out_features == 6
    instance = _Residual(n_features=1, n_outputs=1)
    start = {k: v.clone() for k, v in instance.state_dict().items()}
    a = MAMLRegressor(module=instance, **FAST).fit(X, y, task_ids=t)
    b = MAMLRegressor(module=instance, **FAST).fit(X, y, task_ids=t)
    # the user's instance is copied, never trained in place
    for k, v in instance.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


# -- adapt semantics -----------------------------------------------------------
def test_adapt_always_starts_from_the_meta_weights(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(**FAST).fit(X, y, task_ids=t)
    meta = est.predict(X)
    Xs, ys = X[t == 0][:5], y[t == 0][:5]
    once = est.adapt(Xs, ys).predict(X)
    est.adapt(X[t == 1][:5], y[t == 1][:5])
    twice = est.adapt(Xs, ys).predict(X)
    np.testing.assert_array_equal(once, twice)
    assert not np.allclose(once, meta)
    est.n_adapt_steps = 0
    np.testing.assert_array_equal(est.adapt(Xs, ys).predict(X), meta)


def test_episodic_classes_come_from_the_support_set():
    X, y, t = make_related_classification_tasks(
        n_tasks=5, n_samples=60, n_classes=3, random_state=0
    )
    est = MAMLClassifier(n_way=2, k_shot=2, **FAST).fit(X, y, task_ids=t)
    support = np.isin(y, [0, 2]) & (t == 0)
    labels = np.where(y[support] == 0, "cat", "dog")
    est.adapt(X[support], labels)
    np.testing.assert_array_equal(est.classes_, ["cat", "dog"])
    proba = est.predict_proba(X[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert set(est.predict(X)) <= {"cat", "dog"}


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"first_order": True},
        {"learn_inner_lr": True},
        {"learn_inner_lr": "lstm"},
        {"adapt_layers": "head"},
        {"adapt_layers": "head", "learn_inner_lr": "lstm", "first_order": True},
        {"n_inner_steps": 2, "n_adapt_steps": 3},
        {"n_inner_steps": 2, "n_adapt_steps": 3, "learn_inner_lr": "lstm"},
    ],
)
def test_variants_fit_and_adapt(sinusoids, variant):
    X, y, t = sinusoids
    est = MAMLRegressor(**{**FAST, **variant}).fit(X, y, task_ids=t)
    est.adapt(X[t == 0][:5], y[t == 0][:5])
    if variant.get("adapt_layers") == "head":
        head = {"2.weight", "2.bias"} if len(est.module_) == 3 else set()
        for name, value in est.module_.named_parameters():
            changed = not torch.equal(value, est.adapted_params_[name])
            assert changed == (name in head), name
    if variant.get("learn_inner_lr") is True:
        lrs = est.net_.module_.inner_lrs
        assert len(lrs) == 4
        assert not all(
            torch.allclose(v, torch.full_like(v, est.inner_lr)) for v in lrs.values()
        )


# -- reproducibility, pickling, partial_fit, history -------------------------------
def test_same_random_state_gives_bit_identical_predictions(sinusoids):
    X, y, t = sinusoids
    state = torch.random.get_rng_state()
    a = MAMLRegressor(**FAST).fit(X, y, task_ids=t).adapt(X[:5], y[:5]).predict(X)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    b = MAMLRegressor(**FAST).fit(X, y, task_ids=t).adapt(X[:5], y[:5]).predict(X)
    np.testing.assert_array_equal(a, b)
    c = MAMLRegressor(**{**FAST, "random_state": 1}).fit(X, y, task_ids=t).predict(X)
    assert not np.array_equal(a, c)


def test_pickle_round_trip_keeps_adaptation(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(**FAST).fit(X, y, task_ids=t).adapt(X[:5], y[:5])
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


def test_partial_fit_continues_meta_training(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(**FAST)
    est.partial_fit(X, y, task_ids=t)
    assert est.n_iter_ == 2  # one pass: ceil(30 tasks / 25 per meta-batch)
    first = est.predict(X)
    est.partial_fit(X[t < 10], y[t < 10], task_ids=t[t < 10])
    assert est.n_iter_ == 3
    assert len(est.history_) == 2
    assert not np.array_equal(first, est.predict(X))


def test_partial_fit_classes_and_unknown_labels():
    tasks = _class_tasks()
    est = MAMLClassifier(k_shot=3, **FAST)
    est.partial_fit(tasks, classes=[0, 1, 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"Labels \[7\] are not among classes_"):
        est.partial_fit([(tasks[0][0], np.full(20, 7))])


def test_history_and_callbacks(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(
        hidden_layer_sizes=(16,),
        max_iter=400,
        random_state=0,
        callbacks=[EarlyStopping(monitor="train_loss", patience=3, threshold=0.5)],
    ).fit(X, y, task_ids=t)
    losses = est.history_[:, "train_loss"]
    assert len(losses) < 200  # stopped early: 2 iterations per epoch, 400 iterations
    assert all(np.isfinite(losses))


def test_meta_training_lowers_the_loss(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(hidden_layer_sizes=(32, 32), max_iter=300, random_state=0)
    losses = est.fit(X, y, task_ids=t).history_[:, "train_loss"]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


def test_verbose_shows_progress_and_a_log(sinusoids, capsys):
    X, y, t = sinusoids
    MAMLRegressor(**{**FAST, "max_iter": 4}, verbose=1).fit(X, y, task_ids=t)
    out = capsys.readouterr()
    assert "meta-training" in out.err and "4/4" in out.err
    assert out.out == ""
    est = MAMLRegressor(**{**FAST, "max_iter": 4}, verbose=2).fit(X, y, task_ids=t)
    assert "train_loss" in capsys.readouterr().out
    pickle.loads(pickle.dumps(est))  # the bar is not pickled


def test_few_shot_score_adapts_per_task_and_leaves_state_alone():
    X, y, t = make_related_classification_tasks(
        n_tasks=12, n_samples=40, random_state=0
    )
    train = t < 8
    est = MAMLClassifier(
        hidden_layer_sizes=(16,),
        inner_lr=0.1,
        n_adapt_steps=5,
        max_iter=100,
        random_state=0,
    ).fit(X[train], y[train], task_ids=t[train])
    held = ~train
    est.adapt(X[t == 0][:10], y[t == 0][:10])
    before = est.predict(X)
    few_shot = est.score(X[held], y[held], task_ids=t[held])
    assert few_shot == est.score(X[held], y[held], task_ids=t[held])  # seeded split
    np.testing.assert_array_equal(est.predict(X), before)  # own adaptation kept
    # By hand: adapt on each task's support rows, score the rest.
    assert 0.5 < few_shot <= 1.0
    plain = est.score(X[held], y[held])
    assert plain == pytest.approx(np.mean(est.predict(X[held]) == y[held]))
    # A task too short to score is left out with a warning; the rest scored.
    keep = (t != 9) | (y != 0) | (np.cumsum((t == 9) & (y == 0)) <= 3)
    with pytest.warns(UserWarning, match="1 of 4 tasks cannot give k_shot=5.*task 9"):
        short = est.score(X[held & keep], y[held & keep], task_ids=t[held & keep])
    rest = held & (t != 9)
    assert short == est.score(X[rest], y[rest], task_ids=t[rest])


def test_early_stopping_holds_out_tasks_and_records_validation(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(
        hidden_layer_sizes=(16,),
        max_iter=400,
        meta_lr=0.01,
        early_stopping=True,
        validation_fraction=0.1,  # 3 of the 30 tasks
        n_iter_no_change=3,
        tol=0.0,
        random_state=0,
    ).fit(X, y, task_ids=t)
    history = est.history_
    valid_loss = np.asarray(history[:, "valid_loss"])
    assert np.isfinite(history[:, "valid_score"]).all()
    # 27 training tasks: two meta-iterations per epoch; stopped early.
    assert set(history[:, "train_batch_count"]) == {2}
    assert est.n_iter_ == 2 * len(history) < 400
    assert valid_loss[-3:].min() >= valid_loss[:-3].min()
    # The weights of the best epoch are kept, not those of the last one.
    stopper = dict(est.net_.callbacks_)["early_stopping"]
    for name, value in est.net_.module_.state_dict().items():
        torch.testing.assert_close(value, stopper.best_model_weights_[name])
    with pytest.raises(ValueError, match="needs at least 2 tasks"):
        MAMLRegressor(early_stopping=True, **FAST).fit(X[t == 0], y[t == 0])


def test_held_out_tasks_never_train():
    """validation_fraction=0.9 of three tasks holds out two (at least one task
    trains): meta-training then runs exactly as a fit on the remaining task."""
    X, y, t = make_sinusoid_tasks(n_tasks=3, n_samples=12, random_state=0)
    # Without standardisation, whose statistics come from every task.
    params = dict(FAST, max_iter=5, k_shot=3, standardize=False)
    held_out = MAMLRegressor(
        early_stopping=True, validation_fraction=0.9, n_iter_no_change=10, **params
    ).fit(X, y, task_ids=t)
    train_loss = held_out.history_[:, "train_loss"]
    alone = [
        MAMLRegressor(**params)
        .fit(X[t == task], y[t == task], task_ids=t[t == task])
        .history_[:, "train_loss"]
        for task in range(3)
    ]
    assert sum(loss == train_loss for loss in alone) == 1
    assert np.isfinite(held_out.history_[:, "valid_loss"]).all()


def test_early_stopping_needs_two_tasks_and_holds_out_one_of_two():
    X, y, t = make_sinusoid_tasks(n_tasks=2, n_samples=12, random_state=0)
    est = MAMLRegressor(early_stopping=True, **dict(FAST, max_iter=3, k_shot=3))
    assert np.isfinite(est.fit(X, y, task_ids=t).history_[:, "valid_loss"]).all()
    message = (
        "early_stopping holds out whole tasks for validation: it needs at least 2 "
        "tasks, got 1. Give task_ids, or set early_stopping=False."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        est.fit(X[t == 0], y[t == 0], task_ids=t[t == 0])


def test_validation_episodes_follow_random_state_not_torch_global_seed():
    X, y, t = make_sinusoid_tasks(n_tasks=8, n_samples=12, random_state=0)
    losses = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        est = MAMLRegressor(
            early_stopping=True, validation_fraction=0.25, **dict(FAST, max_iter=4)
        ).fit(X, y, task_ids=t)
        losses.append(est.history_[:, "valid_loss"])
    assert losses[0] == losses[1]


def test_validation_episodes_are_n_way_episodes():
    """Tasks of four classes, 2-way episodes: the held-out tasks are scored on
    2-way episodes as well (a 2-output network cannot score four classes)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 3))
    y, t = np.tile(np.arange(4), 40), np.repeat(np.arange(4), 40)
    est = MAMLClassifier(
        n_way=2,
        k_shot=2,
        early_stopping=True,
        validation_fraction=0.25,
        **dict(FAST, max_iter=3),
    ).fit(X, y, task_ids=t)
    valid_loss = np.asarray(est.history_[:, "valid_loss"])
    # Near the cross-entropy of a guess between two classes, log 2.
    assert np.all(np.abs(valid_loss - np.log(2)) < 0.2)


# -- the learned update rule (learn_inner_lr="lstm") ----------------------------
class _RuleAtStart(Callback):
    """Keeps the update rule's parameters as meta-training starts."""

    def on_train_begin(self, net, **kwargs):
        self.start_ = {k: v.detach().clone() for k, v in net.module_.lstm.items()}


def test_learned_update_rule_is_meta_learned_and_used_by_adapt(sinusoids):
    X, y, t = sinusoids
    # Two inner steps: after one, the LSTM's state (zero at the start) has not
    # met its recurrent weights yet.
    est = MAMLRegressor(
        learn_inner_lr="lstm",
        n_inner_steps=2,
        callbacks=[("rule_at_start", _RuleAtStart())],
        **FAST,
    ).fit(X, y, task_ids=t)
    meta = est.net_.module_
    start = dict(est.net_.callbacks_)["rule_at_start"].start_
    assert len(meta.inner_lrs) == 0
    assert set(meta.lstm) == set(start) and len(start) == 6
    for name, value in meta.lstm.items():
        assert not torch.equal(value.detach(), start[name]), f"{name} did not move"

    # adapt takes the rule's step, not a plain step of size inner_lr.
    Xs, ys = X[t == 3][:5], y[t == 3][:5]
    est.adapt(Xs, ys)
    inputs = torch.as_tensor(est._episode_inputs(Xs), dtype=torch.float32)[None]
    target = est._encode_support(ys)[0][None].float()
    params = {k: v.detach().requires_grad_() for k, v in meta.net.named_parameters()}

    def adapted(**update):
        out = adapt(
            batched_forward(meta.net),
            est.net_.criterion_,
            expand_params(params, 1),
            inputs,
            target,
            torch.ones(1, len(Xs)),
            n_steps=est.n_inner_steps,
            adapt_names=meta.adapt_names,
            create_graph=False,
            **update,
        )
        return {k: v[0].detach() for k, v in out.items()}

    rule = adapted(lstm={k: v.detach() for k, v in meta.lstm.items()})
    plain = adapted(inner_lrs=dict.fromkeys(meta.adapt_names, est.inner_lr))
    gap = 0.0
    for name in meta.adapt_names:
        torch.testing.assert_close(est.adapted_params_[name], rule[name])
        gap = max(gap, float((est.adapted_params_[name] - plain[name]).abs().max()))
    assert gap > 1e-4


def test_learned_update_rule_pickles_saves_and_clones(sinusoids, tmp_path):
    pytest.importorskip("safetensors")  # sktransfer.save; in the dev extra
    X, y, t = sinusoids
    est = MAMLRegressor(learn_inner_lr="lstm", **FAST).fit(X, y, task_ids=t)
    est.adapt(X[:5], y[:5])
    restored = pickle.loads(pickle.dumps(est))
    sktransfer.save(est, tmp_path / "maml.skt")
    loaded = sktransfer.load(tmp_path / "maml.skt")
    est.adapt(X[t == 2][:5], y[t == 2][:5])
    for other in (restored, loaded):
        # The rule comes back: the copies adapt to a new task as est does.
        other.adapt(X[t == 2][:5], y[t == 2][:5])
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
    twin = clone(est)
    assert twin.learn_inner_lr == "lstm" and not hasattr(twin, "net_")
    np.testing.assert_array_equal(
        twin.fit(X, y, task_ids=t).predict(X),
        MAMLRegressor(learn_inner_lr="lstm", **FAST).fit(X, y, task_ids=t).predict(X),
    )


def test_learned_update_rule_refuses_bad_settings():
    X, y, t = np.zeros((20, 2)), np.zeros(20), np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match=r"inner_lr must be in \(0, 1\), got 1.5"):
        MAMLRegressor(learn_inner_lr="lstm", inner_lr=1.5, **FAST).fit(X, y, task_ids=t)
    with pytest.raises(ValueError, match="'learn_inner_lr' parameter"):
        MAMLRegressor(learn_inner_lr="gru", **FAST).fit(X, y, task_ids=t)


_LSTM_CHECKED = [
    cls(learn_inner_lr="lstm", **INIT_PARAMS[cls.__name__])
    for cls in (MAMLClassifier, MAMLRegressor)
]


@pytest.mark.slow
@parametrize_with_checks(_LSTM_CHECKED)
def test_learned_update_rule_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_meta_sgd_learns_one_step_size_per_weight(sinusoids):
    # Meta-SGD: every adapted weight has its own step size (the shape of the
    # weight, values that differ within a tensor), and adapt takes exactly
    # theta - alpha * grad coordinate by coordinate.
    X, y, t = sinusoids
    est = MAMLRegressor(learn_inner_lr=True, n_adapt_steps=1, **FAST)
    est.fit(X, y, task_ids=t)
    lrs = {
        name: est.net_.module_.inner_lrs[name.replace(".", "__")].detach()
        for name, _ in est.module_.named_parameters()
    }
    for name, value in est.module_.named_parameters():
        assert lrs[name].shape == value.shape, name
        if value.numel() > 1:
            assert lrs[name].std() > 0, name  # not one value per tensor
    X_s, y_s = X[t == 0][:5], y[t == 0][:5]
    est.adapt(X_s, y_s)
    module = est.module_
    params = {
        k: v.detach().clone().requires_grad_() for k, v in module.named_parameters()
    }
    inputs = torch.as_tensor(est._standardize_X(X_s), dtype=torch.float32)
    target = torch.as_tensor(est._standardize_y(y_s), dtype=torch.float32).reshape(
        -1, 1
    )
    loss = nn.functional.mse_loss(
        torch.func.functional_call(module, params, (inputs,)), target
    )
    grads = torch.autograd.grad(loss, list(params.values()))
    for (name, value), grad in zip(params.items(), grads, strict=True):
        expected = value.detach() - lrs[name] * grad
        torch.testing.assert_close(
            est.adapted_params_[name], expected, rtol=1e-5, atol=1e-6
        )


class _Dropped(nn.Sequential):
    """An MLP with dropout, active while `adapt` takes its gradient steps."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__(
            nn.Linear(n_features, 8),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(8, n_outputs),
        )


def test_adapt_with_dropout_is_seeded_and_leaves_global_rng_alone(sinusoids):
    X, y, t = sinusoids
    est = MAMLRegressor(module=_Dropped, n_adapt_steps=3, **{**FAST, "max_iter": 2})
    est.fit(X, y, task_ids=t)
    state = torch.get_rng_state()
    first = est.adapt(X[:5], y[:5]).predict(X)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(est.adapt(X[:5], y[:5]).predict(X), first)
    (episode,) = est.predict_episodes([(X[:5], y[:5])], [X], ["task 0"])
    np.testing.assert_array_equal(episode, first)


def test_episodic_predict_before_adapt_says_what_to_do():
    est = MAMLClassifier(n_way=2, k_shot=2, **FAST).fit(_class_tasks())
    message = (
        r"^This episodic \(n_way\) model has no classes until it sees a support "
        r"set: call adapt\(X_support, y_support\) before predicting\.$"
    )
    for method in (est.predict, est.predict_proba, est.decision_function):
        with pytest.raises(ValueError, match=message):
            method(np.zeros((2, 3)))


def test_pickle_round_trip_before_adapt_and_of_a_classifier():
    tasks = _class_tasks()
    X = _class_tasks(seed=1)[0][0]
    est = MAMLClassifier(k_shot=3, **FAST).fit(tasks)
    restored = pickle.loads(pickle.dumps(est))
    assert not hasattr(restored, "adapted_params_")
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    est.adapt(X[:6], [0, 1] * 3)
    live = {k: v.clone() for k, v in est.adapted_params_.items()}
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    # Pickling copies the adaptation: the live one is left as it was.
    for name, value in est.adapted_params_.items():
        torch.testing.assert_close(value, live[name], rtol=0, atol=0)
        torch.testing.assert_close(restored.adapted_params_[name], value)
    unfitted = pickle.loads(pickle.dumps(MAMLClassifier(**FAST)))
    assert unfitted.get_params() == MAMLClassifier(**FAST).get_params()


def test_fit_with_dropout_is_reproducible_and_leaves_global_rng_alone(sinusoids):
    X, y, t = sinusoids
    params = dict(module=_Dropped, **{**FAST, "max_iter": 3})
    state = torch.get_rng_state()
    first = MAMLRegressor(**params).fit(X, y, task_ids=t)
    assert torch.equal(torch.get_rng_state(), state)
    second = MAMLRegressor(**params).fit(X, y, task_ids=t)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


@pytest.mark.parametrize("learn_inner_lr", [False, True])
def test_only_the_networks_weights_decay(learn_inner_lr):
    est = MAMLClassifier(
        k_shot=3,
        meta_lr=0.02,
        weight_decay=0.25,
        learn_inner_lr=learn_inner_lr,
        **{**FAST, "max_iter": 2},
    ).fit(_class_tasks())
    network = {id(p) for p in est.module_.parameters()}
    for group in est.net_.optimizer_.param_groups:
        assert group["lr"] == 0.02
        ids = {id(p) for p in group["params"]}
        if ids & network:
            assert ids == network and group["weight_decay"] == 0.25
        else:  # the learned step sizes
            assert learn_inner_lr and group["weight_decay"] == 0.0
    n_groups = len(est.net_.optimizer_.param_groups)
    assert n_groups == (2 if learn_inner_lr else 1)


def test_more_meta_training_forgets_the_adaptation():
    tasks = _class_tasks()
    est = MAMLClassifier(n_way=2, k_shot=3, **FAST).fit(tasks)
    est.adapt(tasks[0][0][:6], [0, 1] * 3)
    est.partial_fit(tasks)
    with pytest.raises(ValueError, match="call adapt"):
        est.predict(tasks[0][0])
    est.adapt(tasks[0][0][:6], [0, 1] * 3).fit(tasks)
    with pytest.raises(ValueError, match="call adapt"):
        est.predict(tasks[0][0])


@pytest.mark.parametrize(
    "n_rows, asked, shrunk",
    [
        (8, dict(k_shot=5, n_query=3), dict(k_shot=5, n_query=3)),  # fits as is
        (8, dict(k_shot=5), dict(k_shot=4, n_query=4)),
        (3, dict(k_shot=5), dict(k_shot=1, n_query=2)),
    ],
)
def test_one_small_task_trains_on_episodes_shrunk_to_fit(n_rows, asked, shrunk):
    # fit(X, y) is one task; episodes that do not fit are shrunk to half the
    # rows for support and the rest for query, which is what asking for those
    # sizes of the same rows as a task gives.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n_rows, 2)), rng.normal(size=n_rows)
    params = {**FAST, "max_iter": 3}
    with pytest.warns(sktransfer.exceptions.SingleTaskWarning):
        plain = MAMLRegressor(**asked, **params).fit(X, y)
    as_task = MAMLRegressor(**shrunk, **params).fit(X, y, task_ids=np.zeros(n_rows))
    np.testing.assert_array_equal(plain.predict(X), as_task.predict(X))


def test_classes_declared_but_absent_do_not_shrink_a_single_task():
    X, y = _class_tasks(n_tasks=1)[0]
    kwargs = dict(classes=[0, 1, 2])
    with pytest.warns(sktransfer.exceptions.SingleTaskWarning):
        plain = MAMLClassifier(**FAST).partial_fit(X, y, **kwargs)
    as_task = MAMLClassifier(**FAST).partial_fit(X, y, task_ids=[0] * len(y), **kwargs)
    np.testing.assert_array_equal(plain.predict_proba(X), as_task.predict_proba(X))


def test_random_state_fixes_the_held_out_tasks_and_the_rows_of_large_tasks():
    # Early stopping draws its validation tasks, and tasks of more than 4096
    # rows are shuffled before episodes take windows of them: both from
    # random_state, so two fits agree bit for bit.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8400, 1))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=8400)
    t = np.repeat([0, 1], 4200)
    large = [
        MAMLRegressor(**{**FAST, "max_iter": 2}).fit(X, y, task_ids=t).predict(X[:50])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*large)
    X, y, t = make_sinusoid_tasks(n_tasks=12, n_samples=10, random_state=0)
    params = dict(early_stopping=True, validation_fraction=0.25, n_iter_no_change=1)
    held_out = [
        MAMLRegressor(**{**FAST, "max_iter": 4}, **params).fit(X, y, task_ids=t)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(held_out[0].predict(X), held_out[1].predict(X))
