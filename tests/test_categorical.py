"""DataFrames as they are: string and categorical columns in every estimator.

The reference is scikit-learn's own encoding: an estimator given a raw
DataFrame must predict exactly as the same estimator behind
``ColumnTransformer([("num", "passthrough", numeric), ("cat",
OneHotEncoder(handle_unknown="ignore"), categorical)])``, in `fit`, in
`adapt` with a category never met in `fit`, and in few-shot scoring.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import sktransfer
from sktransfer import (
    DANNClassifier,
    DANNRegressor,
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    PooledClassifier,
    PooledRegressor,
    ProtoNetClassifier,
    SupportSetClassifier,
    SupportSetRegressor,
    TaskSet,
    few_shot_score,
    transfer_report,
)
from tests._marks import slow_only

pd = pytest.importorskip("pandas")

NUMERIC = ["x0", "x1"]
CATEGORICAL = ["site", "kind"]
SMALL = dict(hidden_layer_sizes=(8,), random_state=0)
ESTIMATORS = {
    "MAMLClassifier": MAMLClassifier(max_iter=10, k_shot=3, **SMALL),
    "MAMLRegressor": MAMLRegressor(max_iter=10, k_shot=3, **SMALL),
    "MetaRidgeClassifier": MetaRidgeClassifier(
        max_iter=10, n_components=2, k_shot=3, early_stopping=False, **SMALL
    ),
    "MetaRidgeRegressor": MetaRidgeRegressor(
        max_iter=10, n_components=2, k_shot=3, early_stopping=False, **SMALL
    ),
    "ProtoNetClassifier": ProtoNetClassifier(
        max_iter=10, n_components=2, k_shot=3, early_stopping=False, **SMALL
    ),
    "FineTuneClassifier": FineTuneClassifier(max_iter=3, adapt_max_iter=2, **SMALL),
    "FineTuneRegressor": FineTuneRegressor(max_iter=3, adapt_max_iter=2, **SMALL),
    "DANNClassifier": DANNClassifier(max_iter=3, **SMALL),
    "DANNRegressor": DANNRegressor(max_iter=3, **SMALL),
    "PooledClassifier": PooledClassifier(cv=3),
    "PooledRegressor": PooledRegressor(cv=3),
    "SupportSetClassifier": SupportSetClassifier(),
    "SupportSetRegressor": SupportSetRegressor(),
}
ADAPTING = [name for name in ESTIMATORS if not name.startswith("DANN")]


def table(n_tasks=12, n_rows=16, seed=0, sites=("north", "south", "west")):
    """A raw table: two numeric columns, a string column and a pandas
    categorical column; the targets depend on both kinds of column."""
    rng = np.random.RandomState(seed)
    n = n_tasks * n_rows
    t = np.repeat(np.arange(n_tasks), n_rows)
    df = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "site": rng.choice(np.array(sites, dtype=object), n),
            "x1": rng.normal(size=n),
            "kind": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )
    y = (
        df["x0"].to_numpy()
        + 2.0 * (df["site"] == "north").to_numpy()
        - (df["kind"] == "b").to_numpy()
        + 0.5 * rng.normal(size=n_tasks)[t]
        + 0.1 * rng.normal(size=n)
    )
    return df, y, t


def targets(name, y):
    if name.endswith("Classifier"):
        return (y > np.median(y)).astype(np.int64)
    return y


def reference_pipeline(estimator):
    """The same estimator behind scikit-learn's encoding of the table."""
    encode = ColumnTransformer(
        [
            ("num", "passthrough", NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ],
        sparse_threshold=0,
    )
    return Pipeline(
        [("encode", encode), ("model", clone(estimator).set_params(**NO_CATEGORIES))]
    )


NO_CATEGORIES = {"categorical_features": None}


def fit(estimator, name, df, y, t):
    """`fit` as each kind of estimator takes the rows (a pipeline routes the
    task or domain labels to its last step)."""
    y = targets(name, y)
    kwargs = {"task_ids": t}
    if name.startswith("SupportSet"):
        kwargs = {}
    elif name.startswith("DANN"):
        domain = np.where(t < 8, 1, -1)
        y = (
            np.where(domain > 0, y, -1)
            if name.endswith("Classifier")
            else np.where(domain > 0, y, np.nan)
        )
        kwargs = {"sample_domain": domain}
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # short tasks
            return estimator.fit(df, y, **kwargs)


def support_with_unseen(name, seed=1):
    """A new task's support and query rows; one support row has the site
    "east", which `fit` never met."""
    df, y, _ = table(n_tasks=1, n_rows=12, seed=seed)
    df.loc[0, "site"] = "east"
    y = targets(name, y)
    if name.endswith("Classifier"):
        y[:2] = [0, 1]  # both classes in the support set
    return df.iloc[:6], y[:6], df.iloc[6:]


def outputs(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X)


@pytest.mark.parametrize(
    "name", slow_only(list(ESTIMATORS), "MAMLClassifier", "PooledClassifier")
)
def test_raw_frame_fits_adapts_and_predicts_as_the_encoded_pipeline(name):
    """Every estimator takes the raw table and predicts what the same
    estimator behind OneHotEncoder predicts, before and after `adapt` with a
    category never met in `fit`."""
    df, y, t = table()
    est = fit(clone(ESTIMATORS[name]), name, df, y, t)
    ref = fit(reference_pipeline(ESTIMATORS[name]), name, df, y, t)

    assert est.feature_names_in_.tolist() == list(df.columns)
    assert est.n_features_in_ == 4
    assert est.is_categorical_.tolist() == [False, True, False, True]
    assert [c.tolist() for c in est.categories_] == [
        ["north", "south", "west"],
        ["a", "b"],
    ]
    X_s, y_s, X_q = support_with_unseen(name)
    np.testing.assert_allclose(outputs(est, X_q), outputs(ref, X_q), atol=1e-6)
    if name in ADAPTING:
        est.adapt(X_s, y_s)
        sktransfer.adapt(ref, X_s, y_s)
        assert np.isfinite(outputs(est, X_q)).all()
        np.testing.assert_allclose(outputs(est, X_q), outputs(ref, X_q), atol=1e-6)


@pytest.mark.parametrize("name", ["MetaRidgeRegressor", "FineTuneClassifier"])
def test_an_unseen_category_is_all_zeros(name):
    """A row whose site `fit` never met is predicted as the row with no site:
    its one-hot block all zeros."""
    df, y, t = table()
    est = fit(clone(ESTIMATORS[name]), name, df, y, t)
    X_s, y_s, X_q = support_with_unseen(name)
    est.adapt(X_s, y_s)
    unseen = X_q.assign(site="east")
    other = X_q.assign(site="nowhere")
    known = X_q.assign(site="north")
    np.testing.assert_array_equal(outputs(est, unseen), outputs(est, other))
    assert not np.allclose(outputs(est, unseen), outputs(est, known))


def test_the_network_sees_one_hot_columns_after_the_numeric_ones():
    est = fit(clone(ESTIMATORS["MAMLRegressor"]), "MAMLRegressor", *table())
    # 2 numeric columns, 3 sites and 2 kinds.
    assert est.module_[0].in_features == 7
    assert est.x_mean_.shape == (7,)
    X = est._validate_inference_X(table(n_tasks=1, n_rows=3, seed=2)[0])
    assert X.shape == (3, 4)
    expanded = est._expand_categories(X)
    assert expanded.shape == (3, 7)
    np.testing.assert_array_equal(expanded[:, 2:5].sum(1), 1)
    np.testing.assert_array_equal(expanded[:, 5:].sum(1), 1)


def test_task_list_of_frames_equals_the_flat_form():
    """Categories come from all tasks of a list, as from the flat table: a
    site that only the last task has is known."""
    df, y, t = table()
    df.loc[t == 11, "site"] = "harbour"
    flat = fit(clone(ESTIMATORS["MetaRidgeRegressor"]), "MetaRidgeRegressor", df, y, t)
    pairs = [(df[t == i], y[t == i]) for i in range(12)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        listed = clone(ESTIMATORS["MetaRidgeRegressor"]).fit(pairs)
    assert "harbour" in listed.categories_[0].tolist()
    X_q = table(n_tasks=1, seed=3)[0]
    np.testing.assert_allclose(listed.predict(X_q), flat.predict(X_q))


@pytest.mark.parametrize("spec", [[1, 3], ["site", "kind"], [False, True, False, True]])
def test_explicit_categorical_features_name_the_same_columns(spec):
    df, y, t = table()
    by_dtype = fit(clone(ESTIMATORS["PooledRegressor"]), "PooledRegressor", df, y, t)
    explicit = fit(
        clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=spec),
        "PooledRegressor",
        df,
        y,
        t,
    )
    X_q = table(n_tasks=1, seed=3)[0]
    np.testing.assert_allclose(explicit.predict(X_q), by_dtype.predict(X_q))


def test_integer_codes_in_an_array_are_categories_when_named():
    """``categorical_features`` by index reads the codes of a numpy array as
    categories: the same predictions as the table with that column as a
    string."""
    df, y, t = table()
    codes = {"north": 0, "south": 1, "west": 2}
    X = np.c_[df["x0"], df["site"].map(codes), df["x1"]]
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=[1])
    est.fit(X, y, task_ids=t)
    assert [c.tolist() for c in est.categories_] == [[0.0, 1.0, 2.0]]
    ref = fit(
        clone(ESTIMATORS["PooledRegressor"]),
        "PooledRegressor",
        df[["x0", "site", "x1"]],
        y,
        t,
    )
    new = table(n_tasks=1, seed=3)[0]
    X_new = np.c_[new["x0"], new["site"].map(codes), new["x1"]]
    np.testing.assert_allclose(
        est.predict(X_new), ref.predict(new[["x0", "site", "x1"]])
    )


