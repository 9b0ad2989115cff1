"""Few-shot evaluation speed: batched `few_shot_score` vs a Python adapt loop.

For `MAMLClassifier` (``make_related_classification_tasks``: 60 rows and 10
features per task, 5 shots per class, 5 adaptation steps) and `MAMLRegressor`
(``make_sinusoid_tasks``: 30 rows per task, 10 shots, 1 adaptation step), both
with the default MLP (40, 40) meta-trained briefly, this times the evaluation
of ``--n-tasks`` new tasks two ways:

- batched: ``few_shot_score(est, tasks, k_shot=k, random_state=0)``, which
  adapts and predicts all episodes in vectorised passes;
- loop: the very same episodes (``draw_episodes`` with the same seed), each
  scored by ``est.adapt(X_support, y_support).predict(X_query)`` in a Python
  loop, with accuracy or R² per episode.

Both timings include drawing the episodes and scoring them. Repeats are
interleaved (batched, loop, loop, batched ...) after one warm-up of each, and
the medians compared. The two mean scores must agree (R²: allclose 1e-6;
accuracy: within 0.002). Target: batched at least 20x faster than the loop
on the CPU (printed as PASS/MISS only). Results go to
``benchmarks/results/few_shot_eval.json`` and ``few_shot_eval.png``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_few_shot_eval.py
    python benchmarks/bench_few_shot_eval.py --quick    # smoke run

The script exits with status 0 whatever the result.
"""

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.base import is_classifier  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

import sktransfer  # noqa: E402
from sktransfer import MAMLClassifier, MAMLRegressor, few_shot_score  # noqa: E402
from sktransfer.datasets import (  # noqa: E402
    make_related_classification_tasks,
    make_sinusoid_tasks,
)
from sktransfer.model_selection._few_shot import draw_episodes  # noqa: E402
from sktransfer.tasks import TaskSet  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 20.0


def _cases(args):
    """(name, estimator, train tasks, eval tasks, k_shot, tolerance)."""
    clf_kw = {"n_samples": 60, "n_features": 10}
    reg_kw = {"n_samples": 30}
    return [
        (
            "MAMLClassifier",
            MAMLClassifier(
                n_adapt_steps=5,
                k_shot=5,
                max_iter=args.max_iter,
                device=args.device,
                random_state=0,
            ),
            make_related_classification_tasks(
                n_tasks=args.n_train_tasks, random_state=0, **clf_kw
            ),
            make_related_classification_tasks(
                n_tasks=args.n_tasks, random_state=1, **clf_kw
            ),
            5,
            0.002,
        ),
        (
            "MAMLRegressor",
            MAMLRegressor(
                n_adapt_steps=1,
                k_shot=10,
                max_iter=args.max_iter,
                device=args.device,
                random_state=0,
            ),
            make_sinusoid_tasks(n_tasks=args.n_train_tasks, random_state=0, **reg_kw),
            make_sinusoid_tasks(n_tasks=args.n_tasks, random_state=1, **reg_kw),
            10,
            1e-6,
        ),
    ]


def _batched(est, tasks, k_shot):
    start = time.perf_counter()
    mean = few_shot_score(est, tasks, k_shot=k_shot, random_state=0).mean
    return time.perf_counter() - start, mean


def _loop(est, tasks, k_shot):
    """The same episodes as `few_shot_score`, adapted one by one."""
    classifier = is_classifier(est)
    metric = accuracy_score if classifier else r2_score
    start = time.perf_counter()
    (episode,) = draw_episodes(
        tasks,
        k_shot=k_shot,
        n_query=None,
        n_episodes=1,
        per_class=classifier,
        random_state=0,
    )
    X, y = tasks.X, tasks.y
    scores = [
        metric(y[query], est.adapt(X[support], y[support]).predict(X[query]))
        for support, query in episode
    ]
    return time.perf_counter() - start, float(np.mean(scores))


