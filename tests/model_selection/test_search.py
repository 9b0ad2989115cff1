"""Model selection by few-shot score on held-out tasks, with metadata routing.

With ``sklearn.config_context(enable_metadata_routing=True)`` one array of
task labels given to a search reaches the task-aware splitter (``groups``),
`fit` and `score` (``task_ids``), so candidates are ranked by how well they
adapt to tasks that were held out of meta-training. Routing is switched on in
a context in every test, never globally.
"""

import numpy as np
import pytest
import sklearn
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    HalvingGridSearchCV,
    RandomizedSearchCV,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sktransfer import MAMLClassifier, MAMLRegressor
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks

NUMERIC = ["x0", "x1", "x2", "x3"]
# 1e-5 is too small for the inner loop: adaptation changes nothing.
GRID = {"mamlclassifier__inner_lr": [1e-5, 0.3]}
MARGIN = 0.05


def routing():
    return sklearn.config_context(enable_metadata_routing=True)


def make_maml(**params):
    defaults = dict(
        hidden_layer_sizes=(16,),
        max_iter=50,
        inner_lr=0.3,
        n_adapt_steps=5,
        random_state=0,
    )
    return MAMLClassifier(**{**defaults, **params})


def make_pipe(**params):
    return make_pipeline(
        make_column_transformer(
            (StandardScaler(), NUMERIC), (OneHotEncoder(), ["site"])
        ),
        make_maml(**params),
    )


def scores_by_param(search, name):
    """Mean test score of each candidate, keyed by the value of ``name``."""
    results = search.cv_results_
    return dict(zip(results[f"param_{name}"], results["mean_test_score"], strict=True))


@pytest.fixture(scope="module")
def tasks():
    """20 tasks of 40 rows as a DataFrame: 4 numeric columns and a site."""
    pd = pytest.importorskip("pandas")  # in the dev extra
    X, y, t = make_related_classification_tasks(
        n_tasks=20, n_samples=40, n_features=4, random_state=0
    )
    df = pd.DataFrame(X, columns=NUMERIC)
    df["site"] = np.array(["north", "south", "west"])[t % 3]
    return df, y, t


@pytest.fixture(scope="module")
def search(tasks):
    df, y, t = tasks
    with routing():
        return GridSearchCV(make_pipe(), GRID, cv=GroupKFold(n_splits=4)).fit(
            df, y, groups=t, task_ids=t
        )


def test_group_k_fold_holds_out_whole_tasks(tasks):
    df, y, t = tasks
    seen = []
    for train, test in GroupKFold(n_splits=4).split(df, y, groups=t):
        assert set(t[train]).isdisjoint(t[test])
        seen.extend(np.unique(t[test]))
    assert sorted(seen) == list(np.unique(t))


@pytest.mark.slow
def test_grid_search_selects_by_few_shot_score(search):
    scores = scores_by_param(search, "mamlclassifier__inner_lr")
    assert search.best_params_ == {"mamlclassifier__inner_lr": 0.3}
    assert scores[0.3] > scores[1e-5] + MARGIN
    assert search.n_splits_ == 4
    # The refit pipeline was fitted on the DataFrame, names and all.
    assert list(search.best_estimator_.feature_names_in_) == NUMERIC + ["site"]


@pytest.mark.parametrize(
    "params, grid, best",
    [
        # A tiny inner_lr loses, and one so large that adaptation diverges
        # loses too.
        pytest.param(
            {},
            {"inner_lr": [1e-5, 0.01, 0.1]},
            {"inner_lr": 0.01},
            marks=pytest.mark.slow,
        ),
        # The same grid picks opposite values when the few-shot signal flips:
        # adapting helps at inner_lr=0.01 and destroys the fit at 0.1.
        pytest.param(
            {"inner_lr": 0.01},
            {"n_adapt_steps": [0, 5]},
            {"n_adapt_steps": 5},
            marks=pytest.mark.slow,
        ),
        ({"inner_lr": 0.1}, {"n_adapt_steps": [0, 5]}, {"n_adapt_steps": 0}),
    ],
    ids=["inner_lr", "adapting-helps", "adapting-diverges"],
)
def test_regression_selection_follows_few_shot_score(params, grid, best):
    X, y, t = make_sinusoid_tasks(n_tasks=20, n_samples=20, random_state=0)
    est = MAMLRegressor(
        hidden_layer_sizes=(16,), max_iter=50, n_adapt_steps=5, random_state=0
    ).set_params(**params)
    with routing():
        search = GridSearchCV(est, grid, cv=GroupKFold(n_splits=4)).fit(
            X, y, groups=t, task_ids=t
        )
    assert search.best_params_ == best
    (name,) = grid
    scores = scores_by_param(search, name)
    # A diverged adaptation may score -inf or nan: rank it below everything.
    others = [
        np.nan_to_num(s, nan=-np.inf) for v, s in scores.items() if v != best[name]
    ]
    assert max(others) < scores[best[name]] - MARGIN


def test_cross_validate_scores_are_few_shot_scores(tasks):
    df, y, t = tasks
    with routing():
        cv = cross_validate(
            make_pipe(),
            df,
            y,
            cv=GroupKFold(n_splits=4),
            params={"groups": t, "task_ids": t},
            return_estimator=True,
            return_indices=True,
        )
        by_hand = [
            est.score(df.iloc[test], y[test], task_ids=t[test])
            for est, test in zip(cv["estimator"], cv["indices"]["test"], strict=True)
        ]
    np.testing.assert_allclose(cv["test_score"], by_hand, rtol=0, atol=1e-12)
    # ... and not the plain accuracy of the unadapted meta-model.
    plain = [
        est.score(df.iloc[test], y[test])
        for est, test in zip(cv["estimator"], cv["indices"]["test"], strict=True)
    ]
    assert not np.allclose(cv["test_score"], plain)