def test_without_categorical_features_strings_are_refused():
    df, y, t = table()
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=None)
    with pytest.raises(ValueError, match="could not convert string to float"):
        est.fit(df, y, task_ids=t)


MISSING = (
    "The categorical column 'site' has 1 missing values. Fill them first, for "
    "instance with sklearn's SimpleImputer(strategy='most_frequent') in a "
    "Pipeline before the estimator (sktransfer.adapt adapts a Pipeline), or "
    "give them a category of their own."
)


@pytest.mark.parametrize("name", ["MAMLClassifier", "MetaRidgeRegressor"])
@pytest.mark.parametrize("when", ["fit", "adapt", "predict"])
def test_missing_categories_are_refused_pointing_to_an_imputer(name, when):
    df, y, t = table()
    est = clone(ESTIMATORS[name])
    X_s, y_s, X_q = support_with_unseen(name)
    bad = {"fit": df, "adapt": X_s, "predict": X_q}[when].copy()
    bad.iloc[1, bad.columns.get_loc("site")] = None
    if when == "fit":
        with pytest.raises(ValueError, match=re.escape(MISSING)):
            fit(est, name, bad, y, t)
        assert not hasattr(est, "n_features_in_")
        return
    fit(est, name, df, y, t)
    before = outputs(est, X_q)
    with pytest.raises(ValueError, match=re.escape(MISSING)):
        if when == "adapt":
            est.adapt(bad, y_s)
        else:
            est.predict(bad)
    np.testing.assert_array_equal(outputs(est, X_q), before)


