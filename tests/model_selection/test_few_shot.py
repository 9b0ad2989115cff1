"""few_shot_score: vectorised episodes equal a plain loop of adapt/predict."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from sktransfer import MAMLClassifier, MAMLRegressor, TaskSet
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.model_selection import few_shot_score
from sktransfer.model_selection._few_shot import draw_episodes, predict_episodes


@pytest.fixture(scope="module")
def regressor():
    X, y, t = make_sinusoid_tasks(n_tasks=40, n_samples=20, random_state=0)
    return MAMLRegressor(
        hidden_layer_sizes=(16,), max_iter=40, n_adapt_steps=3, random_state=0
    ).fit(X, y, task_ids=t)


@pytest.fixture(scope="module")
def classifier():
    X, y, t = make_related_classification_tasks(
        n_tasks=20, n_samples=40, n_classes=3, random_state=0
    )
    return MAMLClassifier(
        hidden_layer_sizes=(16,), max_iter=40, inner_lr=0.1, random_state=0
    ).fit(X, y, task_ids=t)


def _loop(estimator, tasks, episodes):
    """The reference: a Python loop of adapt and predict."""
    return [
        estimator.adapt(tasks.X[s], tasks.y[s]).predict(tasks.X[q])
        for episode in episodes
        for s, q in episode
    ]


def test_batched_regression_equals_the_loop(regressor):
    tasks = TaskSet.from_arrays(*make_sinusoid_tasks(n_tasks=15, random_state=1))
    episodes = draw_episodes(
        tasks, k_shot=5, n_query=None, n_episodes=2, per_class=False, random_state=0
    )
    flat = [pair for episode in episodes for pair in episode]
    batched = predict_episodes(
        regressor,
        [(tasks.X[s], tasks.y[s]) for s, _ in flat],
        [tasks.X[q] for _, q in flat],
        ["t"] * len(flat),
    )
    for got, want in zip(batched, _loop(regressor, tasks, episodes), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    result = few_shot_score(regressor, tasks, k_shot=5, n_episodes=2, random_state=0)
    by_hand = [
        r2_score(tasks.y[q], pred)
        for (_, q), pred in zip(flat, _loop(regressor, tasks, episodes), strict=True)
    ]
    np.testing.assert_allclose(
        result.per_task, np.reshape(by_hand, (2, 15)).mean(0), atol=1e-5
    )
    assert result.ci95[0] < result.mean < result.ci95[1]


@pytest.mark.parametrize("n_way", [None, 3])
def test_batched_classification_equals_the_loop(classifier, n_way):
    X, y, t = make_related_classification_tasks(
        n_tasks=10, n_samples=40, n_classes=3, random_state=2
    )
    if n_way is not None:
        est = MAMLClassifier(
            hidden_layer_sizes=(16,), max_iter=40, n_way=3, k_shot=3, random_state=0
        ).fit(X, y, task_ids=t)
        y = np.array(["a", "b", "c"])[y]  # new labels: the episodic space takes them
    else:
        est = classifier
    tasks = TaskSet.from_arrays(X, y, t)
    episodes = draw_episodes(
        tasks, k_shot=3, n_query=5, n_episodes=1, per_class=True, random_state=0
    )
    flat = episodes[0]
    batched = predict_episodes(
        est,
        [(tasks.X[s], tasks.y[s]) for s, _ in flat],
        [tasks.X[q] for _, q in flat],
        ["t"] * len(flat),
    )
    loop = _loop(est, tasks, episodes)
    agreement = np.mean(np.concatenate(batched) == np.concatenate(loop))
    assert agreement >= 0.99
    assert all(len(q) == 15 for _, q in flat)  # n_query=5 per class, 3 classes


def test_score_with_task_ids_is_few_shot_score(classifier):
    X, y, t = make_related_classification_tasks(
        n_tasks=8, n_samples=40, n_classes=3, random_state=3
    )
    expected = few_shot_score(
        classifier, (X, y, t), k_shot=classifier.k_shot, random_state=0
    ).mean
    assert classifier.score(X, y, task_ids=t) == pytest.approx(expected)


def test_estimator_state_is_untouched(regressor):
    X, y, t = make_sinusoid_tasks(n_tasks=5, random_state=4)
    regressor.adapt(X[:5], y[:5])
    before = regressor.predict(X)
    few_shot_score(regressor, (X, y, t), k_shot=5, random_state=0)
    np.testing.assert_array_equal(regressor.predict(X), before)


def test_bad_tasks_are_named(classifier):
    X, y, t = make_related_classification_tasks(
        n_tasks=3, n_samples=40, n_classes=3, random_state=5
    )
    with pytest.raises(ValueError, match="task 1 has 2 features"):
        few_shot_score(
            classifier,
            [(X[t == 0], y[t == 0]), (X[t == 1][:, :2], y[t == 1])],
            k_shot=2,
        )
    y_new = np.where(t == 2, y + 10, y)
    with pytest.raises(ValueError, match=r"task 2 has labels \[10, 11, 12\]"):
        few_shot_score(classifier, (X, y_new, t), k_shot=2)


def test_metric_replaces_the_default_score(regressor):
    from sklearn.metrics import mean_squared_error

    tasks = make_sinusoid_tasks(n_tasks=6, random_state=7)
    default = few_shot_score(regressor, tasks, k_shot=5, random_state=0)
    mse = few_shot_score(
        regressor, tasks, k_shot=5, random_state=0, metric=mean_squared_error
    )
    episodes = draw_episodes(
        TaskSet.from_arrays(*tasks),
        k_shot=5,
        n_query=None,
        n_episodes=1,
        per_class=False,
        random_state=0,
    )
    ts = TaskSet.from_arrays(*tasks)
    by_hand = [
        mean_squared_error(ts.y[q], pred)
        for (_, q), pred in zip(
            episodes[0], _loop(regressor, ts, episodes), strict=True
        )
    ]
    np.testing.assert_allclose(mse.per_task, by_hand, rtol=1e-5)
    assert not np.allclose(default.per_task, mse.per_task)


def test_ci95_is_scipys_student_t_interval(regressor):
    # An independent reference: scipy's t interval of the per-task means, with
    # n - 1 degrees of freedom.
    from scipy import stats

    tasks = make_sinusoid_tasks(n_tasks=6, random_state=3)
    result = few_shot_score(regressor, tasks, k_shot=5, random_state=0)
    per_task = result.per_task
    low, high = stats.t.interval(
        0.95, len(per_task) - 1, loc=per_task.mean(), scale=stats.sem(per_task)
    )
    np.testing.assert_allclose(result.ci95, (low, high), rtol=1e-12)


def test_every_episode_draws_its_own_split_and_seeds_repeat():
    tasks = TaskSet.from_arrays(*make_sinusoid_tasks(n_tasks=8, random_state=4))

    def draw(seed):
        return draw_episodes(
            tasks,
            k_shot=5,
            n_query=None,
            n_episodes=3,
            per_class=False,
            random_state=seed,
        )

    first, again, other = draw(0), draw(0), draw(1)
    supports = [[tuple(s) for s, _ in episode] for episode in first]
    # Three episodes of one task: three different support sets, every task.
    for task in range(8):
        assert len({supports[e][task] for e in range(3)}) == 3
    assert supports == [[tuple(s) for s, _ in episode] for episode in again]
    assert supports != [[tuple(s) for s, _ in episode] for episode in other]


def test_sample_weight_weighs_the_query_rows(regressor):
    # The weighted R2 of each episode's query rows, by hand with sklearn: the
    # weights are those of the query rows, not of the support rows.
    tasks = TaskSet.from_arrays(*make_sinusoid_tasks(n_tasks=5, random_state=5))
    weight = np.random.default_rng(0).uniform(0.1, 3.0, size=len(tasks.y))
    result = few_shot_score(
        regressor, tasks, k_shot=5, random_state=0, sample_weight=weight
    )
    (episode,) = draw_episodes(
        tasks, k_shot=5, n_query=None, n_episodes=1, per_class=False, random_state=0
    )
    by_hand = [
        r2_score(
            tasks.y[q],
            regressor.adapt(tasks.X[s], tasks.y[s]).predict(tasks.X[q]),
            sample_weight=weight[q],
        )
        for s, q in episode
    ]
    np.testing.assert_allclose(result.per_task, by_hand, atol=1e-5)
    unweighted = few_shot_score(regressor, tasks, k_shot=5, random_state=0)
    assert not np.allclose(result.per_task, unweighted.per_task)


# -- the forms of ``tasks``, through a pipeline or not ------------------------------
# A pipeline's fitted transformers see the rows of every form of ``tasks`` as
# the user gives them; scoring the pipeline is scoring its last step on the
# rows transformed by hand.
COLUMNS = ["x0", "x1", "x2"]


def _new_tasks():
    from sktransfer.datasets import make_related_regression_tasks

    return make_related_regression_tasks(
        n_tasks=6, n_samples=20, n_features=3, random_state=1
    )


@pytest.fixture(scope="module")
def named_pipeline():
    """Columns chosen by name (so it needs a frame), then a meta-learner."""
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktransfer import MetaRidgeRegressor
    from sktransfer.datasets import make_related_regression_tasks

    pd = pytest.importorskip("pandas")
    X, y, t = make_related_regression_tasks(
        n_tasks=12, n_samples=20, n_features=3, random_state=0
    )
    pipe = make_pipeline(
        ColumnTransformer([("scale", StandardScaler(), ["x2", "x0"])]),
        MetaRidgeRegressor(
            hidden_layer_sizes=(16,),
            n_components=4,
            max_iter=30,
            k_shot=5,
            early_stopping=False,
            random_state=0,
        ),
    )
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(pd.DataFrame(X, columns=COLUMNS), y, task_ids=t)
    return pipe


def test_a_taskset_of_named_columns_reaches_the_pipeline_as_a_frame(named_pipeline):
    pd = pytest.importorskip("pandas")
    X, y, t = _new_tasks()
    frame = pd.DataFrame(X, columns=COLUMNS)
    tasks = TaskSet.from_arrays(frame, y, t)
    result = few_shot_score(named_pipeline, tasks, k_shot=5, random_state=0)
    by_hand = few_shot_score(
        named_pipeline[-1],
        (named_pipeline[0].transform(frame), y, t),
        k_shot=5,
        random_state=0,
    )
    np.testing.assert_array_equal(result.per_task, by_hand.per_task)
    np.testing.assert_array_equal(result.task_labels, np.unique(t))
    # A TaskSet of plain arrays, through a pipeline that needs no names.
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = X[:, [2, 0]] * 3.0 + 1.0
    scaler = StandardScaler().fit(X)
    plain = make_pipeline(scaler, named_pipeline[-1])
    result = few_shot_score(
        plain, TaskSet.from_arrays(X, y, t), k_shot=5, random_state=0
    )
    by_hand = few_shot_score(
        named_pipeline[-1], (scaler.transform(X), y, t), k_shot=5, random_state=0
    )
    np.testing.assert_array_equal(result.per_task, by_hand.per_task)


@pytest.mark.parametrize("through_pipeline", [False, True])
def test_a_tuple_of_pairs_is_a_sequence_of_tasks(named_pipeline, through_pipeline):
    pd = pytest.importorskip("pandas")
    X, y, t = _new_tasks()
    if through_pipeline:
        est, X = named_pipeline, pd.DataFrame(X, columns=COLUMNS)
    else:
        est, X = (
            named_pipeline[-1],
            named_pipeline[0].transform(pd.DataFrame(X, columns=COLUMNS)),
        )
    # Three pairs too: a tuple of three is not the flat (X, y, task_ids).
    for n_tasks in (4, 3):
        pairs = [(X[t == c], y[t == c]) for c in range(n_tasks)]
        as_list = few_shot_score(est, pairs, k_shot=5, random_state=0)
        as_tuple = few_shot_score(est, tuple(pairs), k_shot=5, random_state=0)
        np.testing.assert_array_equal(as_tuple.per_task, as_list.per_task)
        assert len(as_tuple.per_task) == n_tasks
    # The flat form is a tuple: a list of X, y and task_ids is three tasks,
    # and X is no (X, y) pair.
    flat = (X, y, t)
    few_shot_score(est, flat, k_shot=5, random_state=0)
    with pytest.raises(ValueError, match=r"^task 0 is not an \(X, y\) pair\.$"):
        few_shot_score(est, list(flat), k_shot=5)


def test_tasks_that_are_not_pairs_are_refused_through_a_pipeline(named_pipeline):
    pd = pytest.importorskip("pandas")
    X, y, t = _new_tasks()
    frame = pd.DataFrame(X, columns=COLUMNS)
    pairs = [(frame[t == c], y[t == c]) for c in range(2)]
    weighted = pairs[1] + (np.ones(len(pairs[1][1])),)
    with pytest.raises(ValueError, match=r"^task 1 is not an \(X, y\) pair\.$"):
        few_shot_score(named_pipeline, [pairs[0], weighted], k_shot=5)
    # Neither pairs nor a TaskSet: the same message as for the bare estimator.
    for tasks in (5, {"task": pairs[0]}):
        with pytest.raises(TypeError) as bare:
            few_shot_score(named_pipeline[-1], tasks, k_shot=5)
        with pytest.raises(TypeError) as piped:
            few_shot_score(named_pipeline, tasks, k_shot=5)
        assert str(piped.value) == str(bare.value)
        assert type(tasks).__name__ in str(piped.value)


def test_a_transformer_with_sparse_output_is_scored_on_dense_rows():
    # A user's own estimator with adapt behind a one-hot encoder whose output
    # is sparse: each task's R2 equals a plain loop over the support/query
    # splits with the rows transformed by hand and made dense.
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    pd = pytest.importorskip("pandas")

    class RidgeOnSupport(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            self.ridge_ = Ridge().fit(X, y)
            return self

        def adapt(self, X, y):
            self.ridge_ = Ridge().fit(X, y)
            return self

        def predict(self, X):
            return self.ridge_.predict(X)

    X, y, t = _new_tasks()
    frame = pd.DataFrame(X, columns=COLUMNS)
    frame["site"] = np.array(["north", "south", "west"])[np.arange(len(y)) % 3]
    encode = ColumnTransformer(
        [("site", OneHotEncoder(), ["site"])],
        remainder="passthrough",
        sparse_threshold=1.0,
    )
    pipe = make_pipeline(encode, RidgeOnSupport()).fit(frame, y)
    assert hasattr(pipe[0].transform(frame), "toarray")  # sparse indeed
    result = few_shot_score(pipe, (frame, y, t), k_shot=5, random_state=0)
    rows = pipe[0].transform(frame).toarray()
    (episode,) = draw_episodes(
        TaskSet.from_arrays(rows, y, t),
        k_shot=5,
        n_query=None,
        n_episodes=1,
        per_class=False,
        random_state=0,
    )
    by_hand = [
        r2_score(y[q], Ridge().fit(rows[s], y[s]).predict(rows[q])) for s, q in episode
    ]
    np.testing.assert_allclose(result.per_task, by_hand, rtol=1e-10)


@pytest.mark.parametrize("n_tasks", [1, 2])
def test_ci95_of_one_or_two_tasks_is_scipys(regressor, n_tasks):
    # Two tasks have an interval (t with one degree of freedom); one task
    # has none, as in scipy: NaN at both ends, not a zero-width interval.
    import warnings

    from scipy import stats

    tasks = make_sinusoid_tasks(n_tasks=n_tasks, random_state=3)
    result = few_shot_score(regressor, tasks, k_shot=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy: sem of one value
        expected = stats.t.interval(
            0.95, n_tasks - 1, loc=result.mean, scale=stats.sem(result.per_task)
        )
    np.testing.assert_allclose(result.ci95, expected, rtol=1e-12)
    assert np.isfinite(result.ci95).all() == (n_tasks == 2)
