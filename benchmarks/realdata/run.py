"""Real-data benchmark: every estimator at its defaults against simple baselines.

Run from the repository root (``pip install -e ".[benchmarks]"`` first)::

    python benchmarks/realdata/run.py                 # every data set
    python benchmarks/realdata/run.py exam leaf       # some of them
    python benchmarks/realdata/run.py --seeds 1       # one training seed
    python benchmarks/realdata/run.py leaf --features # + feature extraction

For each data set (see datasets.py) it splits the tasks 75/25 (seed 0), fits
the baselines and the package's estimators at their defaults (and the
MetaRidge estimators with ``kernel="linear"``, the default before the kernel
head, for comparison) on the training tasks (``--seeds`` training seeds each),
adapts them to K labelled rows of every held-out task (K = 5, 10, 20; 3 draws
per task) or to N-way K-shot episodes of held-out classes, and scores the rest
of each task. It prints a table per data set, with each estimator's paired 95%
interval over tasks against the best baseline at every K, and writes
``benchmarks/results/realdata/<name>.json`` and ``<name>.png``. One torch
thread per process. ``--features`` adds the feature-extraction recipes of the
episodic data (a fitted network's ``transform``, then a plain classifier
fitted on each support set) and writes ``<name>_features.json`` and ``.png``.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))

from datasets import LOADERS  # noqa: E402
from mixed import MixedModelRegressor  # noqa: E402
from protocol import (  # noqa: E402
    accuracy,
    class_episodes,
    paired_ci,
    per_unit,
    rmse,
    score_episodes,
    split_tasks,
    task_episodes,
)

from sktransfer import (  # noqa: E402
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaRidgeClassifier,
    MetaRidgeRegressor,
    PooledClassifier,
    PooledRegressor,
    ProtoNetClassifier,
    SupportSetClassifier,
    SupportSetRegressor,
)

RESULTS = Path(__file__).parents[1] / "results" / "realdata"
SPLIT_SEED = 0
KS = {"regression": (5, 10, 20), "shared": (5, 10, 20), "episodic": (1, 5)}
REPEATS = 3
N_WAY = 5
N_EPISODES = 100
# Held-out classes of the episodic data (leaf species): 12 of 32.
N_TEST_CLASSES = 12
# The column of a random slope in the mixed model, where one is classic.
SLOPES = {
    "exam": "standLRT",
    "chem97": "gcsescore",
    "gapminder": "year",
    "txhousing": "date",
}


def baselines(data):
    """The simple baselines a practitioner already has, by name."""
    hgb_r = HistGradientBoostingRegressor(random_state=0)
    hgb_c = HistGradientBoostingClassifier(random_state=0)
    if data.kind == "regression":
        out = {
            "support-set Ridge": SupportSetRegressor(),
            "pooled Ridge": PooledRegressor(offset=None),
            "pooled Ridge + EB offset": PooledRegressor(),
            "pooled boosting": PooledRegressor(hgb_r, offset=None),
            "pooled boosting + EB offset": PooledRegressor(hgb_r),
        }
        if data.name in SLOPES:
            column = list(data.X.columns).index(SLOPES[data.name])
            out["mixed model (intercept + slope)"] = MixedModelRegressor(slope=column)
        out["mixed model (intercept)"] = MixedModelRegressor()
        return out
    if data.kind == "shared":
        return {
            "support-set logistic": SupportSetClassifier(),
            "pooled logistic": PooledClassifier(offset=None),
            "pooled logistic + EB offset": PooledClassifier(),
            "pooled boosting": PooledClassifier(hgb_c, offset=None),
            "pooled boosting + EB offset": PooledClassifier(hgb_c),
        }
    return {
        "nearest centroid": SupportSetClassifier(
            make_pipeline(StandardScaler(), NearestCentroid())
        ),
        "support-set logistic": SupportSetClassifier(),
    }


def estimators(data, seed):
    """The package's estimators at their defaults, and the linear MetaRidge heads."""
    if data.kind == "regression":
        return {
            "MetaRidgeRegressor": MetaRidgeRegressor(random_state=seed),
            "MetaRidgeRegressor(kernel='linear')": MetaRidgeRegressor(
                kernel="linear", random_state=seed
            ),
            "MAMLRegressor": MAMLRegressor(random_state=seed),
            "FineTuneRegressor": FineTuneRegressor(random_state=seed),
        }
    if data.kind == "shared":
        hgb = HistGradientBoostingClassifier(random_state=0)
        return {
            "MetaRidgeClassifier": MetaRidgeClassifier(random_state=seed),
            "MetaRidgeClassifier(kernel='linear')": MetaRidgeClassifier(
                kernel="linear", random_state=seed
            ),
            "MetaRidgeClassifier(base_estimator=boosting)": MetaRidgeClassifier(
                base_estimator=hgb, random_state=seed
            ),
            "ProtoNetClassifier": ProtoNetClassifier(random_state=seed),
            "MAMLClassifier": MAMLClassifier(random_state=seed),
            "FineTuneClassifier": FineTuneClassifier(random_state=seed),
        }
    return {
        "MetaRidgeClassifier": MetaRidgeClassifier(n_way=N_WAY, random_state=seed),
        "MetaRidgeClassifier(kernel='linear')": MetaRidgeClassifier(
            n_way=N_WAY, kernel="linear", random_state=seed
        ),
        "ProtoNetClassifier": ProtoNetClassifier(n_way=N_WAY, random_state=seed),
        "MAMLClassifier": MAMLClassifier(n_way=N_WAY, random_state=seed),
    }