@pytest.mark.parametrize(
    "spec, message",
    [
        (["site", "colour"], "names ['colour'], which are not columns of X"),
        ([1, 7], "has the column indices [7], out of range for X with 4 columns."),
        ([4], "has the column indices [4], out of range for X with 4 columns."),
        ([-5, -4], "has the column indices [-5], out of range for X with 4"),
        ([True, False], "is a boolean mask of 2 entries, but X has 4 columns."),
        (
            [0.5],
            "categorical_features must be None, 'from_dtype', or an array-like "
            "of column names, column indices or booleans; got dtype float64.",
        ),
    ],
)
def test_bad_categorical_features_are_refused_before_training(spec, message):
    df, y, t = table()
    est = clone(ESTIMATORS["MAMLRegressor"]).set_params(categorical_features=spec)
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        est.fit(df, y, task_ids=t)
    assert not hasattr(est, "net_")


def test_a_column_of_mixed_types_is_refused_by_name():
    df, y, t = table()
    df["site"] = df["site"].astype(object)
    df.loc[3, "site"] = 7
    message = (
        "The categorical column 'site' mixes values of types ['int', 'str'], "
        "which cannot be sorted into categories; convert it to one type (for "
        "instance with .astype(str))."
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        clone(ESTIMATORS["PooledRegressor"]).fit(df, y, task_ids=t)


def test_refitting_on_numbers_forgets_the_categories():
    df, y, t = table()
    est = fit(clone(ESTIMATORS["FineTuneRegressor"]), "FineTuneRegressor", df, y, t)
    est.fit(df[NUMERIC], y, task_ids=t)
    assert est.is_categorical_ is None and est.categories_ is None
    assert est.module_[0].in_features == 2


@pytest.mark.parametrize(
    "name",
    slow_only(["MetaRidgeClassifier", "FineTuneRegressor"], "MetaRidgeClassifier"),
)
def test_few_shot_score_and_transfer_report_take_the_raw_table(name):
    """The evaluation helpers take the raw new tasks and score exactly what
    they score through the encoding pipeline, baselines included."""
    df, y, t = table(n_tasks=16)
    train = t < 12
    est = fit(clone(ESTIMATORS[name]), name, df[train], y[train], t[train])
    ref = fit(reference_pipeline(ESTIMATORS[name]), name, df[train], y[train], t[train])
    new = df[~train].copy()
    new.iloc[0, new.columns.get_loc("site")] = "east"
    tasks = (new, targets(name, y[~train]), t[~train])
    train_tasks = (df[train], targets(name, y[train]), t[train])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no feature-name warnings
        warnings.simplefilter("ignore", sktransfer.NegativeTransferWarning)
        got = few_shot_score(est, tasks, k_shot=3, random_state=0)
        report = transfer_report(
            est, tasks, k_shot=3, train_tasks=train_tasks, random_state=0
        )
    expected = few_shot_score(ref, tasks, k_shot=3, random_state=0)
    np.testing.assert_allclose(got.per_task, expected.per_task, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sktransfer.NegativeTransferWarning)
        ref_report = transfer_report(
            ref, tasks, k_shot=3, train_tasks=train_tasks, random_state=0
        )
    np.testing.assert_allclose(report.adapted, ref_report.adapted, atol=1e-6)
    for baseline in ref_report.baselines:
        np.testing.assert_allclose(
            report.baselines[baseline], ref_report.baselines[baseline], atol=1e-6
        )


def test_score_with_task_ids_takes_the_raw_table():
    name = "MetaRidgeRegressor"
    df, y, t = table(n_tasks=16)
    train = t < 12
    est = fit(clone(ESTIMATORS[name]), name, df[train], y[train], t[train])
    ref = fit(reference_pipeline(ESTIMATORS[name]), name, df[train], y[train], t[train])
    got = est.score(df[~train], y[~train], task_ids=t[~train])
    with sklearn.config_context(enable_metadata_routing=True):
        expected = ref.score(df[~train], y[~train], task_ids=t[~train])
    assert got == pytest.approx(expected, abs=1e-9)


def test_save_and_load_keep_the_categories(tmp_path):
    pytest.importorskip("safetensors")
    name = "MetaRidgeClassifier"
    df, y, t = table()
    est = fit(clone(ESTIMATORS[name]), name, df, y, t)
    path = tmp_path / "model.skt"
    sktransfer.save(est, path)
    loaded = sktransfer.load(path, trusted=sktransfer.get_untrusted_types(path))
    X_s, y_s, X_q = support_with_unseen(name)
    np.testing.assert_array_equal(
        loaded.adapt(X_s, y_s).predict_proba(X_q),
        est.adapt(X_s, y_s).predict_proba(X_q),
    )
    assert [c.tolist() for c in loaded.categories_] == [
        c.tolist() for c in est.categories_
    ]


def test_few_shot_curve_takes_the_raw_table():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    name = "MetaRidgeRegressor"
    df, y, t = table(n_tasks=16)
    train = t < 12
    est = fit(clone(ESTIMATORS[name]), name, df[train], y[train], t[train])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no feature-name warnings
        display = sktransfer.FewShotCurveDisplay.from_estimator(
            est,
            (df[~train], y[~train], t[~train]),
            k_shots=[1, 3],
            train_tasks=(df[train], y[train], t[train]),
            random_state=0,
        )
    assert set(display.baseline_scores) == {
        "support set only",
        "pooled",
        "pooled + shrunk offset",
    }
    assert np.isfinite(display.scores).all()


def test_dann_per_domain_statistics_refuse_categorical_columns():
    df, y, t = table()
    est = clone(ESTIMATORS["DANNRegressor"]).set_params(standardize_per_domain=True)
    with pytest.raises(ValueError, match="per_domain=True works on numeric"):
        fit(est, "DANNRegressor", df, y, t)
    assert not hasattr(est, "module_")


def test_negative_indices_name_columns_from_the_end():
    df, y, t = table()
    df = df[["x0", "site", "x1"]].astype({"x0": str})
    by_name = clone(ESTIMATORS["PooledRegressor"]).set_params(
        categorical_features=["x0", "site"]
    )
    by_index = clone(ESTIMATORS["PooledRegressor"]).set_params(
        categorical_features=[-3, -2]
    )
    by_name.fit(df, y, task_ids=t)
    by_index.fit(df, y, task_ids=t)
    assert by_index.is_categorical_.tolist() == [True, True, False]
    np.testing.assert_array_equal(by_index.predict(df), by_name.predict(df))


def test_column_names_need_a_frame_and_an_empty_choice_is_none():
    df, y, t = table()
    X = df[NUMERIC].to_numpy()
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=["x0"])
    message = (
        "categorical_features names columns, so X must be a DataFrame with those "
        "columns; got an array without column names."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(X, y, task_ids=t)
    for spec in ([False, False], []):
        est.set_params(categorical_features=spec).fit(X, y, task_ids=t)
        assert est.is_categorical_ is None and est.categories_ is None


def test_missing_codes_in_an_array_are_refused_by_column_index():
    df, y, t = table()
    X = np.c_[df["x0"], np.where(df["site"] == "north", 0.0, 1.0), df["x1"]]
    X[5, 1] = np.nan
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=[1])
    with pytest.raises(ValueError, match="The categorical column 1 has 1 missing"):
        est.fit(X, y, task_ids=t)


