"""Tests for the synthetic task generators of sktransfer.datasets."""

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

import sktransfer.datasets
from sktransfer.datasets import (
    _generators,
    make_related_classification_tasks,
    make_related_regression_tasks,
    make_sinusoid_tasks,
)

GENERATORS = [
    make_sinusoid_tasks,
    make_related_classification_tasks,
    make_related_regression_tasks,
]

# numpydoc codes not enforced: see the conventions of the project.
IGNORED_NUMPYDOC_CODES = {"GL01", "SA01", "ES01", "GL02", "GL03", "RT02"}


def test_public_api():
    assert sorted(sktransfer.datasets.__all__) == [
        "make_related_classification_tasks",
        "make_related_regression_tasks",
        "make_sinusoid_tasks",
    ]


# --- make_sinusoid_tasks ---------------------------------------------------


def test_sinusoid_shapes_and_dtypes():
    X, y, task_ids = make_sinusoid_tasks(n_tasks=7, n_samples=11, random_state=0)
    assert X.shape == (77, 1)
    assert y.shape == (77,)
    assert task_ids.shape == (77,)
    assert X.dtype == np.float64
    assert y.dtype == np.float64
    assert task_ids.dtype == np.int64
    assert_array_equal(task_ids, np.repeat(np.arange(7), 11))


def test_sinusoid_defaults():
    X, y, task_ids, params = make_sinusoid_tasks(return_params=True, random_state=0)
    assert X.shape == (2000, 1)
    assert np.unique(task_ids).tolist() == list(range(100))
    assert params["amplitude"].shape == (100,)
    assert params["phase"].shape == (100,)


def test_sinusoid_params_within_ranges_and_exact_targets():
    X, y, task_ids, params = make_sinusoid_tasks(
        n_tasks=50,
        n_samples=30,
        amplitude_range=(1.0, 2.0),
        phase_range=(0.5, 1.5),
        x_range=(-1.0, 3.0),
        return_params=True,
        random_state=1,
    )
    amplitude, phase = params["amplitude"], params["phase"]
    assert set(params) == {"amplitude", "phase"}
    assert np.all((amplitude >= 1.0) & (amplitude <= 2.0))
    assert np.all((phase >= 0.5) & (phase <= 1.5))
    assert np.all((X >= -1.0) & (X <= 3.0))
    # The draws cover their ranges rather than a corner of them.
    assert amplitude.max() - amplitude.min() > 0.5
    assert X.max() - X.min() > 3.0
    expected = amplitude[task_ids] * np.sin(X[:, 0] - phase[task_ids])
    assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_sinusoid_noise():
    kwargs = dict(n_tasks=20, n_samples=50, return_params=True, random_state=2)
    X, y, task_ids, params = make_sinusoid_tasks(noise=0.3, **kwargs)
    clean = params["amplitude"][task_ids] * np.sin(X[:, 0] - params["phase"][task_ids])
    residual = y - clean
    assert 0.25 < residual.std() < 0.35
    assert abs(residual.mean()) < 0.05


def test_sinusoid_degenerate_ranges():
    X, y, task_ids, params = make_sinusoid_tasks(
        n_tasks=3,
        n_samples=4,
        amplitude_range=(2.0, 2.0),
        phase_range=[0.0, 0.0],
        return_params=True,
        random_state=0,
    )
    assert_array_equal(params["amplitude"], 2.0)
    assert_array_equal(params["phase"], 0.0)
    assert_allclose(y, 2.0 * np.sin(X[:, 0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(amplitude_range=(5.0, 1.0)),
        dict(phase_range=(0.0, 1.0, 2.0)),
        dict(x_range=(0.0, np.inf)),
        dict(x_range=(np.nan, 1.0)),
    ],
)
def test_sinusoid_invalid_ranges(kwargs):
    with pytest.raises(ValueError, match="must be a pair"):
        make_sinusoid_tasks(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_tasks=0),
        dict(n_samples=0),
        dict(n_tasks=2.5),
        dict(noise=-0.1),
        dict(amplitude_range="wide"),
        dict(return_params="yes"),
        dict(random_state="seed"),
    ],
)
def test_sinusoid_invalid_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        make_sinusoid_tasks(**kwargs)


# --- make_related_classification_tasks -------------------------------------


def test_classification_shapes_and_dtypes():
    X, y, task_ids = make_related_classification_tasks(
        n_tasks=6, n_samples=25, n_features=4, n_classes=3, random_state=0
    )
    assert X.shape == (150, 4)
    assert y.shape == (150,)
    assert task_ids.shape == (150,)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    assert task_ids.dtype == np.int64
    assert_array_equal(task_ids, np.repeat(np.arange(6), 25))
    assert np.all(np.isfinite(X))


def test_classification_defaults():
    X, y, task_ids = make_related_classification_tasks(random_state=0)
    assert X.shape == (3000, 10)
    assert np.unique(y).tolist() == [0, 1]
    assert np.unique(task_ids).tolist() == list(range(50))


