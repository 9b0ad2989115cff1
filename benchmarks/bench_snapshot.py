"""Cost of atomic calls: the state snapshot taken before every fit/partial_fit.

`fit` and `partial_fit` run under ``restore_on_error``: before the call a
snapshot of the estimator's state is taken (the attributes of the estimator,
its skorch engines, callbacks, modules and optimisers, a copy of every tensor
they hold), to be restored if the call raises or is interrupted. This script
times the snapshot alone (``Snapshot(estimator)``, median of repeats) against
one `partial_fit` and one `fit` of the same estimator, for every family, with
the default network (``hidden_layer_sizes=(40, 40)``) and a wider one, on
``make_related_classification_tasks`` / ``make_related_regression_tasks``
(100 tasks of 40 rows, 10 features).

The table is printed and saved as JSON to
``benchmarks/results/bench_snapshot.json``.

Usage::

    python benchmarks/bench_snapshot.py            # full run, CPU
    python benchmarks/bench_snapshot.py --quick    # smoke run

The script exits with status 0 whatever the result.
"""

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

import sktransfer
from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    ProtoNetClassifier,
)
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.utils._state import Snapshot

RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = {
    "MAMLClassifier": (MAMLClassifier, {"max_iter": 100}),
    "MAMLRegressor": (MAMLRegressor, {"max_iter": 100}),
    "FineTuneClassifier": (FineTuneClassifier, {"max_iter": 10}),
    "FineTuneRegressor": (FineTuneRegressor, {"max_iter": 10}),
    "MetaRidgeClassifier": (MetaRidgeClassifier, {"max_iter": 100}),
    "MetaRidgeRegressor": (MetaRidgeRegressor, {"max_iter": 100}),
    "ProtoNetClassifier": (ProtoNetClassifier, {"max_iter": 100}),
}


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _measure(name, hidden, data, repeats):
    cls, params = FAMILIES[name]
    X, y, t = data
    est = cls(hidden_layer_sizes=hidden, random_state=0, **params)
    fit = _timed(lambda: est.fit(X, y, task_ids=t))
    partial = statistics.median(
        _timed(lambda: est.partial_fit(X, y, task_ids=t)) for _ in range(3)
    )
    snapshot = statistics.median(_timed(lambda: Snapshot(est)) for _ in range(repeats))
    n_params = sum(p.numel() for p in est.net_.module_.parameters())
    return {
        "estimator": name,
        "hidden_layer_sizes": list(hidden),
        "n_parameters": n_params,
        "history_rows": len(est.net_.history),
        "snapshot_ms": 1e3 * snapshot,
        "partial_fit_ms": 1e3 * partial,
        "fit_ms": 1e3 * fit,
        "snapshot_over_partial_fit": snapshot / partial,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    n_tasks = 20 if args.quick else 100
    clf = make_related_classification_tasks(
        n_tasks=n_tasks, n_samples=40, random_state=0
    )
    reg = make_related_regression_tasks(
        n_tasks=n_tasks, n_samples=40, n_features=10, random_state=0
    )
    widths = [(40, 40)] if args.quick else [(40, 40), (256, 256)]
    rows = []
    for hidden in widths:
        for name in FAMILIES:
            data = clf if name.endswith("Classifier") else reg
            row = _measure(name, hidden, data, repeats=5 if args.quick else 50)
            rows.append(row)
            print(
                f"{name:20s} {str(hidden):11s} {row['n_parameters']:7d} params  "
                f"snapshot {row['snapshot_ms']:7.3f} ms  partial_fit "
                f"{row['partial_fit_ms']:8.1f} ms  fit {row['fit_ms']:8.1f} ms  "
                f"ratio {row['snapshot_over_partial_fit']:.4f}"
            )
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        out = {
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "sktransfer": sktransfer.__version__,
            "threads": 1,
            "rows": rows,
        }
        path = RESULTS / "bench_snapshot.json"
        path.write_text(json.dumps(out, indent=2))
        print(f"saved {path}")


if __name__ == "__main__":
    main()
