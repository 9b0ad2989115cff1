"""`sktransfer.adapt` through Pipeline, TransformedTargetRegressor and searches.

Every family is meta-trained behind each meta-estimator; adapting the
meta-estimator must give what transforming by hand and adapting the last
step gives, the transformers must not be refitted, and the evaluation
helpers must accept the meta-estimators as they accept a bare estimator.
"""

import copy
import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import (
    ColumnTransformer,
    TransformedTargetRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

import sktransfer
from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    PooledClassifier,
    PooledRegressor,
    ProtoNetClassifier,
    TaskSet,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.exceptions import NegativeTransferWarning
from sktransfer.model_selection._few_shot import draw_episodes
from tests._marks import slow_except

NUMERIC = ["x0", "x1", "x2"]
SITES = np.array(["north", "south", "west"])
FAMILIES = {
    "MAMLClassifier": MAMLClassifier(
        hidden_layer_sizes=(16,), max_iter=30, k_shot=3, inner_lr=0.3, random_state=0
    ),
    "MAMLRegressor": MAMLRegressor(
        hidden_layer_sizes=(16,), max_iter=30, k_shot=5, inner_lr=0.1, random_state=0
    ),
    "FineTuneClassifier": FineTuneClassifier(
        hidden_layer_sizes=(16,), max_iter=10, adapt_max_iter=5, random_state=0
    ),
    "FineTuneRegressor": FineTuneRegressor(
        hidden_layer_sizes=(16,), max_iter=10, adapt_max_iter=5, random_state=0
    ),
    "MetaRidgeClassifier": MetaRidgeClassifier(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=50,
        k_shot=3,
        early_stopping=False,
        random_state=0,
    ),
    "MetaRidgeRegressor": MetaRidgeRegressor(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=50,
        k_shot=5,
        early_stopping=False,
        random_state=0,
    ),
    "ProtoNetClassifier": ProtoNetClassifier(
        hidden_layer_sizes=(16,),
        n_components=4,
        max_iter=50,
        k_shot=3,
        early_stopping=False,
        random_state=0,
    ),
}
REGRESSORS = [name for name in FAMILIES if name.endswith("Regressor")]
K_SHOT = 3


def routing():
    return sklearn.config_context(enable_metadata_routing=True)


def frame(X, t, sites=SITES):
    """Numeric columns and a string site column, as a raw table has them."""
    pd = pytest.importorskip("pandas")  # in the dev extra
    df = pd.DataFrame(X, columns=NUMERIC)
    df["site"] = sites[t % len(sites)]
    return df


def make_data(classification, new):
    """12 training tasks, or 6 new tasks of the same family."""
    if classification:
        X, y, t = make_related_classification_tasks(
            n_tasks=18, n_samples=40, n_features=3, random_state=0
        )
    else:
        X, y, t = make_related_regression_tasks(
            n_tasks=18, n_samples=30, n_features=3, random_state=0
        )
        y = y + 10  # positive, for log1p
    rows = t >= 12 if new else t < 12
    return X[rows], y[rows], t[rows]


@pytest.fixture(
    scope="module", params=slow_except(FAMILIES, "MAMLClassifier", "MAMLRegressor")
)
def fitted(request):
    """A family meta-trained behind a ColumnTransformer, with train and new tasks."""
    name = request.param
    classification = not name.endswith("Regressor")
    X, y, t = make_data(classification, new=False)
    X_new, y_new, t_new = make_data(classification, new=True)
    train = (frame(X, t), y, t)
    # "east" is a site the encoder never saw.
    new = (frame(X_new, t_new, np.array(["north", "east"])), y_new, t_new)
    pipe = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("scale", StandardScaler(), NUMERIC),
                        ("site", OneHotEncoder(handle_unknown="ignore"), ["site"]),
                    ],
                    sparse_threshold=0,
                ),
            ),
            ("model", clone(FAMILIES[name])),
        ]
    )
    with routing():
        pipe.fit(*train[:2], task_ids=train[2])
    return name, pipe, train, new