@pytest.mark.parametrize(
    "n_samples, n_classes, noise",
    [(60, 2, 0.05), (61, 3, 0.2), (7, 7, 0.5), (40, 4, 1.0), (10, 2, 0.0)],
)
def test_classification_every_task_has_every_class_balanced(
    n_samples, n_classes, noise
):
    X, y, task_ids = make_related_classification_tasks(
        n_tasks=12,
        n_samples=n_samples,
        n_classes=n_classes,
        noise=noise,
        random_state=0,
    )
    expected = np.full(n_classes, n_samples // n_classes)
    expected[: n_samples % n_classes] += 1
    for task in range(12):
        counts = np.bincount(y[task_ids == task], minlength=n_classes)
        assert_array_equal(counts, expected)


def test_classification_rows_not_sorted_by_class():
    _, y, task_ids = make_related_classification_tasks(
        n_tasks=3, n_samples=40, random_state=0
    )
    for task in range(3):
        labels = y[task_ids == task]
        assert not np.all(np.diff(labels) >= 0)


def test_classification_params():
    n_tasks, n_classes, n_features = 5, 3, 6
    X, y, task_ids, params = make_related_classification_tasks(
        n_tasks=n_tasks,
        n_samples=600,
        n_features=n_features,
        n_classes=n_classes,
        noise=0.0,
        class_sep=2.0,
        return_params=True,
        random_state=3,
    )
    assert set(params) == {"centers", "shared_centers", "covariance"}
    centers = params["centers"]
    assert centers.shape == (n_tasks, n_classes, n_features)
    assert params["shared_centers"].shape == (n_classes, n_features)
    covariance = params["covariance"]
    assert covariance.shape == (n_features, n_features)
    assert_allclose(covariance, covariance.T, atol=1e-12)
    # n_informative defaults to max(n_features // 2, n_classes) = 3 unit
    # directions; the other 3 have variance 4.
    assert_allclose(np.sort(np.linalg.eigvalsh(covariance)), [1, 1, 1, 4, 4, 4])
    # Every class center lies at distance class_sep from the task's offset.
    shared_norms = np.linalg.norm(params["shared_centers"], axis=1)
    assert_allclose(shared_norms, 2.0)
    # The empirical class means and covariance match the parameters.
    for task in range(n_tasks):
        Xt, yt = X[task_ids == task], y[task_ids == task]
        for label in range(n_classes):
            rows = Xt[yt == label]
            assert np.abs(rows.mean(axis=0) - centers[task, label]).max() < 0.6
        residual = Xt - centers[task, yt]
        assert np.abs(np.cov(residual.T) - covariance).max() < 1.5


def test_classification_no_task_shift_shares_centers():
    _, _, _, params = make_related_classification_tasks(
        n_tasks=4, task_shift=0.0, return_params=True, random_state=0
    )
    for task in range(4):
        assert_allclose(params["centers"][task], params["shared_centers"])


def test_classification_task_shift_moves_centers():
    def center_spread(task_shift):
        _, _, _, params = make_related_classification_tasks(
            n_tasks=30, task_shift=task_shift, return_params=True, random_state=0
        )
        return np.linalg.norm(
            params["centers"] - params["shared_centers"], axis=(1, 2)
        ).mean()

    assert 0.0 < center_spread(0.3) < center_spread(1.0) < center_spread(3.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_tasks=0),
        dict(n_samples=1),
        dict(n_features=0),
        dict(n_classes=1),
        dict(n_informative=0),
        dict(task_shift=-1.0),
        dict(noise=1.5),
        dict(class_sep=-0.5),
        dict(return_params=None),
        dict(random_state="seed"),
    ],
)
def test_classification_invalid_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        make_related_classification_tasks(**kwargs)


