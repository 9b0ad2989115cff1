"""`transform`: the network's body as a feature map, in every network family.

The reference of every family is the body run by hand: the module's layers
before its output layer (or the learned network ``g``) on the standardised
rows, in float64.
"""

import copy

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
)
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.datasets import make_related_classification_tasks
from tests._marks import slow_except, slow_only

MAML = dict(hidden_layer_sizes=(8, 6), max_iter=20, meta_lr=0.01, random_state=0)
FINETUNE = dict(hidden_layer_sizes=(8, 6), max_iter=10, lr=0.01, random_state=0)
CLOSED = dict(hidden_layer_sizes=(8,), n_components=4, max_iter=20, random_state=0)
FAST = {
    MAMLClassifier: MAML,
    MAMLRegressor: MAML,
    FineTuneClassifier: FINETUNE,
    FineTuneRegressor: FINETUNE,
    MetaRidgeClassifier: CLOSED,
    MetaRidgeRegressor: CLOSED,
    ProtoNetClassifier: CLOSED,
}
ALL = list(FAST)


def _tasks(regression=False):
    X, y, t = make_related_classification_tasks(
        n_tasks=6, n_samples=30, n_features=5, random_state=0
    )
    X = X * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 2.0  # scales matter
    if regression:
        y = X[:, 0] + 0.5 * X[:, 1] * (t % 3) + 0.1 * y
    return X, y, t


def _fit(cls, **params):
    X, y, t = _tasks(
        regression=cls in (MAMLRegressor, FineTuneRegressor)
        or (cls is MetaRidgeRegressor)
    )
    return cls(**{**FAST[cls], **params}).fit(X, y, task_ids=t), X, y, t


def _standardised(est, X):
    return torch.as_tensor((X - est.x_mean_) / est.x_scale_)


def _body_by_hand(module, X):
    """The layers before the output layer of an MLP, in float64."""
    body = copy.deepcopy(module)[:-1].double()
    with torch.no_grad():
        return body(X).numpy()


def _with_params(module, params):
    module = copy.deepcopy(module)
    module.load_state_dict({name: value.detach() for name, value in params.items()})
    return module


# -- equal to the body run by hand -------------------------------------------------
@pytest.mark.parametrize("cls", [MAMLClassifier, MAMLRegressor])
def test_maml_transform_is_the_body_before_and_after_adapt(cls):
    est, X, y, t = _fit(cls, inner_lr=0.5, n_adapt_steps=3)
    Xs = _standardised(est, X)
    before = est.transform(X)
    assert before.dtype == np.float64 and before.shape == (len(X), 6)
    np.testing.assert_allclose(before, _body_by_hand(est.module_, Xs), atol=1e-12)

    est.adapt(X[t == 0][:10], y[t == 0][:10])
    after = est.transform(X)
    adapted = _with_params(est.module_, est.adapted_params_)
    np.testing.assert_allclose(after, _body_by_hand(adapted, Xs), atol=1e-12)
    # adapt_layers="all" changes the body: transform follows the adaptation.
    assert np.abs(after - before).max() > 1e-4


def test_maml_head_only_adaptation_keeps_the_body():
    est, X, y, t = _fit(MAMLRegressor, adapt_layers="head", inner_lr=0.5)
    before = est.transform(X)
    est.adapt(X[t == 0][:10], y[t == 0][:10])
    np.testing.assert_array_equal(est.transform(X), before)
    # The adapted head on the body's outputs is the prediction.
    head = est.adapted_params_
    raw = est.transform(X) @ head["4.weight"].double().numpy().T
    raw += head["4.bias"].double().numpy()
    expected = raw.ravel() * est.y_scale_ + est.y_mean_
    np.testing.assert_allclose(est.predict(X), expected, rtol=1e-10)


@pytest.mark.parametrize("cls", [FineTuneClassifier, FineTuneRegressor])
def test_finetune_transform_is_the_body_before_and_after_adapt(cls):
    est, X, y, t = _fit(cls, freeze=None, adapt_max_iter=20)
    Xs = _standardised(est, X)
    before = est.transform(X)
    np.testing.assert_allclose(
        before, _body_by_hand(est.pretrained_module_, Xs), atol=1e-12
    )
    est.adapt(X[t == 0], y[t == 0])
    after = est.transform(X)
    np.testing.assert_allclose(after, _body_by_hand(est.module_, Xs), atol=1e-12)
    assert np.abs(after - before).max() > 1e-4  # an unfrozen body moves

    est.set_params(freeze="body").adapt(X[t == 0], y[t == 0])
    np.testing.assert_array_equal(est.transform(X), before)


def test_finetune_fresh_head_keeps_the_body_width():
    est, X, y, t = _fit(FineTuneClassifier)
    est.adapt(X[:20], np.arange(20) % 3)  # 3 classes: a fresh head
    assert est.transform(X).shape == (len(X), 6)
    assert len(est.get_feature_names_out()) == 6


