"""The divergence guard: training that leaves the floats stops with a ValueError.

In every family a learning rate far too large, targets or features on huge
scales either train to finite predictions or stop with scikit-learn's SGD
message ("Floating-point under-/overflow occurred at ..."), naming the
iteration and the cure, and leave the estimator exactly as it was before the
call. Values beyond the float32 range are refused before training, and no
prediction, score or report is NaN without a word.
"""

import copy
import os
import re
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
    few_shot_score,
    transfer_report,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.utils._divergence import finite_weights
from tests._fingerprint import fitted_state

SMALL = {"hidden_layer_sizes": (8,), "random_state": 0}
META = {**SMALL, "max_iter": 6, "meta_batch_size": 4, "k_shot": 3}
FINE = {**SMALL, "max_iter": 3, "adapt_max_iter": 2, "batch_size": 32}
FAMILIES = {
    "MAMLClassifier": lambda **kw: MAMLClassifier(**{**META, **kw}),
    "MAMLRegressor": lambda **kw: MAMLRegressor(**{**META, **kw}),
    "FineTuneClassifier": lambda **kw: FineTuneClassifier(**{**FINE, **kw}),
    "FineTuneRegressor": lambda **kw: FineTuneRegressor(**{**FINE, **kw}),
    "MetaRidgeClassifier": lambda **kw: MetaRidgeClassifier(**{**META, **kw}),
    "MetaRidgeRegressor": lambda **kw: MetaRidgeRegressor(**{**META, **kw}),
    "ProtoNetClassifier": lambda **kw: ProtoNetClassifier(**{**META, **kw}),
}
DIVERGED = "Floating-point under-/overflow occurred at"


def _lr(name):
    return "lr" if name.startswith("FineTune") else "meta_lr"


def _data(name):
    if name.endswith("Classifier"):
        return make_related_classification_tasks(
            n_tasks=6, n_samples=24, n_features=3, n_classes=3, random_state=0
        )
    return make_related_regression_tasks(
        n_tasks=6, n_samples=20, n_features=3, random_state=0
    )