class EmbeddingRecipe(BaseEstimator):
    """Feature extraction: a network fitted on the training classes, frozen,
    and a plain classifier fitted on each support set's ``transform``.

    This is the user's recipe, behind the benchmark's ``fit`` / ``adapt`` /
    ``predict`` protocol: ``make_pipeline(FrozenEstimator(network),
    classifier).fit(X_support, y_support)``.
    """

    def __init__(self, network, classifier):
        self.network = network
        self.classifier = classifier

    def fit(self, X, y):
        self.network_ = clone(self.network).fit(X, y)
        return self

    def adapt(self, X, y):
        frozen = FrozenEstimator(self.network_)
        self.model_ = make_pipeline(frozen, clone(self.classifier)).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def embedding_recipes(data, seed):
    """The feature-extraction recipes of the episodic data, by name.

    The embedding of a prototypical network (with nearest centroid it is the
    network's own prediction, a check), and the body of a network trained to
    tell the training classes apart (``FineTuneClassifier`` on the pooled
    training rows), each with nearest centroid and logistic regression.
    """
    if data.kind != "episodic":
        return {}
    networks = {
        "ProtoNet": ProtoNetClassifier(n_way=N_WAY, random_state=seed),
        "FineTune": FineTuneClassifier(random_state=seed),
    }
    classifiers = {
        "nearest centroid": NearestCentroid(),
        "logistic": LogisticRegression(max_iter=1000),
    }
    return {
        f"{net} embedding + {clf}": EmbeddingRecipe(network, classifier)
        for net, network in networks.items()
        for clf, classifier in classifiers.items()
    }