def test_the_input_width_counts_numeric_columns_and_categories():
    """Two numeric columns and one categorical column of three sites: five
    inputs (a count of the categorical columns instead gives four)."""
    df, y, t = table()
    est = fit(
        clone(ESTIMATORS["MAMLRegressor"]),
        "MAMLRegressor",
        df[["x0", "site", "x1"]],
        y,
        t,
    )
    assert est.module_[0].in_features == 5


def test_dann_score_with_domains_takes_the_raw_table():
    """The importance-weighted source score reads the raw table as the
    pipeline's encoded rows."""
    name = "DANNRegressor"
    df, y, t = table()
    est = fit(clone(ESTIMATORS[name]), name, df, y, t)
    ref = fit(reference_pipeline(ESTIMATORS[name]), name, df, y, t)
    domain = np.where(t < 8, 1, -1)
    masked = np.where(domain > 0, y, np.nan)
    got = est.score(df, masked, sample_domain=domain)
    with sklearn.config_context(enable_metadata_routing=True):
        expected = ref.score(df, masked, sample_domain=domain)
    assert got == pytest.approx(expected, abs=1e-9)


def test_one_shot_support_sets_meet_few_categories():
    """With one support row, the support-set baseline meets one site; the
    query's other sites are new to it, as through the encoding pipeline."""
    name = "MetaRidgeRegressor"
    df, y, t = table(n_tasks=16)
    train = t < 12
    est = fit(clone(ESTIMATORS[name]), name, df[train], y[train], t[train])
    ref = fit(reference_pipeline(ESTIMATORS[name]), name, df[train], y[train], t[train])
    tasks = (df[~train], y[~train], t[~train])
    baselines = {"support set only": SupportSetRegressor()}
    reports = [
        transfer_report(model, tasks, k_shot=1, baselines=baselines, random_state=0)
        for model in (est, ref)
    ]
    np.testing.assert_allclose(
        reports[0].baselines["support set only"],
        reports[1].baselines["support set only"],
        atol=1e-6,
    )


