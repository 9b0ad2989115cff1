"""``verbose``: one meaning in every network family.

0 is silent, 1 a progress bar only, 2 the bar and skorch's log line per epoch.
"""

import numpy as np
import pytest

from sktransfer import (
    DANNRegressor,
    FineTuneRegressor,
    MAMLRegressor,
    MetaRidgeRegressor,
)
from sktransfer.datasets import make_sinusoid_tasks
from tests._marks import slow_except


def _fit(family, verbose):
    X, y, t = make_sinusoid_tasks(n_tasks=8, n_samples=20, random_state=0)
    if family == "maml":
        est = MAMLRegressor(hidden_layer_sizes=(8,), max_iter=4, meta_batch_size=4)
        return est.set_params(verbose=verbose).fit(X, y, task_ids=t)
    if family == "closed_form":
        est = MetaRidgeRegressor(
            hidden_layer_sizes=(8,), max_iter=60, k_shot=5, early_stopping=False
        )
        return est.set_params(verbose=verbose).fit(X, y, task_ids=t)
    if family == "finetune":
        est = FineTuneRegressor(hidden_layer_sizes=(8,), max_iter=2, adapt_max_iter=2)
        return est.set_params(verbose=verbose).fit(X, y)
    domain = np.where(t < 4, 1, -1)
    est = DANNRegressor(
        hidden_layer_sizes=(8,),
        domain_hidden_layer_sizes=(8,),
        max_iter=2,
        validation_fraction=None,
    )
    return est.set_params(verbose=verbose).fit(
        X, np.where(domain > 0, y, np.nan), sample_domain=domain
    )


def _bar(err):
    return "%|" in err  # tqdm's bar


def _epoch_table(out):
    return "epoch" in out and "train_loss" in out  # skorch's PrintLog


FAMILIES = ["maml", "closed_form", "finetune", "dann"]


@pytest.mark.parametrize("family", slow_except(FAMILIES, "finetune", "maml"))
@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_verbose_means_the_same_in_every_family(family, verbose, capsys):
    _fit(family, verbose)
    out, err = capsys.readouterr()
    assert _bar(err) == (verbose >= 1)
    assert _epoch_table(out) == (verbose >= 2)
    if verbose < 2:
        assert out == ""


@pytest.mark.parametrize("verbose", [1, 2])
def test_finetune_adapt_follows_verbose_too(verbose, capsys):
    est = _fit("finetune", verbose)
    capsys.readouterr()
    X, y, _ = make_sinusoid_tasks(n_tasks=1, n_samples=10, random_state=1)
    est.adapt(X, y)
    out, err = capsys.readouterr()
    assert _bar(err)
    assert _epoch_table(out) == (verbose >= 2)
