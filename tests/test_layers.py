"""The package's layers: imports point one way, and the episode protocol."""

import ast
import pathlib

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

import sktransfer
from sktransfer import few_shot_score
from sktransfer.meta._base import BaseMetaLearner
from sktransfer.utils.discovery import all_estimators

PACKAGE = pathlib.Path(sktransfer.__file__).parent

# Each folder and the packages it must never import: model_selection/ evaluates
# the estimators through a documented protocol, never the reverse.
FORBIDDEN = {
    "meta": ("sktransfer.model_selection",),
    "tasks": ("sktransfer.model_selection", "sktransfer.meta"),
    "utils": ("sktransfer.model_selection", "sktransfer.meta"),
}


def _imported_modules(path):
    """Every module an ``import`` statement of the file names, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_lower_layers_do_not_import_upper_ones():
    offending = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for folder, forbidden in FORBIDDEN.items()
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for module in _imported_modules(path)
        if module.startswith(forbidden)
    ]
    assert offending == []


def test_every_meta_learner_has_the_episode_protocol():
    meta = [cls for _, cls in all_estimators() if issubclass(cls, BaseMetaLearner)]
    assert len(meta) >= 4
    assert all(callable(getattr(cls, "predict_episodes", None)) for cls in meta)


class _Constant(RegressorMixin, BaseEstimator):
    """Predicts the support mean; its batched path predicts ``batched``."""

    def __init__(self, batched=None):
        self.batched = batched

    def fit(self, X, y):
        return self

    def adapt(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


class _Batched(_Constant):
    def predict_episodes(self, supports, queries, task_names):
        return [np.full(len(X_q), self.batched) for X_q in queries]


def test_few_shot_score_goes_through_the_protocol():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 2))
    t = np.repeat(np.arange(4), 10)
    y = t * 1.0 + 0.1 * rng.normal(size=40)
    looped = few_shot_score(_Constant().fit(X, y), (X, y, t), k_shot=3, random_state=0)
    batched = few_shot_score(
        _Batched(batched=1e6).fit(X, y), (X, y, t), k_shot=3, random_state=0
    )
    # The support mean is a fair guess of each task; a constant 1e6 is not.
    assert looped.mean > -10
    assert batched.mean < -1e6