def test_a_one_dimensional_x_is_refused_by_sklearns_check():
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=[0])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        est.fit(np.arange(12.0), np.arange(12.0))


# -- the task-list forms ---------------------------------------------------------

ARRAY_COLUMNS = ["x0", "site", "x1"]


def _object_rows(df):
    """The table as a numpy object array: a string column between numbers."""
    return df[ARRAY_COLUMNS].to_numpy(dtype=object)


def test_task_list_of_object_arrays_equals_the_flat_form_and_the_reference():
    """(X_i, y_i) pairs of numpy object arrays, the string column named by
    index: the categories come from all tasks (a site only the last task has
    is known) and the predictions are those of the flat form and of the same
    estimator behind OneHotEncoder. `partial_fit` takes pairs too and keeps
    the categories of `fit`, as the flat form does."""
    name = "MetaRidgeRegressor"
    df, y, t = table()
    df.loc[t == 11, "site"] = "harbour"
    X = _object_rows(df)
    est = clone(ESTIMATORS[name]).set_params(categorical_features=[1])
    listed = clone(est).fit([(X[t == i], y[t == i]) for i in range(12)])
    flat = clone(est).fit(X, y, task_ids=t)
    encode = ColumnTransformer(
        [
            ("num", "passthrough", [0, 2]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), [1]),
        ],
        sparse_threshold=0,
    )
    model = clone(ESTIMATORS[name]).set_params(**NO_CATEGORIES)
    ref = fit(Pipeline([("encode", encode), ("model", model)]), name, X, y, t)
    assert listed.is_categorical_.tolist() == [False, True, False]
    assert [c.tolist() for c in listed.categories_] == [
        ["harbour", "north", "south", "west"]
    ]
    X_q = _object_rows(table(n_tasks=1, seed=3)[0])
    np.testing.assert_allclose(listed.predict(X_q), flat.predict(X_q))
    np.testing.assert_allclose(listed.predict(X_q), ref.predict(X_q), atol=1e-6)

    before = listed.predict(X_q)
    more, y_more, t_more = table(n_tasks=4, seed=5)
    X_more = _object_rows(more)
    for model in (listed, flat):  # fit's categorical columns hold until refit
        model.set_params(categorical_features=None)
    listed.partial_fit([(X_more[t_more == i], y_more[t_more == i]) for i in range(4)])
    flat.partial_fit(X_more, y_more, task_ids=t_more)
    assert not np.allclose(listed.predict(X_q), before)
    np.testing.assert_allclose(listed.predict(X_q), flat.predict(X_q))


