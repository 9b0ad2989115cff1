"""Two checks on real data that the benchmark tables do not show.

Run from the repository root: ``python benchmarks/realdata/checks.py``.

1. Raw-scale targets: `MAMLRegressor` at its defaults on Texas house prices in
   dollars (hundreds of thousands), against the same estimator without
   internal standardisation fitted on prices standardised by hand (its
   predictions transformed back): few-shot RMSE in dollars on held-out
   cities, K = 5, 10, 20, with the paired 95% interval of the difference.
2. Transfer reports: `transfer_report` of `MAMLClassifier` on the 2016 vote
   data, with pooled gradient boosting among the baselines, and of
   `MetaRidgeClassifier` on the leaf species (held-out species, 5-way): which
   baselines each warning names.

Writes ``benchmarks/results/realdata/checks.json``.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).parent))

from datasets import load_leaf, load_txhousing, load_vote  # noqa: E402
from protocol import (  # noqa: E402  # noqa: E402
    paired_ci,
    per_unit,
    rmse,
    score_episodes,
    split_tasks,
    task_episodes,
)

from sktransfer import (  # noqa: E402
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    PooledClassifier,
    SupportSetClassifier,
    transfer_report,
)
from sktransfer.exceptions import NegativeTransferWarning  # noqa: E402

RESULTS = Path(__file__).parents[1] / "results" / "realdata"


class _Unstandardized:
    """A regressor fitted on standardised targets, predicting in dollars."""

    def __init__(self, estimator, mean, scale):
        self.estimator, self.mean, self.scale = estimator, mean, scale

    def adapt(self, X, y):
        self.estimator.adapt(X, (y - self.mean) / self.scale)
        return self

    def predict(self, X):
        return self.estimator.predict(X) * self.scale + self.mean


def raw_scale(seed=0):
    data = load_txhousing(log_price=False)
    X, y, tasks = data.X.to_numpy(float), data.y, data.tasks
    train_labels, _ = split_tasks(tasks, 0)
    train = np.isin(tasks, train_labels)
    raw = MAMLRegressor(random_state=seed).fit(
        X[train], y[train], task_ids=tasks[train]
    )
    mean, scale = y[train].mean(), y[train].std()
    by_hand = MAMLRegressor(standardize=False, random_state=seed)
    Xs = (X - X[train].mean(0)) / X[train].std(0)
    by_hand.fit(Xs[train], (y[train] - mean) / scale, task_ids=tasks[train])
    out = {}
    for k in (5, 10, 20):
        episodes = task_episodes(tasks, ~train, k, 3, 0)
        a = per_unit(score_episodes(raw, X, y, episodes, rmse)[0], episodes.unit)
        b = per_unit(
            score_episodes(
                _Unstandardized(by_hand, mean, scale), Xs, y, episodes, rmse
            )[0],
            episodes.unit,
        )
        diff, ci = paired_ci(a, b)
        out[str(k)] = {
            "raw_y": float(a.mean()),
            "standardised_by_hand": float(b.mean()),
            "diff": diff,
            "ci95": ci,
        }
        print(
            f"txhousing in dollars, K={k}: MAMLRegressor on raw y {a.mean():,.0f}, "
            f"on y standardised by hand {b.mean():,.0f}, difference {diff:+,.0f} "
            f"[{ci[0]:+,.0f}, {ci[1]:+,.0f}]"
        )
    return out


def _report(estimator, tasks, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NegativeTransferWarning)
        report = transfer_report(estimator, tasks, **kwargs)
    messages = [
        str(w.message)
        for w in caught
        if issubclass(w.category, NegativeTransferWarning)
    ]
    print(report)
    print("warnings:", messages or "none")
    return {
        "mean_gain": report.mean_gain,
        "ci95": report.ci95,
        "warnings": messages,
    }


def reports(seed=0):
    out = {}
    data = load_vote()
    X, y, tasks = data.X.to_numpy(float), data.y, data.tasks
    train_labels, _ = split_tasks(tasks, 0)
    train = np.isin(tasks, train_labels)
    maml = MAMLClassifier(random_state=seed).fit(
        X[train], y[train], task_ids=tasks[train]
    )
    boosting = PooledClassifier(
        HistGradientBoostingClassifier(random_state=0), offset=None
    )
    print("\nvote, MAMLClassifier, K = 5 rows per class:")
    out["vote_maml"] = _report(
        maml,
        (X[~train], y[~train], tasks[~train]),
        k_shot=5,
        train_tasks=(X[train], y[train], tasks[train]),
        baselines={
            "support set only": SupportSetClassifier(),
            "pooled logistic": PooledClassifier(offset=None),
            "pooled boosting": boosting,
        },
        random_state=0,
    )
    data = load_leaf()
    X, y = data.X.to_numpy(float), data.y
    train_labels, test_labels = split_tasks(y, 0, n_test=12)
    train = np.isin(y, train_labels)
    ridge = MetaRidgeClassifier(n_way=5, random_state=seed).fit(X[train], y[train])
    # Tasks of five held-out species each (20 draws; a species is in several).
    rng = np.random.RandomState(0)
    rows = [
        np.flatnonzero(np.isin(y, rng.choice(test_labels, 5, replace=False)))
        for _ in range(20)
    ]
    episodes = np.concatenate(rows)
    groups = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    print("\nleaf, MetaRidgeClassifier, 5-way 1-shot tasks of held-out species:")
    out["leaf_metaridge"] = _report(
        ridge, (X[episodes], y[episodes], groups), k_shot=1, random_state=0
    )
    return out


def main():
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)
    results = {"raw_scale": raw_scale(), "transfer_reports": reports()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "checks.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