def first_task(new, n_support=6):
    df, y, t = new
    rows = np.flatnonzero(t == t[0])
    return df.iloc[rows[:n_support]], y[rows[:n_support]], df.iloc[rows[n_support:]]


def outputs(estimator, X):
    """What a comparison must match: probabilities for classifiers, else values."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X)


# -- Pipeline ---------------------------------------------------------------------
def test_pipeline_adapts_the_last_step_on_transformed_rows(fitted):
    _, pipe, _, new = fitted
    X_s, y_s, X_q = first_task(new)
    encoder = pipe.named_steps["encode"]
    means = encoder.named_transformers_["scale"].mean_.copy()
    reference = copy.deepcopy(pipe[-1])
    before = outputs(pipe, X_q)

    returned = sktransfer.adapt(pipe, X_s, y_s)

    assert returned is pipe
    after = outputs(pipe, X_q)
    by_hand = outputs(
        reference.adapt(encoder.transform(X_s), y_s), encoder.transform(X_q)
    )
    np.testing.assert_array_equal(after, by_hand)
    assert not np.allclose(after, before)  # it did adapt
    # The transformers were used, not refitted on the support rows.
    np.testing.assert_array_equal(encoder.named_transformers_["scale"].mean_, means)


def test_nested_pipelines_and_passthrough_steps():
    X, y, t = make_data(classification=False, new=False)
    model = clone(FAMILIES["MetaRidgeRegressor"])
    inner = make_pipeline(PolynomialFeatures(2), model)
    pipe = Pipeline(
        [("scale", StandardScaler()), ("skip", "passthrough"), ("m", inner)]
    )
    with routing():
        pipe.fit(X, y, task_ids=t)
    X_new, y_new, _ = make_data(classification=False, new=True)
    reference = copy.deepcopy(model)
    predicted = sktransfer.adapt(pipe, X_new[:8], y_new[:8]).predict(X_new[8:30])

    def transform(rows):
        return inner[0].transform(pipe[0].transform(rows))

    expected = reference.adapt(transform(X_new[:8]), y_new[:8]).predict(
        transform(X_new[8:30])
    )
    np.testing.assert_array_equal(predicted, expected)


# -- TransformedTargetRegressor ---------------------------------------------------
@pytest.mark.parametrize("name", REGRESSORS)
@pytest.mark.parametrize("target", ["log1p", "scaler"])
def test_transformed_target_regressor_adapts_on_transformed_targets(name, target):
    X, y, t = make_data(classification=False, new=False)
    X_new, y_new, _ = make_data(classification=False, new=True)
    if target == "log1p":
        ttr = TransformedTargetRegressor(
            clone(FAMILIES[name]), func=np.log1p, inverse_func=np.expm1
        )
    else:
        ttr = TransformedTargetRegressor(
            clone(FAMILIES[name]), transformer=StandardScaler()
        )
    ttr.fit(X, y, task_ids=t)
    reference = copy.deepcopy(ttr.regressor_)
    before = ttr.predict(X_new[8:30])

    predicted = sktransfer.adapt(ttr, X_new[:8], y_new[:8]).predict(X_new[8:30])

    if target == "log1p":
        y_s, inverse = np.log1p(y_new[:8]), np.expm1
    else:
        scaler = ttr.transformer_
        y_s = (y_new[:8] - scaler.mean_[0]) / scaler.scale_[0]

        def inverse(values):
            return values * scaler.scale_[0] + scaler.mean_[0]

    expected = inverse(reference.adapt(X_new[:8], y_s).predict(X_new[8:30]))
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    assert not np.allclose(predicted, before)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_transformed_target_regressor_keeps_two_dimensional_targets(n_outputs):
    """Targets of shape (n, 1) or (n, 2) keep their shape through the target
    transform in adapt, predict and few-shot scoring, as a hand-made
    reference: scale each column, adapt, predict, unscale."""
    X, y, t = make_data(classification=False, new=False)
    X_new, y_new, t_new = make_data(classification=False, new=True)
    Y = np.c_[y, -2 * y][:, :n_outputs]
    Y_new = np.c_[y_new, -2 * y_new][:, :n_outputs]
    ttr = TransformedTargetRegressor(
        clone(FAMILIES["MetaRidgeRegressor"]), transformer=StandardScaler()
    )
    ttr.fit(X, Y, task_ids=t)
    reference = copy.deepcopy(ttr.regressor_)
    predicted = sktransfer.adapt(ttr, X_new[:8], Y_new[:8]).predict(X_new[8:30])
    scaler = ttr.transformer_
    expected = scaler.inverse_transform(
        reference.adapt(X_new[:8], scaler.transform(Y_new[:8]))
        .predict(X_new[8:30])
        .reshape(22, n_outputs)
    )
    assert predicted.shape == (22, n_outputs)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    result = few_shot_score(ttr, (X_new, Y_new, t_new), k_shot=5, random_state=0)
    splits = draw_episodes(
        TaskSet.from_arrays(X_new, Y_new, t_new),
        k_shot=5,
        n_query=None,
        n_episodes=1,
        per_class=False,
        random_state=0,
    )[0]
    by_hand = []
    for support, query in splits:
        model = copy.deepcopy(ttr)
        sktransfer.adapt(model, X_new[support], Y_new[support])
        by_hand.append(r2_score(Y_new[query], model.predict(X_new[query])))
    np.testing.assert_allclose(result.per_task, by_hand, rtol=1e-9)


class _MeanOfSupport(sklearn.base.RegressorMixin, sklearn.base.BaseEstimator):
    """A user's own estimator with adapt: predicts the support set's mean."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def adapt(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_an_estimator_of_the_users_own_with_adapt_is_evaluated():
    """Anything with adapt is adapted episode by episode, without sktransfer's
    attributes (categories, feature names)."""
    X, y, t = make_data(classification=False, new=True)
    est = _MeanOfSupport().fit(X, y)
    result = few_shot_score(est, (X, y, t), k_shot=4, random_state=0)
    splits = draw_episodes(
        TaskSet.from_arrays(X, y, t),
        k_shot=4,
        n_query=None,
        n_episodes=1,
        per_class=False,
        random_state=0,
    )[0]
    by_hand = [
        r2_score(y[query], np.full(len(query), y[support].mean()))
        for support, query in splits
    ]
    np.testing.assert_allclose(result.per_task, by_hand, rtol=1e-12)
    assert est.mean_ == pytest.approx(y.mean())  # left as it was