@pytest.mark.slow
def test_randomized_search_routes_task_ids(tasks, search):
    df, y, t = tasks
    with routing():
        randomized = RandomizedSearchCV(
            make_pipe(), GRID, n_iter=2, random_state=0, cv=GroupKFold(n_splits=4)
        ).fit(df, y, groups=t, task_ids=t)
    assert randomized.best_params_ == {"mamlclassifier__inner_lr": 0.3}
    # Same candidates, same folds, same seeds: the grid search's scores.
    name = "mamlclassifier__inner_lr"
    assert scores_by_param(randomized, name) == pytest.approx(
        scores_by_param(search, name), abs=1e-12
    )


@pytest.mark.slow
def test_halving_search_over_meta_iterations(tasks):
    # resource="max_iter" (meta-iterations) is the natural budget of a
    # meta-learner: every round sees all rows of all training tasks, so each
    # task keeps the k_shot + n_query rows per class that episodes and the
    # few-shot score need. resource="n_samples" does not work, see below.
    df, y, t = tasks
    with routing():
        halving = HalvingGridSearchCV(
            make_pipe(),
            GRID,
            resource="mamlclassifier__max_iter",
            min_resources=25,
            max_resources=50,
            factor=2,
            cv=GroupKFold(n_splits=4),
            random_state=0,
        ).fit(df, y, groups=t, task_ids=t)
    assert halving.n_resources_ == [25, 50]
    assert halving.n_candidates_ == [2, 1]
    assert halving.best_params_ == {
        "mamlclassifier__inner_lr": 0.3,
        "mamlclassifier__max_iter": 50,
    }
    assert halving.best_estimator_[-1].n_iter_ == 50


@pytest.mark.slow
def test_halving_search_over_rows_keeps_every_task(tasks):
    # resource="n_samples" subsamples rows, not tasks: half the rows leave
    # some task with fewer than k_shot + n_query = 10 rows of a class. Such
    # tasks give the rows they have (with a warning) and the search runs to
    # the end, ranking by few-shot score on held-out tasks.
    df, y, t = tasks
    halving = HalvingGridSearchCV(
        make_pipe(),
        GRID,
        resource="n_samples",
        min_resources=400,
        factor=2,
        cv=GroupKFold(n_splits=4),
        random_state=0,
        error_score="raise",
    )
    with routing(), pytest.warns(UserWarning, match=r"k_shot \+ n_query = 10"):
        halving.fit(df, y, groups=t, task_ids=t)
    assert halving.best_params_ == {"mamlclassifier__inner_lr": 0.3}


@pytest.mark.slow
def test_without_routing_scores_are_plain_accuracy(tasks):
    """Routing disabled (the default): task_ids reaches fit, not score.

    sklearn passes the extra ``task_ids`` to ``fit`` as a fit parameter,
    sliced to each training fold, and ``groups`` to the splitter, but scores
    with plain ``score(X, y)``: the accuracy of the unadapted meta-model, so
    the search does not rank by few-shot performance.
    """
    assert not sklearn.get_config()["enable_metadata_routing"]
    df, y, t = tasks
    X = df[NUMERIC].to_numpy()
    grid = {"inner_lr": [1e-5, 0.3]}
    search = GridSearchCV(make_maml(), grid, cv=GroupKFold(n_splits=4)).fit(
        X, y, groups=t, task_ids=t
    )
    train, test = next(GroupKFold(n_splits=4).split(X, y, groups=t))
    for i, params in enumerate(search.cv_results_["params"]):
        fold_score = search.cv_results_["split0_test_score"][i]
        est = clone(make_maml()).set_params(**params)
        est.fit(X[train], y[train], task_ids=t[train])
        assert fold_score == est.score(X[test], y[test])
        assert fold_score != est.score(X[test], y[test], task_ids=t[test])
    # task_ids did reach fit: without it the fold is meta-trained as one task.
    one_task = make_maml().fit(X[train], y[train])
    assert search.cv_results_["split0_test_score"][1] != one_task.score(
        X[test], y[test]
    )


def test_pipeline_without_routing_refuses_task_ids(tasks):
    df, y, t = tasks
    with pytest.raises(ValueError, match="task_ids"):
        make_pipe().fit(df, y, task_ids=t)


@pytest.mark.slow
def test_loky_gives_the_same_scores(tasks, search):
    df, y, t = tasks
    with routing():
        parallel = GridSearchCV(
            make_pipe(), GRID, cv=GroupKFold(n_splits=4), n_jobs=2
        ).fit(df, y, groups=t, task_ids=t)
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"],
        search.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
    assert parallel.best_params_ == search.best_params_


@pytest.fixture
def dask_client():
    distributed = pytest.importorskip("distributed")
    # Worker processes, not threads: fits in threads of one process share
    # torch's global RNG, which MAML seeds while it builds its network.
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@pytest.mark.slow
def test_dask_gives_the_same_scores(tasks, search, dask_client):
    from distributed import get_task_stream

    df, y, t = tasks
    with routing(), parallel_backend("dask"), get_task_stream(dask_client) as ts:
        parallel = GridSearchCV(
            make_pipe(), GRID, cv=GroupKFold(n_splits=4), n_jobs=-1
        ).fit(df, y, groups=t, task_ids=t)
    assert len(ts.data) > 0  # the fits ran on the cluster
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"],
        search.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
    assert parallel.best_params_ == search.best_params_
