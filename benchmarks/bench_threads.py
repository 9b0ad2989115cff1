"""Wall time of small fits against torch's thread count.

Torch runs every operation on a pool of intra-op threads, one per physical
core by default. The networks of tabular meta-learning are small (a few
thousand weights, batches of tens of rows): each operation is a few
microseconds of work, and handing it out to several threads and waiting for
them costs more than it saves. This script measures it on generated tasks
(``sktransfer.datasets``) for one small ``fit`` of `MAMLRegressor`,
`MetaRidgeRegressor` and `FineTuneRegressor`, with ``torch.set_num_threads(1)``,
``(2)`` and torch's default.

The thread count is process-wide, so every timing runs in a fresh
subprocess that sets it before anything else (and without
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in its environment, so that the
default is torch's own); only the ``fit`` call is timed, after the imports
and the data. The settings are interleaved round by round and the median of
the rounds is reported, with the fastest setting's speed-up. On a shared
machine other processes add noise: read ratios, not the third digit.

The table is printed and saved to ``benchmarks/results/threads/`` (JSON,
and the table as text).

Usage::

    python benchmarks/bench_threads.py              # 3 rounds
    python benchmarks/bench_threads.py --rounds 5
    python benchmarks/bench_threads.py --quick      # smoke run, tiny fits
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "threads"
ESTIMATORS = ("MAMLRegressor", "MetaRidgeRegressor", "FineTuneRegressor")
SETTINGS = ("1", "2", "default")


def _child(name, threads, quick):
    """Time one ``fit`` in this (fresh) process; print the result as JSON."""
    import torch

    if threads != "default":
        torch.set_num_threads(int(threads))
    import sktransfer
    from sktransfer.datasets import make_sinusoid_tasks

    X, y, t = make_sinusoid_tasks(n_tasks=50, n_samples=20, random_state=0)
    scale = 10 if quick else 1
    if name == "MAMLRegressor":
        est = sktransfer.MAMLRegressor(max_iter=100 // scale, random_state=0)
        fit = lambda: est.fit(X, y, task_ids=t)  # noqa: E731
    elif name == "MetaRidgeRegressor":
        est = sktransfer.MetaRidgeRegressor(
            max_iter=200 // scale, k_shot=10, early_stopping=False, random_state=0
        )
        fit = lambda: est.fit(X, y, task_ids=t)  # noqa: E731
    else:
        est = sktransfer.FineTuneRegressor(max_iter=50 // scale, random_state=0)
        fit = lambda: est.fit(X, y)  # noqa: E731
    start = time.perf_counter()
    fit()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "torch_threads": torch.get_num_threads()}))


def _run(name, threads, quick):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    command = [sys.executable, __file__, "--child", name, "--threads", threads]
    if quick:
        command.append("--quick")
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(rows):
    lines = [
        f"{'estimator':<20} {'threads':>8} {'torch threads':>14} {'median s':>9} "
        f"{'vs 1 thread':>12}",
        "-" * 67,
    ]
    for row in rows:
        lines.append(
            f"{row['estimator']:<20} {row['setting']:>8} {row['torch_threads']:>14} "
            f"{row['median_s']:>9.2f} {row['ratio_to_1']:>11.2f}x"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=ESTIMATORS)
    parser.add_argument("--threads", choices=SETTINGS, default="default")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.threads, args.quick)
        return

    load_before = os.getloadavg()
    times = {(name, s): [] for name in ESTIMATORS for s in SETTINGS}
    threads = {}
    for round_ in range(args.rounds):
        for name in ESTIMATORS:
            # The order of the settings alternates from round to round.
            order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                result = _run(name, setting, args.quick)
                times[name, setting].append(result["seconds"])
                threads[name, setting] = result["torch_threads"]
                print(
                    f"round {round_ + 1}: {name} threads={setting}: "
                    f"{result['seconds']:.2f} s",
                    flush=True,
                )

    rows = []
    for name in ESTIMATORS:
        one = statistics.median(times[name, "1"])
        for setting in SETTINGS:
            median = statistics.median(times[name, setting])
            rows.append(
                {
                    "estimator": name,
                    "setting": setting,
                    "torch_threads": threads[name, setting],
                    "median_s": median,
                    "ratio_to_1": median / one,
                    "runs_s": times[name, setting],
                }
            )
    table = _table(rows)
    print()
    print(table)

    import torch

    meta = {
        "rounds": args.rounds,
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        # Other processes on the machine compete for the cores: the load
        # before and after the run.
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "fits": {
            "data": "make_sinusoid_tasks(n_tasks=50, n_samples=20)",
            "MAMLRegressor": "max_iter=100 (defaults otherwise)",
            "MetaRidgeRegressor": "max_iter=200, k_shot=10, early_stopping=False",
            "FineTuneRegressor": "max_iter=50 epochs (defaults otherwise)",
        },
    }
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "threads.json").write_text(
            json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
        )
        (RESULTS / "threads.txt").write_text(table + "\n")
        print(f"\nsaved to {RESULTS}")


if __name__ == "__main__":
    main()