# -- search objects ---------------------------------------------------------------
def test_fitted_search_adapts_its_best_estimator(fitted):
    name, pipe, train, new = fitted
    df, y, t = train
    param = "model__random_state"
    search = GridSearchCV(clone(pipe), {param: [1]}, cv=GroupKFold(n_splits=2))
    with routing():
        search.fit(df, y, groups=t, task_ids=t)
    X_s, y_s, X_q = first_task(new)
    reference = copy.deepcopy(search.best_estimator_)

    returned = sktransfer.adapt(search, X_s, y_s)

    assert returned is search
    encoder, model = reference[0], reference[-1]
    model.adapt(encoder.transform(X_s), y_s)
    np.testing.assert_array_equal(
        outputs(search, X_q), outputs(model, encoder.transform(X_q))
    )


@pytest.mark.slow
def test_wrappers_of_every_kind_nest():
    # A search over a pipeline whose last step transforms the target.
    X, y, t = make_data(classification=False, new=False)
    X_new, y_new, _ = make_data(classification=False, new=True)
    ttr = TransformedTargetRegressor(
        clone(FAMILIES["MetaRidgeRegressor"]), func=np.log1p, inverse_func=np.expm1
    )
    pipe = Pipeline([("scale", StandardScaler()), ("ttr", ttr)])
    search = GridSearchCV(
        pipe, {"scale__with_mean": [True]}, cv=GroupKFold(2), scoring="r2"
    )
    with routing():
        search.fit(X, y, groups=t, task_ids=t)
    best = search.best_estimator_
    reference = copy.deepcopy(best[-1].regressor_)
    scale = best[0].transform
    expected = np.expm1(
        reference.adapt(scale(X_new[:8]), np.log1p(y_new[:8])).predict(
            scale(X_new[8:30])
        )
    )
    predicted = sktransfer.adapt(search, X_new[:8], y_new[:8]).predict(X_new[8:30])
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)