@pytest.mark.parametrize("cls", [MetaRidgeClassifier, MetaRidgeRegressor])
def test_metaridge_transform_is_the_learned_features(cls):
    est, X, y, t = _fit(cls)
    Xs = _standardised(est, X)
    with torch.no_grad():
        expected = est.module_.double()(Xs).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)
    assert est.transform(X).shape == (len(X), 4)
    est.adapt(X[t == 0][:10], y[t == 0][:10])
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)


def test_metaridge_with_base_estimator_features_see_its_predictions():
    est, X, y, t = _fit(MetaRidgeRegressor, base_estimator=Ridge())
    base = est.base_estimator_.predict(X)
    inputs = np.hstack(
        [_standardised(est, X).numpy(), ((base - est.y_mean_) / est.y_scale_)[:, None]]
    )
    with torch.no_grad():
        expected = est.module_.double()(torch.as_tensor(inputs)).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_metaridge_classifier_features_see_the_base_log_odds(n_classes):
    # A tree's leaves give probabilities of exactly 0 and 1: clipped at 1e-6,
    # as log-odds against the first class (two classes) or centred
    # log-probabilities (more).
    X, y, t = _tasks()
    if n_classes == 3:
        y = y + (t % 2)
    tree = DecisionTreeClassifier(random_state=0)
    est = MetaRidgeClassifier(**CLOSED, base_estimator=tree).fit(X, y, task_ids=t)
    log_proba = np.log(np.clip(est.base_estimator_.predict_proba(X), 1e-6, 1.0))
    assert (est.base_estimator_.predict_proba(X) == 0).any()
    if n_classes == 2:
        columns = log_proba[:, 1:] - log_proba[:, :1]
    else:
        columns = log_proba - log_proba.mean(1, keepdims=True)
    inputs = np.hstack([_standardised(est, X).numpy(), columns])
    with torch.no_grad():
        expected = est.module_.double()(torch.as_tensor(inputs)).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)
    assert np.isfinite(est.predict_proba(X)).all()


def test_metaridge_without_learned_features_has_no_transform():
    X, y, t = _tasks(regression=True)
    est = MetaRidgeRegressor(**{**CLOSED, "n_components": 0}).fit(X, y, task_ids=t)
    for method in ("transform", "fit_transform", "get_feature_names_out"):
        assert not hasattr(est, method)
    with pytest.raises(TypeError, match="transformers"):
        Pipeline([("features", est), ("ridge", Ridge())]).fit(X, y)


@pytest.mark.parametrize("cls", [MetaRidgeRegressor, ProtoNetClassifier])
def test_a_single_learned_feature_is_a_transform(cls):
    est, X, _, _ = _fit(cls, n_components=1, k_shot=5)
    with torch.no_grad():
        expected = est.module_.double()(_standardised(est, X)).numpy()
    assert expected.shape == (len(X), 1)
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)
    assert len(est.get_feature_names_out()) == 1


def test_protonet_transform_is_the_embedding_of_the_prototypes():
    X, y, t = _tasks()
    y = y + 2 * (t % 3)  # six classes
    est = ProtoNetClassifier(**{**CLOSED, "n_way": 2}).fit(X, y)
    with torch.no_grad():
        expected = est.module_.double()(_standardised(est, X)).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)
    # Prototypes are the support set's class means in that embedding.
    support = np.r_[np.flatnonzero(y == 0)[:3], np.flatnonzero(y == 3)[:3]]
    query = np.flatnonzero((y == 0) | (y == 3))
    est.adapt(X[support], y[support])
    centroid = NearestCentroid().fit(est.transform(X[support]), y[support])
    np.testing.assert_array_equal(
        centroid.predict(est.transform(X[query])), est.predict(X[query])
    )
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)


# -- user modules ----------------------------------------------------------------
class TwoPart(nn.Module):
    """A body and an output layer, not a Sequential."""

    def __init__(self, n_features=1, n_outputs=1, width=5):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.out = nn.Linear(width, n_outputs)

    def forward(self, X):
        return self.out(self.body(X))


class Squeezed(TwoPart):
    """Its output layer is not applied last: a reshape follows it."""

    def forward(self, X):
        return self.out(self.body(X)).reshape(len(X), -1)[:, :1]


class NormedHead(TwoPart):
    """Its last parameterised layer is a LayerNorm, not an nn.Linear."""

    def __init__(self, n_features=1, n_outputs=1, width=5):
        super().__init__(n_features, n_outputs, width)
        self.norm = nn.LayerNorm(n_outputs)

    def forward(self, X):
        return self.norm(self.out(self.body(X)))


class Dropped(nn.Sequential):
    """An MLP with dropout: inference must switch it off."""

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__(
            nn.Linear(n_features, 8),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(8, n_outputs),
        )


