"""DANNClassifier and DANNRegressor: learning, skada's conventions, refusals."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import DANNClassifier, DANNRegressor
from sktransfer.exceptions import NegativeTransferWarning

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0)


def moons(n_source=100, n_target=100, shift=(1.0, 0.8), seed=0):
    """Source moons, translated target moons; target labels masked with -1."""
    Xs, ys = make_moons(n_source, noise=0.1, random_state=seed)
    Xt, yt = make_moons(n_target, noise=0.1, random_state=seed + 100)
    Xt = Xt + np.asarray(shift)
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, -np.ones(n_target, dtype=int)]
    domain = np.r_[np.ones(n_source, dtype=int), -np.ones(n_target, dtype=int)]
    return X, y, domain, Xt, yt


def shifted_regression(n=100, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(2 * n, 3))
    X[n:] += 0.5
    y = np.sin(X[:, 0]) + X[:, 1] - 0.5 * X[:, 2]
    y_masked = y.copy()
    y_masked[n:] = np.nan
    domain = np.r_[np.ones(n, dtype=int), -np.ones(n, dtype=int)]
    return X, y_masked, domain, y


# -- refusals -------------------------------------------------------------------
def test_labelled_target_rows_are_refused():
    X, y, domain, _, yt = moons(50, 50)
    y[domain < 0] = yt
    with pytest.raises(ValueError, match="target row.*have labels.*masked with -1"):
        DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    Xr, yr, dr, y_true = shifted_regression(30)
    with pytest.raises(ValueError, match="masked with NaN"):
        DANNRegressor(**FAST).fit(Xr, y_true, sample_domain=dr)


def test_missing_class_labels_are_refused_naming_the_mask():
    # String labels with None or NaN for the target rows: sklearn said "Input
    # contains NaN" (or None passed as a label); the message names -1, the
    # mask, in fit and in score.
    pd = pytest.importorskip("pandas")  # in the dev extra
    X, y, domain, _, _ = moons(50, 50)
    labels = np.where(y == 1, "yes", "no").astype(object)
    message = (
        r"^y has a missing label \(None or NaN\) in 50 row\(s\), the first in row "
        r"50: mask the labels of target rows with -1 \(skada's convention\), and "
        r"give every source row a label\.$"
    )
    for missing in (None, np.nan):
        labels[domain < 0] = missing
        for y_given in (labels, pd.Series(labels)):
            with pytest.raises(ValueError, match=message):
                DANNClassifier(**FAST).fit(X, y_given, sample_domain=domain)
    floats = y.astype(float)
    floats[domain < 0] = np.nan
    with pytest.raises(ValueError, match=message):
        DANNClassifier(**FAST).fit(X, floats, sample_domain=domain)
    labels[domain < 0] = -1
    est = DANNClassifier(**FAST).fit(X, labels, sample_domain=domain)
    assert list(est.classes_) == ["no", "yes"]
    labels[domain < 0] = None
    with pytest.raises(ValueError, match=message):
        est.score(X, labels, sample_domain=domain)


def test_unlabelled_source_rows_are_refused():
    X, y, domain, _, _ = moons(50, 50)
    y[0] = -1
    with pytest.raises(ValueError, match="source row.*masked labels"):
        DANNClassifier(**FAST).fit(X, y, sample_domain=domain)


@pytest.mark.parametrize("keep", ["source", "target"])
def test_a_single_domain_is_refused(keep):
    X, y, domain, _, _ = moons(50, 50)
    rows = domain > 0 if keep == "source" else domain < 0
    missing = "target" if keep == "source" else "source"
    with pytest.raises(ValueError, match=f"no {missing} rows"):
        DANNClassifier(**FAST).fit(X[rows], y[rows], sample_domain=domain[rows])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_missing_value_in_x_is_refused_before_training(value):
    # Masked targets are NaN, so X's own check is the only one it meets.
    X, y, domain, _, _ = moons(50, 50)
    X[60, 1] = value
    label = "NaN" if np.isnan(value) else "infinity or a value too large"
    with pytest.raises(ValueError, match=f"^Input X contains {label}"):
        DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    Xr, yr, _, _ = shifted_regression(30)
    Xr[-1, 0] = value
    with pytest.raises(ValueError, match=f"^Input X contains {label}"):
        DANNRegressor(**FAST).fit(Xr, yr)


def test_all_masked_regression_targets_are_refused():
    X, y, _, _ = shifted_regression(30)
    with pytest.raises(ValueError, match="no source rows"):
        DANNRegressor(**FAST).fit(X, np.full(len(y), np.nan))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: d[:-1], "inconsistent numbers of samples"),
        (lambda d: np.where(np.arange(len(d)) == 3, 0, d), "contains 0"),
        (lambda d: d + 0.5, "must hold integers"),
        (lambda d: d.astype(str), "must hold integers"),
    ],
)
def test_bad_sample_domain_is_refused(make, match):
    X, y, domain, _, _ = moons(50, 50)
    with pytest.raises(ValueError, match=match):
        DANNClassifier(**FAST).fit(X, y, sample_domain=make(domain))


def test_mismatched_features_are_refused():
    X, y, domain, Xt, _ = moons(50, 50)
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    with pytest.raises(ValueError, match="features"):
        est.predict(np.hstack([Xt, Xt]))
    with pytest.raises(ValueError, match="features"):
        est.transform(Xt[:, :1])


def test_a_failed_fit_leaves_the_estimator_as_it_was():
    X, y, domain, Xt, _ = moons(50, 50)
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    before = est.predict(Xt)
    with pytest.raises(ValueError):
        est.fit(X, y, sample_domain=np.zeros_like(domain))
    np.testing.assert_array_equal(est.predict(Xt), before)


# -- conventions ------------------------------------------------------------------
def test_several_source_and_target_domains_are_pooled():
    X, y, domain, Xt, yt = moons(60, 60)
    domain = domain * np.r_[np.tile([1, 2], 30), np.tile([1, 3], 30)]
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    np.testing.assert_array_equal(est.source_domains_, [1, 2])
    np.testing.assert_array_equal(est.target_domains_, [-3, -1])
    assert est.score(Xt, yt) > 0.5


def test_regressor_reads_nan_targets_as_the_target_domain():
    X, y, domain, _ = shifted_regression(60)
    inferred = DANNRegressor(**FAST).fit(X, y)
    explicit = DANNRegressor(**FAST).fit(X, y, sample_domain=domain)
    np.testing.assert_array_equal(inferred.target_domains_, [-2])
    np.testing.assert_array_equal(inferred.predict(X), explicit.predict(X))


def test_classifier_without_sample_domain_trains_on_the_source_and_warns():
    # -1 is an ordinary class label in scikit-learn: without sample_domain the
    # classifier does not read it as skada's mask.
    X, y, _, _, _ = moons(50, 50)
    with pytest.warns(UserWarning, match="no target rows"):
        est = DANNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.classes_, [-1, 0, 1])


def test_regressor_learns_the_source_function():
    X, y, domain, y_true = shifted_regression(150)
    est = DANNRegressor(hidden_layer_sizes=(32,), max_iter=100, random_state=0)
    est.fit(X, y, sample_domain=domain)
    assert est.score(X[domain > 0], y_true[domain > 0]) > 0.8
    assert est.predict(X).shape == (len(X),)


def test_fit_is_reproducible_and_leaves_the_global_rng_alone():
    X, y, domain, Xt, _ = moons(50, 50)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    assert torch.rand(1) == expected
    b = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))


def test_history_records_the_losses_and_the_reversal_schedule():
    X, y, domain, _, _ = moons(50, 50)
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    assert est.n_iter_ == len(est.history_) == FAST["max_iter"]
    weights = [b["reversal_weight"] for row in est.history_ for b in row["batches"]]
    assert weights[0] == 0.0
    assert weights[-1] == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.diff(weights) >= 0)
    assert np.isfinite(est.history_[:, "domain_loss"]).all()


# -- transform, persistence ---------------------------------------------------------
def test_transform_is_the_feature_extractor_output():
    X, y, domain, Xt, _ = moons(50, 50)
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    features = est.transform(Xt)
    with torch.no_grad():
        inputs = torch.as_tensor((Xt - est.x_mean_) / est.x_scale_, dtype=torch.float32)
        expected = est.module_.features(inputs).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    names = est.get_feature_names_out()
    assert list(names) == [f"dannclassifier{i}" for i in range(16)]


def test_save_and_load_without_pickle_predicts_the_same(tmp_path):
    pytest.importorskip("safetensors")  # sktransfer.save; in the dev extra
    X, y, domain, Xt, _ = moons(50, 50)
    est = DANNRegressor(**FAST).fit(*shifted_regression(30)[:2])
    clf = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    for fitted, X_new in ((est, shifted_regression(30)[0]), (clf, Xt)):
        path = tmp_path / f"{type(fitted).__name__}.zip"
        sktransfer.save(fitted, path)
        assert sktransfer.get_untrusted_types(path) == []
        loaded = sktransfer.load(path)
        np.testing.assert_array_equal(loaded.predict(X_new), fitted.predict(X_new))


def test_pickle_round_trip_predicts_the_same():
    X, y, domain, Xt, _ = moons(50, 50)
    est = DANNClassifier(**FAST).fit(X, y, sample_domain=domain)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(Xt), est.predict_proba(Xt))
    np.testing.assert_array_equal(loaded.transform(Xt), est.transform(Xt))


# -- scoring and model selection ------------------------------------------------------
@pytest.mark.parametrize("per_domain", [False, True])
def test_score_with_sample_domain_is_importance_weighted_source_accuracy(per_domain):
    X, y, domain, Xt, yt = moons(80, 80)
    est = DANNClassifier(standardize_per_domain=per_domain, **FAST)
    est.fit(X, y, sample_domain=domain)
    X_new, y_new, d_new, _, _ = moons(60, 40, seed=5)
    # An independent reference: a logistic-regression density ratio on the
    # standardised rows, then the weighted accuracy of the source rows. With
    # per-domain statistics, each domain is read in its own units.
    src = d_new > 0
    Z = X_new.copy()
    if per_domain:
        Z[src] = (X_new[src] - X[domain > 0].mean(0)) / X[domain > 0].std(0)
        Z[~src] = (X_new[~src] - X[domain < 0].mean(0)) / X[domain < 0].std(0)
    Z = StandardScaler().fit_transform(Z)
    p = LogisticRegression(random_state=0).fit(Z, ~src).predict_proba(Z[src])[:, 1]
    weights = p / (1 - p)
    if per_domain:  # the source rows as the network saw them in training
        inputs = (X_new[src] - X[domain > 0].mean(0)) / X[domain > 0].std(0)
        with torch.no_grad():
            logits = copy.deepcopy(est.module_).double()(torch.as_tensor(inputs))
        y_pred = est.classes_[logits.argmax(1).numpy()]
    else:
        y_pred = est.predict(X_new[src])
    expected = accuracy_score(y_new[src], y_pred, sample_weight=weights)
    assert est.score(X_new, y_new, sample_domain=d_new) == pytest.approx(expected)
    # Without sample_domain: the plain accuracy.
    assert est.score(Xt, yt) == accuracy_score(yt, est.predict(Xt))


def test_importance_weighting_tracks_the_target_score_under_covariate_shift():
    # Source rows spread over both halves of x0, target rows on one half: the
    # weighted source accuracy is near the target accuracy, the plain one not.
    rng = np.random.RandomState(0)
    Xs = rng.normal(size=(400, 2))
    Xt = rng.normal(size=(400, 2)) + [1.5, 0.0]
    f = lambda X: (X[:, 1] > np.where(X[:, 0] > 1, 1.0, -1.0)).astype(int)  # noqa: E731
    # One labelling rule in the raw units: per-domain statistics do not fit it.
    est = DANNClassifier(
        hidden_layer_sizes=(4,),
        max_iter=5,
        validation_fraction=None,
        standardize_per_domain=False,
        random_state=0,
    )
    X = np.vstack([Xs, Xt])
    d = np.r_[np.ones(400, int), -np.ones(400, int)]
    y = np.r_[f(Xs), -np.ones(400, int)]
    est.fit(X, y, sample_domain=d)
    target = est.score(Xt, f(Xt))
    plain = est.score(Xs, f(Xs))
    weighted = est.score(X, np.r_[f(Xs), -np.ones(400, int)], sample_domain=d)
    assert abs(weighted - target) < abs(plain - target) / 2


@pytest.mark.slow
def test_sample_domain_is_routed_through_pipeline_and_grid_search():
    X, y, domain, Xt, yt = moons(60, 60)
    pipe = make_pipeline(StandardScaler(), DANNClassifier(**FAST))
    cv = KFold(2, shuffle=True, random_state=0)
    grid = {"dannclassifier__domain_weight": [0.0, 1.0]}
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(pipe, grid, cv=cv).fit(X, y, sample_domain=domain)
        # The same folds by hand: fit with the domains, score with them.
        for i, params in enumerate(search.cv_results_["params"]):
            for k, (train, test) in enumerate(cv.split(X)):
                est = clone(pipe).set_params(**params)
                est.fit(X[train], y[train], sample_domain=domain[train])
                score = est.score(X[test], y[test], sample_domain=domain[test])
                got = search.cv_results_[f"split{k}_test_score"][i]
                assert got == pytest.approx(score)
    assert search.best_estimator_[-1].target_domains_.tolist() == [-1]
    # Routing off: the pipeline cannot tell which step sample_domain is for.
    with pytest.raises(ValueError, match="sample_domain"):
        GridSearchCV(pipe, grid, cv=cv).fit(X, y, sample_domain=domain)


# -- learning and negative transfer ---------------------------------------------------
def rotated_moons(angle, seed, n=150):
    Xs, ys = make_moons(n, noise=0.1, random_state=seed)
    Xt, yt = make_moons(n, noise=0.1, random_state=seed + 100)
    theta = np.deg2rad(angle)
    rotation = np.array(
        [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )
    Xt = (Xt - [0.5, 0.25]) @ rotation.T + [0.5, 0.25]
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, -np.ones(n, dtype=int)]
    domain = np.r_[np.ones(n, dtype=int), -np.ones(n, dtype=int)]
    return X, y, domain, Xt, yt


def source_only_accuracy(X, y, domain, Xt, yt, seed, **params):
    """The same network trained on the source rows alone (it never sees the target)."""
    source = domain > 0
    est = DANNClassifier(domain_weight=0.0, random_state=seed, **params)
    with pytest.warns(UserWarning, match="no target rows"):
        est.fit(X[source], y[source])
    return est.score(Xt, yt)


@pytest.mark.slow
def test_per_domain_dann_beats_source_only_on_rotated_moons():
    # Moons rotated by 70 degrees: the same network trained on the source rows
    # alone against DANN with per-domain statistics, mean target accuracy over
    # three seeds (about 0.52 against 0.32). At the defaults the gain here is
    # smaller and seed-dependent (about 0.32 against 0.28; 0.51 against 0.24
    # in bench_dann.py's draw of 300 rows per domain).
    dann, source_only = [], []
    for seed in range(3):
        X, y, domain, Xt, yt = rotated_moons(70, seed)
        est = DANNClassifier(standardize_per_domain=True, random_state=seed)
        est.fit(X, y, sample_domain=domain)
        dann.append(est.score(Xt, yt))
        source_only.append(source_only_accuracy(X, y, domain, Xt, yt, seed))
    assert np.mean(dann) >= np.mean(source_only) + 0.05


@pytest.mark.slow
def test_per_domain_dann_beats_source_only_on_translated_moons():
    # Moons translated by (1.0, 0.8): the source-only network falls to about
    # 0.8 target accuracy. DANN with per-domain standardisation (then
    # adversarial alignment) against the source-only network at the best of
    # its default and a smaller (16, 16) extractor, mean over three seeds.
    # At the default (one set of statistics) DANN loses there (about 0.71
    # against 0.78): the option is not the default because it fails silently
    # under covariate and label shift (see the next tests and bench_dann.py).
    dann, source_only = [], {(64, 64): [], (16, 16): []}
    for seed in range(3):
        X, y, domain, Xt, yt = moons(150, 150, seed=seed)
        est = DANNClassifier(standardize_per_domain=True, random_state=seed)
        dann.append(est.fit(X, y, sample_domain=domain).score(Xt, yt))
        for sizes, scores in source_only.items():
            scores.append(
                source_only_accuracy(
                    X, y, domain, Xt, yt, seed, hidden_layer_sizes=sizes
                )
            )
    best = max(np.mean(scores) for scores in source_only.values())
    assert best < 0.9
    assert np.mean(dann) >= best + 0.05


def test_per_domain_statistics_remove_a_translation_of_the_target():
    # The target rows are the source rows translated: read in their own units,
    # they are the very rows the network saw, so their features are the same.
    Xs, ys = make_moons(60, noise=0.1, random_state=0)
    shift = np.array([1.0, 0.8])
    X = np.vstack([Xs, Xs + shift])
    y = np.r_[ys, -np.ones(60, dtype=int)]
    domain = np.r_[np.ones(60, dtype=int), -np.ones(60, dtype=int)]
    est = DANNClassifier(standardize_per_domain=True, **FAST)
    est.fit(X, y, sample_domain=domain)
    np.testing.assert_allclose(est.x_mean_, Xs.mean(0) + shift)
    np.testing.assert_allclose(est.x_scale_, Xs.std(0))
    np.testing.assert_allclose(est.source_x_mean_, Xs.mean(0))
    with torch.no_grad():
        inputs = (Xs - est.source_x_mean_) / est.source_x_scale_
        expected = est.module_.features(torch.as_tensor(inputs).float()).numpy()
    np.testing.assert_allclose(est.transform(Xs + shift), expected, atol=1e-5)
    # One set of statistics over every row (the default): the translation
    # stays.
    pooled = DANNClassifier(**FAST)
    pooled.fit(X, y, sample_domain=domain)
    np.testing.assert_allclose(pooled.x_mean_, X.mean(0))
    np.testing.assert_array_equal(pooled.source_x_mean_, pooled.x_mean_)


def test_several_target_domains_share_pooled_statistics():
    X, y, domain, _, _ = moons(60, 60)
    target = domain < 0
    domain[target] = np.tile([-1, -2], 30)
    X[domain == -2] += 3.0
    est = DANNClassifier(standardize_per_domain=True, **FAST)
    est.fit(X, y, sample_domain=domain)
    np.testing.assert_allclose(est.x_mean_, X[target].mean(0))
    np.testing.assert_allclose(est.x_scale_, X[target].std(0))


def test_without_target_rows_the_statistics_are_the_source_rows():
    X, y, domain, _, _ = moons(50, 50)
    source = domain > 0
    with pytest.warns(UserWarning, match="no target rows"):
        est = DANNClassifier(standardize_per_domain=True, **FAST)
        est.fit(X[source], y[source])
    np.testing.assert_allclose(est.x_mean_, X[source].mean(0))
    np.testing.assert_array_equal(est.source_x_mean_, est.x_mean_)


def label_shift(seed, n=200):
    """Two separated blobs, half and half in the source, 98% class 0 in the target."""
    rng = np.random.RandomState(seed)
    ys = (rng.rand(n) < 0.5).astype(int)
    yt = (rng.rand(n) > 0.98).astype(int)
    centers = np.array([[-2.0, 0.0], [2.0, 0.0]])
    Xs = rng.normal(size=(n, 2)) + centers[ys]
    Xt = rng.normal(size=(n, 2)) + centers[yt]
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, -np.ones(n, dtype=int)]
    domain = np.r_[np.ones(n, dtype=int), -np.ones(n, dtype=int)]
    return X, y, domain


def test_alignment_that_costs_source_accuracy_warns_of_negative_transfer():
    # Under label shift, matching the feature distributions of the domains
    # means mixing the source classes; forced hard (domain_weight=30), the
    # held-out source rows show it against the source-only twin.
    X, y, domain = label_shift(0)
    # (Per-domain statistics would move the target's one class between the
    # source classes before any alignment, which no source row shows: off.)
    params = dict(hidden_layer_sizes=(16,), domain_hidden_layer_sizes=(16,))
    params.update(max_iter=40, standardize_per_domain=False, random_state=0)
    with pytest.warns(NegativeTransferWarning, match="Domain alignment cost"):
        est = DANNClassifier(domain_weight=30.0, **params)
        est.fit(X, y, sample_domain=domain)
    assert est.source_validation_score_ < est.source_only_validation_score_ - 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeTransferWarning)
        est = DANNClassifier(domain_weight=0.0, **params)
        est.fit(X, y, sample_domain=domain)
    assert est.source_validation_score_ >= 0.9


def test_validation_fraction_none_skips_the_check():
    X, y, domain, _, _ = moons(50, 50)
    est = DANNClassifier(validation_fraction=None, **FAST)
    est.fit(X, y, sample_domain=domain)
    assert est.source_validation_score_ is None
    assert est.module_.source_only is None