# -- what cannot adapt -------------------------------------------------------------
def test_what_cannot_adapt_is_refused_clearly():
    X, y, t = make_data(classification=False, new=False)
    cannot = (
        "Ridge cannot adapt: sktransfer.adapt adapts an estimator with an adapt "
        "method (the sktransfer estimators and baselines), or a Pipeline, "
        "TransformedTargetRegressor or fitted search object (GridSearchCV, ...) "
        "around one. To fit a scikit-learn estimator on the support rows alone, "
        "wrap it in SupportSetClassifier or SupportSetRegressor."
    )
    with pytest.raises(TypeError, match=re.escape(cannot)):
        sktransfer.adapt(Ridge().fit(X, y), X[:5], y[:5])
    pipe = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with pytest.raises(TypeError, match="Ridge cannot adapt"):
        sktransfer.adapt(pipe, X[:5], y[:5])
    with pytest.raises(TypeError, match="Ridge cannot adapt"):
        few_shot_score(pipe, (X, y, t), k_shot=5)
    skip = Pipeline([("scale", StandardScaler()), ("last", "passthrough")]).fit(X)
    last = "The pipeline's last step is 'passthrough': there is no estimator to adapt."
    with pytest.raises(TypeError, match=re.escape(last)):
        sktransfer.adapt(skip, X[:5], y[:5])
    model = clone(FAMILIES["MetaRidgeRegressor"])
    unfitted = (
        "This GridSearchCV is not fitted: fit the search before adapting its best "
        "estimator."
    )
    with pytest.raises(NotFittedError, match=re.escape(unfitted)):
        sktransfer.adapt(GridSearchCV(model, {"k_shot": [5]}), X[:5], y[:5])
    with pytest.raises(
        NotFittedError, match="This TransformedTargetRegressor instance is not fitted"
    ):
        sktransfer.adapt(TransformedTargetRegressor(model), X[:5], y[:5])
    no_refit = GridSearchCV(model, {"k_shot": [5]}, cv=GroupKFold(2), refit=False)
    no_refit.fit(X, y, groups=t, task_ids=t)
    no = (
        "GridSearchCV was fitted with refit=False: it has no best_estimator_ to "
        "adapt. Fit it with refit=True."
    )
    with pytest.raises(TypeError, match=re.escape(no)):
        sktransfer.adapt(no_refit, X[:5], y[:5])


# -- the evaluation helpers --------------------------------------------------------
def by_hand_scores(estimator, tasks, k_shot, classifier):
    """Each episode's score of adapting a copy, one episode at a time."""
    X, y, t = tasks
    frame_given = hasattr(X, "iloc")
    numeric = TaskSet.from_arrays(X[NUMERIC].to_numpy() if frame_given else X, y, t)

    def rows(index):
        return X.iloc[index] if frame_given else X[index]

    (episode,) = draw_episodes(
        numeric,
        k_shot=k_shot,
        n_query=None,
        n_episodes=1,
        per_class=classifier,
        random_state=0,
    )
    metric = accuracy_score if classifier else r2_score
    return np.array(
        [
            metric(
                y[q],
                sktransfer.adapt(copy.deepcopy(estimator), rows(s), y[s]).predict(
                    rows(q)
                ),
            )
            for s, q in episode
        ]
    )