def test_classification_inconsistent_parameters():
    with pytest.raises(ValueError, match="at least n_classes"):
        make_related_classification_tasks(n_samples=4, n_classes=5)
    with pytest.raises(ValueError, match="at most n_features"):
        make_related_classification_tasks(n_features=3, n_informative=4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_transfer_is_useful(seed):
    """Pooled tasks beat few-shot training on a new task; tasks really differ.

    With the defaults, over seeds 0 to 29 the pooled model scores at least
    0.83 on new tasks (mean 0.86), beats a model fit on 5 rows per class of
    the new task by at least 0.049 (mean 0.09), and a model fit on 30 rows of
    a task loses at least 0.046 (mean 0.10) on other tasks.
    """
    X, y, task_ids = make_related_classification_tasks(random_state=seed)
    # Tiny fits: BLAS threads only add overhead, and spin badly on a busy CPU.
    with threadpool_limits(limits=1):
        rng = np.random.RandomState(seed)
        pooled = LogisticRegression().fit(X[task_ids < 40], y[task_ids < 40])

        pooled_scores, few_shot_scores, own_scores, other_scores = [], [], [], []
        for task in range(40, 50):
            Xt, yt = X[task_ids == task], y[task_ids == task]
            for _ in range(5):
                support = np.concatenate(
                    [
                        rng.choice(np.flatnonzero(yt == c), 5, replace=False)
                        for c in (0, 1)
                    ]
                )
                query = np.setdiff1d(np.arange(len(yt)), support)
                pooled_scores.append(pooled.score(Xt[query], yt[query]))
                few_shot = LogisticRegression().fit(Xt[support], yt[support])
                few_shot_scores.append(few_shot.score(Xt[query], yt[query]))

            single = LogisticRegression().fit(Xt[:30], yt[:30])
            own_scores.append(single.score(Xt[30:], yt[30:]))
            for other in range(40, 50):
                if other != task:
                    mask = task_ids == other
                    other_scores.append(single.score(X[mask], y[mask]))

    assert np.mean(pooled_scores) > 0.75
    assert np.mean(pooled_scores) - np.mean(few_shot_scores) > 0.03
    assert np.mean(own_scores) - np.mean(other_scores) > 0.03


# --- common ----------------------------------------------------------------


@pytest.mark.parametrize("generator", GENERATORS)
def test_reproducibility(generator):
    first = generator(n_tasks=5, n_samples=12, return_params=True, random_state=42)
    second = generator(n_tasks=5, n_samples=12, return_params=True, random_state=42)
    other = generator(n_tasks=5, n_samples=12, return_params=True, random_state=43)
    for a, b in zip(first[:3], second[:3], strict=True):
        assert_array_equal(a, b)
    for key in first[3]:
        assert_array_equal(first[3][key], second[3][key])
    assert not np.array_equal(first[0], other[0])

    state = np.random.RandomState(42)
    from_state = generator(n_tasks=5, n_samples=12, random_state=state)
    assert_array_equal(from_state[0], first[0])


@pytest.mark.parametrize("generator", GENERATORS)
def test_return_params_does_not_change_data(generator):
    without = generator(n_tasks=4, n_samples=10, random_state=0)
    with_params = generator(n_tasks=4, n_samples=10, return_params=True, random_state=0)
    assert len(without) == 3
    assert len(with_params) == 4
    for a, b in zip(without, with_params[:3], strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("generator", GENERATORS)
def test_numpydoc_docstring(generator):
    validate = pytest.importorskip("numpydoc.validate").validate
    result = validate(f"sktransfer.datasets.{generator.__name__}")
    errors = [e for e in result["errors"] if e[0] not in IGNORED_NUMPYDOC_CODES]
    assert errors == []


def test_docstring_examples():
    result = doctest.testmod(_generators, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --- make_related_regression_tasks -------------------------------------------


def test_related_regression_shapes_grouping_and_seed():
    X, y, t = make_related_regression_tasks(
        n_tasks=6, n_samples=7, n_features=3, random_state=0
    )
    assert X.shape == (42, 3) and y.shape == (42,) and t.dtype == np.int64
    np.testing.assert_array_equal(t, np.repeat(np.arange(6), 7))
    again = make_related_regression_tasks(
        n_tasks=6, n_samples=7, n_features=3, random_state=0
    )
    np.testing.assert_array_equal(y, again[1])
    other = make_related_regression_tasks(
        n_tasks=6, n_samples=7, n_features=3, random_state=1
    )
    assert not np.allclose(y, other[1])


def test_related_regression_follows_its_formula():
    # Without noise, y is exactly the documented trend plus task effects; the
    # direction of h is the one whose tanh explains what is left.
    X, y, t, params = make_related_regression_tasks(
        n_tasks=5,
        n_samples=50,
        n_features=4,
        noise=0.0,
        return_params=True,
        random_state=0,
    )
    known = (
        np.sin(X[:, 0])
        + 0.5 * X[:, 1] ** 2
        + params["offset"][t]
        + np.einsum("ij,ij->i", X, params["slopes"][t])
    )
    left = (y - known) / params["shape"][t]
    assert np.all(np.abs(left) <= 1.0)  # tanh of something
    direction = np.linalg.lstsq(
        X, np.arctanh(np.clip(left, -0.999999, 0.999999)) / 2, rcond=None
    )[0]
    np.testing.assert_allclose(np.tanh(2 * X @ direction), left, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(direction), 1.0, atol=1e-4)


def test_related_regression_task_effects_scale_with_their_parameters():
    _, _, _, small = make_related_regression_tasks(
        n_tasks=2000,
        offset_scale=0.1,
        shape_scale=0.2,
        random_state=0,
        return_params=True,
    )
    assert small["offset"].std() == pytest.approx(0.1, rel=0.1)
    assert small["shape"].std() == pytest.approx(0.2, rel=0.1)