def test_task_list_of_python_rows_keeps_integer_categories_numbers():
    """Rows as Python lists mixing strings and integer codes: the codes stay
    numbers, as in the flat form (read as text, 1 would be the category '1'
    and every code given to `predict` unseen)."""
    df, y, t = table()
    rows = [
        [x0, site, x1, int(kind == "b")]
        for x0, site, x1, kind in zip(
            df["x0"], df["site"], df["x1"], df["kind"], strict=True
        )
    ]
    X = np.array(rows, dtype=object)
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=[1, 3])
    listed = clone(est).fit([(X[t == i].tolist(), y[t == i]) for i in range(12)])
    flat = clone(est).fit(X, y, task_ids=t)
    assert [c.tolist() for c in listed.categories_] == [
        ["north", "south", "west"],
        [0, 1],
    ]
    np.testing.assert_allclose(listed.predict(X), flat.predict(X))


@pytest.mark.parametrize("named", [True, False])
def test_a_taskset_of_category_codes_equals_the_flat_form(named):
    """A `TaskSet` holds numbers: codes named categorical, by column name when
    it has feature names, by index otherwise, are read as in the flat form."""
    df, y, t = table()
    frame = df[ARRAY_COLUMNS].assign(
        site=df["site"].map({"north": 10.0, "south": 20.0, "west": 30.0})
    )
    X = frame if named else frame.to_numpy()
    spec = ["site"] if named else [1]
    est = clone(ESTIMATORS["MetaRidgeRegressor"]).set_params(categorical_features=spec)
    from_tasks = clone(est).fit(TaskSet.from_arrays(X, y, t))
    flat = clone(est).fit(X, y, task_ids=t)
    assert [c.tolist() for c in from_tasks.categories_] == [[10.0, 20.0, 30.0]]
    assert hasattr(from_tasks, "feature_names_in_") == named
    X_q = X[:20]
    np.testing.assert_allclose(from_tasks.predict(X_q), flat.predict(X_q))