def test_few_shot_score_and_transfer_report_accept_a_pipeline(fitted):
    name, pipe, train, new = fitted
    classifier = not name.endswith("Regressor")
    result = few_shot_score(pipe, new, k_shot=K_SHOT, random_state=0)
    np.testing.assert_allclose(
        result.per_task, by_hand_scores(pipe, new, K_SHOT, classifier), atol=1e-6
    )
    # The same tasks as (X, y) pairs of raw frames.
    df, y, t = new
    pairs = [(df[t == c], y[t == c]) for c in np.unique(t)]
    as_pairs = few_shot_score(pipe, pairs, k_shot=K_SHOT, random_state=0)
    np.testing.assert_array_equal(as_pairs.per_task, result.per_task)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = transfer_report(pipe, new, k_shot=K_SHOT, random_state=0)
    assert all(w.category is NegativeTransferWarning for w in caught)
    np.testing.assert_array_equal(report.adapted, result.per_task)


@pytest.mark.parametrize(
    "classification", [pytest.param(True, marks=pytest.mark.slow), False]
)
def test_transfer_report_fits_the_pooled_baselines_on_transformed_rows(
    classification,
):
    # The baselines see the rows as the pipeline's last step does: the
    # pooled ones are fitted on the encoded training tasks.
    name = "MetaRidgeClassifier" if classification else "MetaRidgeRegressor"
    X, y, t = make_data(classification, new=False)
    X_new, y_new, t_new = make_data(classification, new=True)
    train, new = (frame(X, t), y, t), (frame(X_new, t_new), y_new, t_new)
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pipe = make_pipeline(
        ColumnTransformer([("site", encoder, ["site"])], remainder="passthrough"),
        clone(FAMILIES[name]),
    )
    with routing():
        pipe.fit(*train[:2], task_ids=t)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        report = transfer_report(
            pipe, new, k_shot=K_SHOT, train_tasks=train, random_state=0
        )
    assert list(report.baselines) == [
        "support set only",
        "pooled",
        "pooled + shrunk offset",
    ]
    encoded = pipe[0].transform
    pooled = (PooledClassifier if classification else PooledRegressor)(offset=None)
    pooled.fit(encoded(train[0]), y, task_ids=t)
    expected = few_shot_score(
        pooled, (encoded(new[0]), y_new, t_new), k_shot=K_SHOT, random_state=0
    )
    np.testing.assert_allclose(report.baselines["pooled"], expected.per_task)


@pytest.mark.parametrize("name", REGRESSORS)
def test_few_shot_score_accepts_a_transformed_target_regressor(name):
    X, y, t = make_data(classification=False, new=False)
    X_new, y_new, t_new = make_data(classification=False, new=True)
    ttr = TransformedTargetRegressor(
        clone(FAMILIES[name]), func=np.log1p, inverse_func=np.expm1
    ).fit(X, y, task_ids=t)
    new = (X_new, y_new, t_new)
    result = few_shot_score(ttr, new, k_shot=K_SHOT, random_state=0)
    by_hand = by_hand_scores(ttr, new, K_SHOT, classifier=False)
    np.testing.assert_allclose(result.per_task, by_hand, rtol=1e-9)
    # The scores are of the predictions in the user's units: not those of the
    # regressor inside on log1p targets.
    inside = few_shot_score(
        ttr.regressor_, (X_new, np.log1p(y_new), t_new), k_shot=K_SHOT, random_state=0
    )
    assert not np.allclose(result.per_task, inside.per_task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = transfer_report(ttr, new, k_shot=K_SHOT, random_state=0)
    assert all(w.category is NegativeTransferWarning for w in caught)
    np.testing.assert_array_equal(report.adapted, result.per_task)
