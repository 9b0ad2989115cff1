"""How much DANN's target accuracy depends on each of its defaults.

The problems of ``bench_dann.py`` (rotated and translated moons, a tabular
covariate shift, the vote by region), three seeds, the same split (half of the
target rows unlabelled training rows, half the test set). `DANNClassifier`
with hidden layers (64, 64) at its defaults, then with one default changed at
a time: the largest reversal weight, the learning rate and its annealing, the
number of epochs, the batch size, the domain classifier's size, the
activation, per-domain statistics. The source-only rows are the same network
trained on the source rows alone (``domain_weight=0``, no target rows), with
the feature extractor of the defaults (64, 64) and a smaller one (16, 16), of
which issue 10 asks DANN to beat the better.

Prints a table and writes ``benchmarks/results/dann/defaults.json``. Run:
``python benchmarks/bench_dann_defaults.py`` (about 15 minutes on two cores).
"""

import json
import time
import warnings
from multiprocessing import Pool

import numpy as np
import torch
from bench_dann import HIDDEN, OUT, PROBLEMS, SEEDS, _stack

from sktransfer import DANNClassifier

SOURCE_ONLY = {
    "source only (64, 64)": dict(hidden_layer_sizes=(64, 64)),
    "source only (16, 16)": dict(hidden_layer_sizes=(16, 16)),
}
VARIANTS = {
    "DANN defaults": {},
    "domain_weight=0.3": dict(domain_weight=0.3),
    "domain_weight=3": dict(domain_weight=3.0),
    "lr=3e-4": dict(lr=3e-4),
    "lr=3e-3": dict(lr=3e-3),
    "anneal_lr=True": dict(anneal_lr=True),
    "max_iter=300": dict(max_iter=300),
    "batch_size=128": dict(batch_size=128),
    "domain (100,)": dict(domain_hidden_layer_sizes=(100,)),
    "domain (256, 256)": dict(domain_hidden_layer_sizes=(256, 256)),
    "activation=tanh": dict(activation="tanh"),
    "tanh, domain_weight=3": dict(activation="tanh", domain_weight=3.0),
    "standardize_per_domain": dict(standardize_per_domain=True),
}


def run(job):
    method, problem, seed = job
    torch.set_num_threads(1)
    Xs, ys, Xt, yt = PROBLEMS[problem](seed)
    half = len(Xt) // 2
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method in SOURCE_ONLY:
            est = DANNClassifier(
                domain_weight=0, random_state=seed, **SOURCE_ONLY[method]
            ).fit(Xs, ys)
        else:
            X, y, domain = _stack(Xs, ys, Xt[:half])
            est = DANNClassifier(
                hidden_layer_sizes=HIDDEN, random_state=seed, **VARIANTS[method]
            ).fit(X, y, sample_domain=domain)
    accuracy = float(np.mean(est.predict(Xt[half:]) == yt[half:]))
    return method, problem, seed, accuracy, time.perf_counter() - start


def main():
    methods = [*SOURCE_ONLY, *VARIANTS]
    jobs = [(m, p, s) for m in methods for p in PROBLEMS for s in SEEDS]
    results = {m: {p: [None] * len(SEEDS) for p in PROBLEMS} for m in methods}
    with Pool(2) as pool:
        for method, problem, seed, accuracy, seconds in pool.imap_unordered(run, jobs):
            results[method][problem][SEEDS.index(seed)] = accuracy
            print(
                f"{method:24s} {problem:32s} seed {seed} {accuracy:.3f} "
                f"({seconds:.1f} s)",
                flush=True,
            )
    short = [p.split(":")[0].replace("moons ", "") for p in PROBLEMS]
    print("\nTarget accuracy, mean over seeds", SEEDS)
    print(f"{'':24s}" + "".join(f"{s[:14]:>15s}" for s in short))
    for method in methods:
        cells = "".join(f"{np.mean(results[method][p]):>15.3f}" for p in PROBLEMS)
        print(f"{method:24s}{cells}")
    (OUT / "defaults.json").write_text(
        json.dumps({"seeds": list(SEEDS), "accuracy": results}, indent=2)
    )


if __name__ == "__main__":
    main()
