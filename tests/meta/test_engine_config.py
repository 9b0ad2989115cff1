"""The engine's inputs: one frozen configuration per call, named targets."""

import dataclasses

import numpy as np
import pytest

from sktransfer import MAMLClassifier, MAMLRegressor, MetaRidgeRegressor, TaskSet
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.meta._engine import MAMLTrainingConfig


@pytest.mark.parametrize(
    "est",
    [
        MAMLRegressor(hidden_layer_sizes=(8,), max_iter=6, meta_batch_size=4),
        MAMLRegressor(
            hidden_layer_sizes=(8,), max_iter=6, meta_batch_size=4, early_stopping=True
        ),
        MetaRidgeRegressor(max_iter=6, k_shot=5),
        MetaRidgeRegressor(max_iter=6, k_shot=5, early_stopping=True),
    ],
    ids=["maml", "maml-stopping", "ridge", "ridge-stopping"],
)
def test_a_call_leaves_no_configuration_on_the_engine(est):
    X, y, t = make_sinusoid_tasks(n_tasks=8, random_state=0)
    est.set_params(random_state=0).fit(X, y, task_ids=t)
    est.partial_fit(X, y, task_ids=t)
    leftovers = {
        "config_",
        "generator_",
        "pool_",
        "episode",
        "iterations_per_epoch_",
        # The divergence guard's copy of the weights, the batched forward.
        "last_finite_",
        "forward_",
    }
    assert leftovers.isdisjoint(vars(est.net_))
    assert est.n_iter_ > 6


def test_the_configuration_is_frozen():
    config = MAMLTrainingConfig(
        n_iterations=3,
        iterations_per_epoch=1,
        meta_batch_size=2,
        k_shot=1,
        n_query=1,
        n_way=None,
        seed=0,
        n_inner_steps=1,
        n_adapt_steps=1,
        first_order=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_iterations = 4


def test_encoded_targets_of_a_classifier_are_its_class_codes():
    X, y, t = make_related_classification_tasks(n_tasks=4, random_state=0)
    est = MAMLClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    est.fit(X, y, task_ids=t)
    encoded = est._encode_targets(TaskSet.from_arrays(X, y, t), reset=False)
    np.testing.assert_array_equal(est.classes_[encoded.targets], y)
    assert encoded.values is None and encoded.n_outputs == len(est.classes_)
    assert encoded.counts.shape == (4, len(est.classes_))
    assert encoded.counts.sum() == len(y)


def test_encoded_targets_of_a_regressor_are_standardised_values():
    X, y, t = make_sinusoid_tasks(n_tasks=4, random_state=0)
    est = MAMLRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    est.fit(X, y, task_ids=t)
    encoded = est._encode_targets(TaskSet.from_arrays(X, y, t), reset=False)
    np.testing.assert_allclose(est._unstandardize_y(encoded.targets).ravel(), y)
    assert encoded.n_slots == 1 and not encoded.slots.any()
    assert encoded.targets.std() == pytest.approx(1.0, rel=0.2)