@pytest.fixture(scope="module")
def fitted():
    """Every family fitted once on well-scaled tasks; tests take deep copies."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in FAMILIES.items():
            X, y, t = _data(name)
            out[name] = make().fit(X, y, task_ids=t)
    return out


def _outputs(est, X):
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    return est.predict(X)


# The done-when cases of the guard: (parameters, scale of X, scale of y,
# scale of the first feature).
CASES = {
    "lr=10": ({"lr": 10}, 1.0, 1.0, 1.0),
    "y*1e20": ({}, 1.0, 1e20, 1.0),
    "X*1e30": ({}, 1e30, 1.0, 1.0),
    "one feature at 1.5e4": ({}, 1.0, 1.0, 1.5e4),
    "one unscaled feature at 1.5e4": ({"standardize": False}, 1.0, 1.0, 1.5e4),
}


@pytest.mark.parametrize(
    "name, case",
    [
        (name, case)
        for name in FAMILIES
        for case in CASES
        # Labels are labels: huge targets concern the regressors.
        if not (case.startswith("y") and name.endswith("Classifier"))
    ],
)
def test_huge_scales_train_to_finite_predictions_or_raise_and_change_nothing(
    name, case, fitted
):
    params, x_scale, y_scale, feature_scale = CASES[case]
    params = {_lr(name) if k == "lr" else k: v for k, v in params.items()}
    X, y, t = _data(name)
    X = X * x_scale
    X[:, 0] *= feature_scale
    y = y * y_scale
    est = copy.deepcopy(fitted[name]).set_params(**params)
    before = fitted_state(est)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, task_ids=t)
    except ValueError as exc:
        assert DIVERGED in str(exc)
        assert fitted_state(est) == before
        return
    assert np.isfinite(_outputs(est, X)).all()
    est.adapt(X[t == 0][:12], y[t == 0][:12])
    assert np.isfinite(_outputs(est, X)).all()


# Settings that diverge in each family within the first epochs.
DIVERGING = {
    "MAMLClassifier": {"meta_lr": 1e30},
    "MAMLRegressor": {"meta_lr": 1e30},
    "FineTuneClassifier": {"lr": 1e30},
    "FineTuneRegressor": {"lr": 1e30},
    "MetaRidgeClassifier": {"meta_lr": 10.0},
    "MetaRidgeRegressor": {"meta_lr": 10.0},
    "ProtoNetClassifier": {"meta_lr": 1e30},
}


@pytest.mark.parametrize("name", FAMILIES)
def test_divergence_names_the_iteration_and_the_cure(name, fitted):
    X, y, t = _data(name)
    est = copy.deepcopy(fitted[name]).set_params(**DIVERGING[name])
    before = fitted_state(est)
    with pytest.raises(ValueError, match=DIVERGED) as info:
        est.fit(X, y, task_ids=t)
    message = str(info.value)
    unit = "epoch #" if name.startswith("FineTune") else "meta-iteration #"
    assert unit in message
    assert f"A smaller {_lr(name)}" in message
    assert "StandardScaler" in message
    assert fitted_state(est) == before


@pytest.mark.parametrize("name", FAMILIES)
def test_diverging_partial_fit_leaves_the_model_as_it_was(name, fitted):
    X, y, t = _data(name)
    est = copy.deepcopy(fitted[name])
    est.adapt(X[t == 1][:12], y[t == 1][:12])
    expected = _outputs(est, X)
    # The optimiser built at fit keeps its learning rate: make the rows huge.
    est.set_params(standardize=False)
    before = fitted_state(est)
    X_huge = X * 1e18
    y_huge = y if name.endswith("Classifier") else y * 1e18
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.partial_fit(X_huge, y_huge, task_ids=t)
    except ValueError as exc:
        assert DIVERGED in str(exc)
        assert fitted_state(est) == before
        np.testing.assert_array_equal(_outputs(est, X), expected)
    else:
        assert np.isfinite(_outputs(est, X)).all()


def test_diverging_fine_tuning_adapt_names_adapt_lr_and_keeps_the_adaptation(
    fitted,
):
    X, y, t = _data("FineTuneRegressor")
    est = copy.deepcopy(fitted["FineTuneRegressor"])
    est.adapt(X[t == 1][:12], y[t == 1][:12])
    expected = est.predict(X)
    est.set_params(adapt_lr=1e30)
    before = fitted_state(est)
    with pytest.raises(ValueError, match=f"{DIVERGED} epoch #.*smaller adapt_lr"):
        est.adapt(X[t == 0][:12], y[t == 0][:12])
    assert fitted_state(est) == before
    np.testing.assert_array_equal(est.predict(X), expected)


def test_diverging_maml_adaptation_is_refused_and_keeps_the_adaptation(fitted):
    X, y, t = _data("MAMLRegressor")
    est = copy.deepcopy(fitted["MAMLRegressor"])
    est.adapt(X[t == 1][:12], y[t == 1][:12])
    expected = est.predict(X)
    # Huge support targets make the adaptation steps overflow.
    est.set_params(n_adapt_steps=3)
    before = fitted_state(est)
    with pytest.raises(ValueError, match="while adapting.*smaller inner_lr"):
        est.adapt(X[t == 0][:12], y[t == 0][:12] * 1e20)
    assert fitted_state(est) == before
    np.testing.assert_array_equal(est.predict(X), expected)


# -- values beyond the float32 range ------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_values_beyond_float32_are_refused_everywhere(name, fitted):
    X, y, t = _data(name)
    huge = X.copy()
    huge[7, 1] = 1e39
    est = copy.deepcopy(fitted[name])
    before = fitted_state(est)
    with pytest.raises(ValueError, match="task 0 has values in X beyond the float32"):
        FAMILIES[name]().fit(huge, y, task_ids=t)
    pairs = [(huge[t == i], y[t == i]) for i in np.unique(t)]
    with pytest.raises(ValueError, match="task 0 has values in X beyond the float32"):
        FAMILIES[name]().fit(pairs)
    with pytest.raises(ValueError, match="beyond the float32"):
        est.partial_fit(huge, y, task_ids=t)
    with pytest.raises(ValueError, match="X has values beyond the float32 .*row 7"):
        est.adapt(huge[:12], y[:12])
    with pytest.raises(ValueError, match="X has values beyond the float32 .*row 7"):
        est.predict(huge)
    assert fitted_state(est) == before
    if name.endswith("Regressor"):
        y_huge = y.copy()
        y_huge[3] = -1e39
        with pytest.raises(ValueError, match="y beyond the float32"):
            FAMILIES[name]().fit(X, y_huge, task_ids=t)
        with pytest.raises(ValueError, match="y has values beyond the float32"):
            est.adapt(X[:12], y_huge[:12])
    # float32 input can never exceed the range, and its largest value passes.
    edge = X.copy()
    edge[0, 0] = np.finfo(np.float32).max
    assert est.predict(edge).shape == (len(X),)


# -- no silent NaN in predictions, scores and reports -------------------------


def _broken(est):
    """A copy whose weights are infinite, as a corrupted file would give."""
    broken = copy.deepcopy(est)
    first = next(broken.module_.parameters())
    first.data[:] = np.inf
    return broken


@pytest.mark.parametrize(
    "name", ["MAMLClassifier", "MAMLRegressor", "FineTuneClassifier"]
)
def test_non_finite_outputs_are_an_error_not_an_answer(name, fitted):
    X, y, t = _data(name)
    broken = _broken(fitted[name])
    with pytest.raises(ValueError, match="outputs of the model are NaN or infinite"):
        broken.predict(X)
    with pytest.raises(ValueError, match="NaN or infinite"):
        broken.score(X, y)
    if name.startswith("MAML"):
        with pytest.raises(ValueError, match="adapt.*NaN or infinite"):
            broken.score(X, y, task_ids=t)
        with pytest.raises(ValueError, match="NaN or infinite"):
            few_shot_score(broken, (X, y, t), k_shot=3)
        with pytest.raises(ValueError, match="NaN or infinite"):
            transfer_report(broken, (X, y, t), k_shot=3)


def test_a_nan_score_is_named_not_averaged_silently(fitted):
    # A metric that is NaN on task 4's query rows: the mean is NaN, and the
    # warning says which task, at the caller's line.
    X, y, t = _data("MAMLRegressor")
    est = fitted["MAMLRegressor"]

    def metric(y_true, y_pred):
        return np.nan if np.isin(y_true, y[t == 4]).any() else 1.0

    with pytest.warns(RuntimeWarning, match="task 4 .*NaN or infinite") as record:
        result = few_shot_score(est, (X, y, t), k_shot=3, metric=metric)
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutation adds a frame
        assert [w.filename for w in record] == [__file__]
    assert np.isnan(result.mean)
    with pytest.warns(RuntimeWarning) as record:
        transfer_report(est, (X, y, t), k_shot=3, metric=metric)
    messages = [str(w.message) for w in record]
    assert "The score of the adapted estimator on task 4" in messages[0]
    assert "The score of baseline 'support set only' on task 4" in messages[1]
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert {w.filename for w in record} == {__file__}


# -- the guard of the meta-learners' engine ------------------------------------


class _Poison(Callback):
    """Makes the first weight NaN after meta-iteration ``at`` (1-based)."""

    def __init__(self, at):
        self.at = at

    def initialize(self):
        self.seen_ = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.seen_ += 1
        if self.seen_ == self.at:
            with torch.no_grad():
                next(net.module_.parameters()).fill_(np.nan)


@pytest.mark.parametrize(
    "at, where",
    [
        # The next step's loss is NaN: the error names that step.
        (5, "meta-iteration #6 (epoch #3)"),
        (1, "meta-iteration #2 (epoch #1)"),
        # The epoch's last step: its losses are finite, its weights are not.
        (4, "meta-iteration #4 (epoch #2)"),
        (6, "meta-iteration #6 (epoch #3)"),
    ],
)
def test_the_meta_engine_names_the_meta_iteration_that_diverged(at, where, fitted):
    # 8 tasks in meta-batches of 4: two meta-iterations an epoch.
    X, y, t = _data("MAMLRegressor")
    X, y, t = X[t < 8], y[t < 8], t[t < 8]
    est = copy.deepcopy(fitted["MAMLRegressor"]).set_params(
        callbacks=[("poison", _Poison(at))]
    )
    before = fitted_state(est)
    with pytest.raises(ValueError, match=re.escape(f"{DIVERGED} {where}:")):
        est.fit(X, y, task_ids=t)
    assert fitted_state(est) == before


def test_diverged_restores_the_last_finite_weights(fitted):
    est = copy.deepcopy(fitted["MAMLRegressor"])
    engine = est.net_
    saved = finite_weights(engine.module_)
    engine.last_finite_ = finite_weights(engine.module_)
    with torch.no_grad():
        for value in engine.module_.parameters():
            value.fill_(np.inf)
    error = engine.diverged(1)
    restored = engine.module_.state_dict()
    assert restored.keys() == saved.keys()
    for name, value in saved.items():
        assert torch.equal(restored[name], value), name
    done = sum(row["train_batch_count"] for row in engine.history[:-1])
    assert len(engine.history) > 1 and done > 0
    assert isinstance(error, ValueError)
    assert str(error).startswith(
        f"{DIVERGED} meta-iteration #{done + 2} (epoch #{len(engine.history)}): "
    )
    assert "A smaller meta_lr or inner_lr" in str(error)