def fit(method, X, y, tasks, kind):
    """Fit on the training rows: tasks by ``task_ids``, classes for episodic."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(method, SupportSetClassifier | SupportSetRegressor):
            pass  # fitted on each support set alone
        elif isinstance(method, MixedModelRegressor):
            method.fit(X, y, tasks)
        elif kind == "episodic":
            method.fit(X, y)
        else:
            method.fit(X, y, task_ids=tasks)
    return time.perf_counter() - start


def run_dataset(name, seeds, only=None, features=False):
    data = LOADERS[name]()
    X = data.X.to_numpy(np.float64)
    y, tasks, kind = data.y, data.tasks, data.kind
    train_labels, test_labels = split_tasks(
        tasks, SPLIT_SEED, n_test=N_TEST_CLASSES if kind == "episodic" else None
    )
    train, test = np.isin(tasks, train_labels), np.isin(tasks, test_labels)
    metric, higher = (rmse, False) if kind == "regression" else (accuracy, True)
    episodes = {
        k: (
            class_episodes(y, test, k, N_WAY, N_EPISODES, SPLIT_SEED)
            if kind == "episodic"
            else task_episodes(tasks, test, k, REPEATS, SPLIT_SEED)
        )
        for k in KS[kind]
    }
    print(
        f"\n== {name}: {data.description}; {len(train_labels)} training and "
        f"{len(test_labels)} held-out tasks, {len(X)} rows, {X.shape[1]} features",
        flush=True,
    )
    results = {}

    def evaluate(label, method, seed):
        fit_s = fit(method, X[train], y[train], tasks[train], kind)
        entry = results.setdefault(label, {"fit_s": [], "adapt_ms": [], "scores": {}})
        entry["fit_s"].append(fit_s)
        adapt = []
        for k, ep in episodes.items():
            scores, seconds = score_episodes(method, X, y, ep, metric)
            entry["scores"].setdefault(str(k), []).append(per_unit(scores, ep.unit))
            adapt.append(seconds * 1e3)
        entry["adapt_ms"].append(float(np.mean(adapt)))
        means = {k: float(np.mean(v[-1])) for k, v in entry["scores"].items()}
        print(f"  {label:<46} seed {seed}: {means}  fit {fit_s:.1f}s", flush=True)

    for label, method in baselines(data).items():
        evaluate(label, method, 0)
    for seed in seeds:
        methods = estimators(data, seed)
        if features:
            methods.update(embedding_recipes(data, seed))
        for label, method in methods.items():
            if only and not any(part in label for part in only):
                continue
            evaluate(label, method, seed)

    summary = summarise(results, set(baselines(data)), higher)
    payload = {
        "dataset": name,
        "file": f"{name}_features" if features else name,
        "description": data.description,
        "kind": kind,
        "metric": "rmse" if kind == "regression" else "accuracy",
        "n_train_tasks": int(len(train_labels)),
        "n_test_tasks": int(len(test_labels)),
        "seeds": list(seeds),
        "ks": list(KS[kind]),
        "summary": summary,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{payload['file']}.json").write_text(json.dumps(payload, indent=1))
    print_table(payload)
    plot(payload)
    return payload


def summarise(results, baseline_names, higher):
    """Per method and K: mean, per-seed means, and the paired interval of the
    difference with the best baseline (per-task scores averaged over seeds)."""
    summary = {}
    ks = list(next(iter(results.values()))["scores"])
    best = {}
    for k in ks:
        means = {
            name: float(np.mean(results[name]["scores"][k])) for name in baseline_names
        }
        best[k] = (max if higher else min)(means, key=means.get)
    for name, entry in results.items():
        row = {
            "baseline": name in baseline_names,
            "fit_s": float(np.mean(entry["fit_s"])),
            "adapt_ms": float(np.mean(entry["adapt_ms"])),
            "by_k": {},
        }
        for k in ks:
            per_task = np.mean(entry["scores"][k], axis=0)
            reference = np.mean(results[best[k]]["scores"][k], axis=0)
            diff, ci = paired_ci(per_task, reference)
            row["by_k"][k] = {
                "mean": float(per_task.mean()),
                "per_seed": [float(np.mean(s)) for s in entry["scores"][k]],
                "best_baseline": best[k],
                "diff": diff,
                "ci95": ci,
                "relative": diff / float(reference.mean()),
            }
        summary[name] = row
    return summary


def print_table(payload):
    ks = [str(k) for k in payload["ks"]]
    print(f"\n{payload['dataset']} ({payload['metric']}), mean over held-out tasks")
    header = f"{'method':<46}" + "".join(f"{'K=' + k:>28}" for k in ks)
    print(header + f"{'fit s':>8}{'adapt ms':>10}")
    for name, row in payload["summary"].items():
        cells = []
        for k in ks:
            cell = row["by_k"][k]
            text = f"{cell['mean']:.4f}"
            if not row["baseline"]:
                low, high = cell["ci95"]
                text += f" ({cell['diff']:+.4f} [{low:+.4f},{high:+.4f}])"
            cells.append(f"{text:>28}")
        print(
            f"{name:<46}"
            + "".join(cells)
            + f"{row['fit_s']:>8.1f}{row['adapt_ms']:>10.2f}"
        )
    best = {
        k: payload["summary"][next(iter(payload["summary"]))]["by_k"][k][
            "best_baseline"
        ]
        for k in ks
    }
    print("best baseline per K:", best)


def plot(payload):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = payload["ks"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in payload["summary"].items():
        means = [row["by_k"][str(k)]["mean"] for k in ks]
        style = "--" if row["baseline"] else "-"
        ax.plot(
            ks,
            means,
            style,
            marker="o",
            label=name,
            alpha=0.6 if row["baseline"] else 1,
        )
    ax.set(
        xlabel="labelled rows K"
        + (" per class" if payload["kind"] == "episodic" else ""),
        ylabel=payload["metric"] + " on held-out tasks",
        title=f"{payload['dataset']}: {payload['description']}",
        xticks=ks,
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{payload.get('file', payload['dataset'])}.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(LOADERS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="estimators whose name contains")
    parser.add_argument(
        "--features",
        action="store_true",
        help="add the feature-extraction recipes; write <name>_features.json",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.datasets:
        run_dataset(name, list(range(args.seeds)), args.only, args.features)


if __name__ == "__main__":
    main()
