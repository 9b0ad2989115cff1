"""Overhead of `FineTuneClassifier.fit` over a bare skorch `NeuralNetClassifier`.

Both train the same MLP (``sktransfer.nn.MLP``, same widths, same initial
weights recipe) with Adam, the same learning rate, epochs and batch size, on
the same pooled source data (``make_related_classification_tasks``), with
shuffled mini-batches and no validation split. The bare skorch net gets the
data already as float32 / int64 arrays; `FineTuneClassifier` gets float64
data and does its own validation, label encoding, seeding and module
building, which is the overhead measured here.

Repeats are interleaved (ours, skorch, ours, skorch ... with the order
alternating each round) and the medians compared. Target: ratio <= 1.10.
The median of the per-round ratios and the ratio of the minima are printed
too: on a shared, loaded machine they are less sensitive to noise.
The table is printed and saved as JSON to
``benchmarks/results/bench_finetune_overhead.json``.

Usage::

    python benchmarks/bench_finetune_overhead.py            # full run, CPU
    python benchmarks/bench_finetune_overhead.py --quick    # smoke run

The script exits with status 0 whatever the result.
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import skorch
import torch
from skorch import NeuralNetClassifier
from torch import nn

import sktransfer
from sktransfer.datasets import make_related_classification_tasks
from sktransfer.finetune import FineTuneClassifier
from sktransfer.nn import MLP

RESULTS = Path(__file__).resolve().parent / "results"


def _ours(X, y, args, seed):
    est = FineTuneClassifier(
        hidden_layer_sizes=args.hidden,
        lr=args.lr,
        max_iter=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        random_state=seed,
    )
    start = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - start


def _bare(X, y, args, seed):
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP(
            n_features=X.shape[1],
            n_outputs=len(np.unique(y)),
            hidden_layer_sizes=args.hidden,
        ),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        device=args.device,
        verbose=0,
    )
    net.fit(X.astype(np.float32), y.astype(np.int64))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[40, 40])
    parser.add_argument("--n-tasks", type=int, default=50)
    parser.add_argument("--n-samples", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.n_tasks = 3, 5, 10
    args.hidden = tuple(args.hidden)
    torch.set_num_threads(args.threads)

    X, y, _ = make_related_classification_tasks(
        n_tasks=args.n_tasks, n_samples=args.n_samples, n_classes=3, random_state=0
    )
    # Warm up both paths (allocator, kernels, imports) before timing.
    _ours(X, y, argparse.Namespace(**{**vars(args), "epochs": 1}), 0)
    _bare(X, y, argparse.Namespace(**{**vars(args), "epochs": 1}), 0)

    times = {"sktransfer": [], "skorch": []}
    for r in range(args.repeats):
        order = ["sktransfer", "skorch"] if r % 2 == 0 else ["skorch", "sktransfer"]
        for name in order:
            run = _ours if name == "sktransfer" else _bare
            times[name].append(run(X, y, args, seed=r))
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["sktransfer"] / medians["skorch"]
    # Each round's own ratio is robust to slow drifts of the machine's load.
    paired = statistics.median(
        a / b for a, b in zip(times["sktransfer"], times["skorch"], strict=True)
    )
    best = min(times["sktransfer"]) / min(times["skorch"])

    print(
        f"FineTuneClassifier.fit vs skorch NeuralNetClassifier.fit: {len(X)} rows, "
        f"{X.shape[1]} features, MLP {args.hidden}, {args.epochs} epochs, "
        f"batch {args.batch_size}, device {args.device}, {args.repeats} repeats"
    )
    print(f"{'engine':<12}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, t in times.items():
        print(f"{name:<12}{medians[name]:>10.3f}{min(t):>10.3f}{max(t):>10.3f}")
    verdict = "PASS" if ratio <= 1.10 else "MISS"
    print(
        f"overhead ratio (median ours / median skorch): {ratio:.3f} "
        f"(target <= 1.10: {verdict})"
    )
    print(f"median of per-round ratios: {paired:.3f}; ratio of minima: {best:.3f}")

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_finetune_overhead.json"
    out.write_text(
        json.dumps(
            {
                "settings": {
                    **{k: v for k, v in vars(args).items() if k != "hidden"},
                    "hidden": list(args.hidden),
                    "n_rows": len(X),
                    "n_features": X.shape[1],
                },
                "times_s": times,
                "median_s": medians,
                "ratio": ratio,
                "paired_ratio_median": paired,
                "min_ratio": best,
                "target": 1.10,
                "verdict": verdict,
                "versions": {
                    "sktransfer": sktransfer.__version__,
                    "skorch": skorch.__version__,
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                },
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