def _run_case(name, est, train, evaluation, k_shot, tol, args):
    fit_start = time.perf_counter()
    est.fit(*train[:2], task_ids=train[2])
    fit_s = time.perf_counter() - fit_start
    tasks = TaskSet.from_arrays(*evaluation)
    looped = copy.deepcopy(est)  # adapt() sets adapted_params_; keep est clean
    runs = {"batched": lambda: _batched(est, tasks, k_shot)}
    runs["loop"] = lambda: _loop(looped, tasks, k_shot)
    # Warm-up (kernels, allocator, lazy imports), untimed.
    small = TaskSet.from_arrays(
        *(a[np.isin(evaluation[2], range(10))] for a in evaluation)
    )
    few_shot_score(est, small, k_shot=k_shot, random_state=0)
    _loop(looped, small, k_shot)

    times = {"batched": [], "loop": []}
    means = {"batched": [], "loop": []}
    for r in range(args.repeats):
        order = ["batched", "loop"] if r % 2 == 0 else ["loop", "batched"]
        for path in order:
            seconds, mean = runs[path]()
            times[path].append(seconds)
            means[path].append(mean)
    medians = {p: statistics.median(t) for p, t in times.items()}
    ratio = medians["loop"] / medians["batched"]
    diff = abs(means["batched"][0] - means["loop"][0])
    if tol < 1e-3:
        agree = bool(np.allclose(means["batched"][0], means["loop"][0], atol=tol))
    else:
        agree = diff <= tol
    return {
        "n_tasks": tasks.n_tasks,
        "rows_per_task": int(len(tasks.y) // tasks.n_tasks),
        "k_shot": k_shot,
        "n_adapt_steps": est.n_adapt_steps,
        "max_iter": est.max_iter,
        "fit_s": fit_s,
        "times_s": times,
        "median_s": medians,
        "min_s": {p: min(t) for p, t in times.items()},
        "max_s": {p: max(t) for p, t in times.items()},
        "mean_score": {p: m[0] for p, m in means.items()},
        "scores_stable_across_repeats": all(len(set(m)) == 1 for m in means.values()),
        "score_abs_diff": diff,
        "score_tolerance": tol,
        "scores_agree": agree,
        "speedup": ratio,
        "verdict": "PASS" if ratio >= TARGET else "MISS",
    }


def _plot(results, path):
    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    x = np.arange(len(names))
    for offset, p, color in ((-width / 2, "loop", "C1"), (width / 2, "batched", "C0")):
        med = [results[n]["median_s"][p] for n in names]
        lo = [med[i] - results[n]["min_s"][p] for i, n in enumerate(names)]
        hi = [results[n]["max_s"][p] - med[i] for i, n in enumerate(names)]
        bars = ax.bar(x + offset, med, width, yerr=[lo, hi], capsize=4, color=color)
        bars.set_label(
            "Python loop of adapt/predict" if p == "loop" else "few_shot_score"
        )
    for i, n in enumerate(names):
        top = results[n]["max_s"]["loop"]
        ax.annotate(
            f"{results[n]['speedup']:.1f}x",
            (x[i], top),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
        )
    ax.set_ylim(0, 1.15 * max(r["max_s"]["loop"] for r in results.values()))
    ax.set_xticks(x, [f"{n}\n({results[n]['n_tasks']} tasks)" for n in names])
    ax.set_ylabel("seconds (median, min-max)")
    ax.set_title("Few-shot evaluation time, CPU single thread")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    args.max_iter, args.n_train_tasks = 100, 200
    if args.quick:
        args.n_tasks, args.repeats, args.max_iter, args.n_train_tasks = 50, 1, 5, 20
    torch.set_num_threads(args.threads)

    results = {}
    for name, est, train, evaluation, k_shot, tol in _cases(args):
        res = _run_case(name, est, train, evaluation, k_shot, tol, args)
        results[name] = res
        print(
            f"{name}: {res['n_tasks']} tasks x {res['rows_per_task']} rows, "
            f"k_shot={k_shot}, n_adapt_steps={res['n_adapt_steps']}, MLP (40, 40), "
            f"max_iter={res['max_iter']}, device {args.device}, "
            f"{args.threads} thread(s), {args.repeats} repeats"
        )
        print(f"  {'path':<10}{'median s':>10}{'min s':>10}{'max s':>10}")
        for p in ("batched", "loop"):
            print(
                f"  {p:<10}{res['median_s'][p]:>10.3f}{res['min_s'][p]:>10.3f}"
                f"{res['max_s'][p]:>10.3f}"
            )
        print(
            f"  speedup (median loop / median batched): {res['speedup']:.1f}x "
            f"(target >= {TARGET:.0f}x: {res['verdict']})"
        )
        print(
            f"  mean score batched {res['mean_score']['batched']:.6f}, loop "
            f"{res['mean_score']['loop']:.6f}, |diff| {res['score_abs_diff']:.2e} "
            f"(tolerance {tol:g}: {'OK' if res['scores_agree'] else 'MISMATCH'})"
        )

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "few_shot_eval.json"
    out.write_text(
        json.dumps(
            {
                "settings": vars(args),
                "target_speedup": TARGET,
                "results": results,
                "versions": {
                    "sktransfer": sktransfer.__version__,
                    "torch": torch.__version__,
                    "numpy": np.__version__,
                    "python": platform.python_version(),
                },
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    png = RESULTS / "few_shot_eval.png"
    _plot(results, png)
    print(f"saved {out} and {png}")


if __name__ == "__main__":
    main()