def test_task_lists_of_frames_one_task_and_repeated_row_labels():
    """One frame is a task list too; frames whose row labels repeat from
    task to task (each numbered from 0) are read by position."""
    df, y, t = table()
    est = clone(ESTIMATORS["PooledRegressor"])
    one = clone(est).fit([(df, y)])
    np.testing.assert_allclose(one.predict(df), clone(est).fit(df, y).predict(df))
    pairs = [(df[t == i].reset_index(drop=True), y[t == i]) for i in range(12)]
    listed = clone(est).fit(pairs)
    flat = clone(est).fit(df, y, task_ids=t)
    np.testing.assert_allclose(listed.predict(df), flat.predict(df))


def _codes(df):
    """The table as numbers: the sites as codes 0, 1 and 2."""
    sites = df["site"].map({"north": 0.0, "south": 1.0, "west": 2.0})
    return np.c_[df["x0"], sites, df["x1"]]


@pytest.mark.parametrize(
    "rows, change, message",
    [
        (
            lambda df: df,
            lambda X: X.rename(columns={"x1": "x2"}),
            "task 1 has feature names that differ from those of task 0; all tasks "
            "must share the same feature columns.",
        ),
        (
            lambda df: df,
            lambda X: X[["site", "x0", "x1", "kind"]],
            "task 1 has feature names that differ from those of task 0; all tasks "
            "must share the same feature columns.",
        ),
        (
            _codes,
            lambda X: X[:, :2],
            "task 1 has 2 features but task 0 has 3; all tasks must share the same "
            "feature columns.",
        ),
        (_codes, lambda X: X[:, :, None], "task 1: X must be 2-dimensional"),
    ],
)
def test_tasks_whose_columns_differ_are_refused_naming_the_task(rows, change, message):
    """Categorical columns are encoded over all tasks only when the tasks line
    up; tasks that do not are refused by `TaskSet`, naming the task (frames
    of strings included)."""
    df, y, t = table()
    X = rows(df)
    pairs = [(X[t == 0], y[t == 0]), (change(X[t == 1]), y[t == 1])]
    spec = "from_dtype" if hasattr(X, "columns") else [1]
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=spec)
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(pairs)


def test_a_task_that_is_not_a_pair_is_refused_naming_it():
    df, y, t = table()
    X = _object_rows(df)
    tasks = [(X[t == 0], y[t == 0]), (X[t == 1], y[t == 1], np.ones(16))]
    est = clone(ESTIMATORS["PooledRegressor"]).set_params(categorical_features=[1])
    with pytest.raises(ValueError, match=re.escape("task 1 is not an (X, y) pair.")):
        est.fit(tasks)