@pytest.mark.parametrize("cls", [MAMLClassifier, ProtoNetClassifier])
def test_dropout_is_off_in_transform(cls):
    est, X, _, _ = _fit(cls, module=Dropped)
    module = copy.deepcopy(est.module_).double().eval()
    body = module if cls is ProtoNetClassifier else nn.Sequential(*list(module)[:-1])
    with torch.no_grad():
        expected = body(_standardised(est, X)).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("cls", [MAMLRegressor, FineTuneRegressor])
def test_user_module_body_is_the_input_of_its_output_layer(cls):
    est, X, _, _ = _fit(cls, module=TwoPart)
    module = copy.deepcopy(est.module_).double()
    with torch.no_grad():
        expected = module.body(_standardised(est, X)).numpy()
    np.testing.assert_allclose(est.transform(X), expected, atol=1e-12)


def test_module_whose_output_layer_is_not_linear_is_refused():
    est, X, _, _ = _fit(FineTuneRegressor, module=NormedHead)
    with pytest.raises(ValueError, match="'norm' is LayerNorm"):
        est.transform(X)


def test_module_whose_output_layer_is_not_last_is_refused():
    X, y, t = _tasks(regression=True)
    est = FineTuneRegressor(module=Squeezed, **FINETUNE).fit(X, y[:, None])
    with pytest.raises(ValueError, match="applied last"):
        est.transform(X)


# -- names, forms, refusals ---------------------------------------------------------
@pytest.mark.parametrize("cls", slow_only(ALL, MetaRidgeClassifier, MetaRidgeRegressor))
def test_feature_names_and_pandas_output(cls):
    pd = pytest.importorskip("pandas")  # in the dev extra
    est, X, _, _ = _fit(cls)
    names = est.get_feature_names_out()
    width = est.transform(X[:3]).shape[1]
    assert list(names) == [f"{cls.__name__.lower()}{i}" for i in range(width)]
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    out = clone(est).set_output(transform="pandas")
    _, y, t = _tasks(
        regression=cls in (MAMLRegressor, FineTuneRegressor)
        or (cls is MetaRidgeRegressor)
    )
    Z = out.fit(frame, y, task_ids=t).transform(frame)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == list(names)
    assert list(Z.index) == list(frame.index)


@pytest.mark.parametrize("cls", ALL)
def test_transform_refuses_unfitted_use_and_wrong_features(cls):
    est = cls(**FAST[cls])
    X, _, _ = _tasks()
    with pytest.raises(NotFittedError):
        est.transform(X)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()
    est, X, _, _ = _fit(cls)
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 5"):
        est.transform(X[:, :4])


def test_fit_transform_reads_every_task_form():
    X, y, t = _tasks()
    est = MAMLClassifier(**MAML)
    flat = est.fit_transform(X, y, task_ids=t)
    np.testing.assert_array_equal(flat, clone(est).fit(X, y, task_ids=t).transform(X))
    pairs = [(X[t == i], y[t == i]) for i in range(6)]
    np.testing.assert_array_equal(
        clone(est).fit_transform(pairs), est.transform(np.vstack([p for p, _ in pairs]))
    )


def test_task_ids_reach_fit_through_a_pipeline():
    X, y, t = _tasks()
    expected = MAMLClassifier(**MAML).fit(X, y, task_ids=t).transform(X)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("features", MAMLClassifier(**MAML)),
                ("clf", LogisticRegression().set_fit_request(sample_weight=False)),
            ]
        ).fit(X, y, task_ids=t)
    np.testing.assert_array_equal(pipe[0].transform(X), expected)


# -- a frozen network ahead of a scikit-learn estimator -----------------------------
def _weights(est):
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


@pytest.mark.parametrize(
    "cls",
    [FineTuneClassifier, pytest.param(ProtoNetClassifier, marks=pytest.mark.slow)],
)
def test_frozen_estimator_in_a_pipeline_is_not_refitted(cls):
    est, X, y, t = _fit(cls)
    weights = _weights(est)
    pipe = Pipeline([("features", FrozenEstimator(est)), ("clf", LogisticRegression())])
    cloned = clone(pipe)
    assert cloned[0].estimator is est  # a frozen estimator is not cloned
    search = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["clf__C"] in (0.1, 1.0)
    cloned.fit(X[t == 1], y[t == 1])
    after = _weights(est)
    assert weights.keys() == after.keys()
    for name, value in weights.items():
        assert torch.equal(value, after[name])
    # The logistic regression sees the network's features.
    np.testing.assert_array_equal(
        search.best_estimator_[-1].n_features_in_, est.transform(X[:2]).shape[1]
    )


# -- scikit-learn's checks of transformers' names and output containers -------------
@pytest.mark.parametrize(
    "check",
    [
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
)
@pytest.mark.parametrize(
    "cls",
    slow_except(
        [MAMLRegressor, FineTuneClassifier, ProtoNetClassifier], FineTuneClassifier
    ),
)
def test_sklearn_output_checks(cls, check):
    check(cls.__name__, cls(**FAST[cls]))
