"""Shared label spaces: cost per meta-iteration against the episodic mode.

Every task holds 5 of ``C`` classes (C = 600 and 1,000). In the shared label
space a classifier has one output per class of the whole collection; in the
episodic space (``n_way=5``) one per class of the episode. An episode should
cost what its own classes cost, not what the model's classes cost: this
script meta-trains `MAMLClassifier` and `ProtoNetClassifier` for a fixed
number of meta-iterations in each mode (one torch and one BLAS thread),
every run in its own process (for its peak memory), and prints the time
per meta-iteration and the peak resident memory, with the shared/episodic
ratios. Target: both ratios within 2x.
Results go to ``benchmarks/results/shared_labels.json``.

Usage::

    python benchmarks/bench_shared_labels.py            # C = 600 and 1,000
    python benchmarks/bench_shared_labels.py --quick    # smoke run

The script exits with status 0 whatever the result.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def make_tasks(n_classes, n_tasks, labels_per_task=5, rows_per_class=12, seed=0):
    """``n_tasks`` tasks of ``labels_per_task`` classes out of ``n_classes``."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(n_classes, 10))
    X, y, t = [], [], []
    for task in range(n_tasks):
        classes = rng.choice(n_classes, labels_per_task, replace=False)
        for c in classes:
            X.append(centres[c] + 0.5 * rng.normal(size=(rows_per_class, 10)))
            y += [c] * rows_per_class
            t += [task] * rows_per_class
    return np.vstack(X), np.array(y), np.array(t)


def one_run(family, mode, n_classes, n_iter):
    """Fit in this process; print one JSON line."""
    import torch
    from threadpoolctl import threadpool_limits

    from sktransfer import MAMLClassifier, ProtoNetClassifier

    torch.set_num_threads(1)
    threadpool_limits(1)
    # Enough tasks that every class is in some task.
    X, y, t = make_tasks(n_classes, n_tasks=max(200, n_classes // 2))
    n_way = 5 if mode == "episodic" else None
    common = dict(hidden_layer_sizes=(40, 40), k_shot=5, n_way=n_way, random_state=0)
    if family == "MAML":
        est = MAMLClassifier(max_iter=n_iter, meta_batch_size=25, **common)
    else:
        est = ProtoNetClassifier(
            max_iter=n_iter, early_stopping=False, meta_batch_size=25, **common
        )
    start = time.perf_counter()
    est.fit(X, y, task_ids=t)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "family": family,
                "mode": mode,
                "n_classes": n_classes,
                "n_classes_seen": len(getattr(est, "classes_", ())),
                "n_iter": int(est.n_iter_),
                "seconds": seconds,
                "ms_per_iteration": 1000 * seconds / max(est.n_iter_, 1),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                / 1024,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        family, mode, n_classes, n_iter = args.one
        one_run(family, mode, int(n_classes), int(n_iter))
        return
    sizes = [100] if args.quick else [600, 1000]
    n_iter = 5 if args.quick else 40
    rows = []
    for n_classes in sizes:
        for family in ["MAML", "ProtoNet"]:
            for mode in ["episodic", "shared"]:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        family,
                        mode,
                        str(n_classes),
                        str(n_iter),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(
                    f"{family:8s} C={n_classes:5d} {mode:8s} "
                    f"{r['ms_per_iteration']:9.1f} ms/it  "
                    f"{r['peak_rss_mb']:8.0f} MB peak"
                )
    ratios = []
    for n_classes in sizes:
        for family in ["MAML", "ProtoNet"]:
            pair = {
                r["mode"]: r
                for r in rows
                if r["family"] == family and r["n_classes"] == n_classes
            }
            time_ratio = (
                pair["shared"]["ms_per_iteration"]
                / pair["episodic"]["ms_per_iteration"]
            )
            memory_ratio = (
                pair["shared"]["peak_rss_mb"] / pair["episodic"]["peak_rss_mb"]
            )
            ok = time_ratio <= 2 and memory_ratio <= 2
            ratios.append(
                dict(
                    family=family,
                    n_classes=n_classes,
                    time_ratio=time_ratio,
                    memory_ratio=memory_ratio,
                    within_2x=ok,
                )
            )
            print(
                f"{family:8s} C={n_classes:5d} shared/episodic: time "
                f"{time_ratio:5.2f}x  memory {memory_ratio:5.2f}x  "
                f"{'PASS' if ok else 'MISS'}"
            )
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / "shared_labels.json"
        path.write_text(
            json.dumps(
                {"python": platform.python_version(), "runs": rows, "ratios": ratios},
                indent=2,
            )
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
