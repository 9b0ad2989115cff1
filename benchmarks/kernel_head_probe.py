"""Probe: a meta-learned kernel ridge head for new classes, beyond the package.

Exploration only (issue 7's leaf and digits criteria), like
``dann_recipe_search.py``: a compact head the package does not have yet, to
measure before building it. Per episode, kernel ridge regression on the
centred one-hot labels of the support rows, solved in closed form, gives the
query logits ``alpha * k(X_q, X_s) (K + noise I)^-1 (Y - 1/n_way)``, with the
kernel::

    k(x, x') = s_lin <x / l_lin, x' / l_lin> + 1
               + s_rbf exp(-|(x - x') / l|^2 / 2)

Every scale, lengthscale, the noise and ``alpha`` are meta-learned with Adam
(lr 1e-2) on the query cross-entropy of 5-way training episodes, 8 episodes
a step, 1 to 5 support rows per class and 5 query rows. ``--kernel``:

- ``linear``: the linear part alone, per-feature ``l_lin`` (what
  `MetaRidgeClassifier`'s linear kind does in the episodic space);
- ``ard``: linear plus RBF, per-feature lengthscales;
- ``isotropic``: linear plus RBF, one lengthscale each.

Data: leaf species (split 0 of ``realdata/run.py``, 12 held-out species,
features standardised with the training species' statistics and clipped at
10) or digits (meta-trained on 0-4, scored on 5-9, pixels / 16 centred on the
mean of 0-4, as ``tests/meta/test_learning.py``). Scored on 100 five-way
episodes of the held-out classes (``realdata/protocol.class_episodes``,
seed 0) at 1 and 5 shots (digits: 5), mean over held-out classes, beside
nearest centroid on the same features and episodes. Writes
``benchmarks/results/kernel_head_probe.json``. Run:
``python benchmarks/kernel_head_probe.py`` (about 2 minutes on one core).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestCentroid

sys.path.insert(0, str(Path(__file__).parent / "realdata"))
from datasets import LOADERS  # noqa: E402
from protocol import class_episodes, per_unit, split_tasks  # noqa: E402

OUT = Path(__file__).parent / "results" / "kernel_head_probe.json"
SEEDS = (0, 1, 2)
N_WAY, N_QUERY, MAX_SHOT, BATCH = 5, 5, 5, 8
STEPS = 1000


def load(name):
    """Rows (float64), labels, training mask and held-out mask."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        train = y < 5
        return X - X[train].mean(0), y, train, ~train
    data = LOADERS["leaf"]()
    X = data.X.to_numpy(np.float64)
    train_labels, test_labels = split_tasks(data.tasks, 0, n_test=12)
    train = np.isin(data.tasks, train_labels)
    test = np.isin(data.tasks, test_labels)
    scale = X[train].std(0)
    scale[scale == 0] = 1.0
    return np.clip((X - X[train].mean(0)) / scale, -10, 10), data.y, train, test


class KernelHead(torch.nn.Module):
    def __init__(self, n_features, kernel):
        super().__init__()
        width = 1 if kernel == "isotropic" else n_features
        log_sqrt_d = float(np.log(np.sqrt(n_features)))
        self.log_l = torch.nn.Parameter(torch.full((width,), log_sqrt_d))
        self.log_l_lin = torch.nn.Parameter(torch.full((width,), -log_sqrt_d))
        self.log_s_lin = torch.nn.Parameter(torch.tensor(0.0))
        self.log_noise = torch.nn.Parameter(torch.tensor(0.0))
        self.log_alpha = torch.nn.Parameter(torch.tensor(float(np.log(5.0))))
        self.rbf = kernel != "linear"
        self.log_s_rbf = torch.nn.Parameter(torch.tensor(0.0), requires_grad=self.rbf)
        self.double()

    def kernel(self, A, B):
        a, b = A * self.log_l_lin.exp(), B * self.log_l_lin.exp()
        out = self.log_s_lin.exp() * a @ b.T + 1.0
        if self.rbf:
            a, b = A / self.log_l.exp(), B / self.log_l.exp()
            d2 = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)
            out = out + self.log_s_rbf.exp() * torch.exp(-0.5 * d2.clamp_min(0))
        return out

    def forward(self, X_s, Y_s, X_q):
        K = self.kernel(X_s, X_s)
        K = K + self.log_noise.exp() * torch.eye(len(X_s), dtype=K.dtype)
        dual = torch.linalg.solve(K, Y_s - 1.0 / Y_s.shape[1])
        return self.log_alpha.exp() * self.kernel(X_q, X_s) @ dual


def episode(rows_of, rng):
    """A training episode: support and query row indices, their labels."""
    classes = rng.choice(len(rows_of), N_WAY, replace=False)
    k = rng.integers(1, MAX_SHOT + 1)
    support, query, y_s, y_q = [], [], [], []
    for j, c in enumerate(classes):
        rows = rng.permutation(rows_of[c])
        support += list(rows[:k])
        query += list(rows[k : k + N_QUERY])
        y_s += [j] * k
        y_q += [j] * N_QUERY
    return support, query, torch.tensor(y_s), torch.tensor(y_q)


def score(head, X, y, episodes):
    accuracy = []
    with torch.no_grad():
        for s, q in zip(episodes.support, episodes.query, strict=True):
            labels = np.unique(y[s])
            Y = torch.as_tensor((y[s][:, None] == labels).astype(np.float64))
            logits = head(X[s], Y, X[q])
            accuracy.append(np.mean(labels[logits.argmax(1).numpy()] == y[q]))
    return float(np.mean(per_unit(np.array(accuracy), episodes.unit)))


def nearest_centroid(data):
    """Nearest centroid on the same features and episodes, for scale."""
    X, y, _, test = load(data)
    out = {}
    for k in (5,) if data == "digits" else (1, 5):
        episodes = class_episodes(y, test, k, N_WAY, 100, 0)
        accuracy = [
            np.mean(NearestCentroid().fit(X[s], y[s]).predict(X[q]) == y[q])
            for s, q in zip(episodes.support, episodes.query, strict=True)
        ]
        out[k] = round(float(np.mean(per_unit(np.array(accuracy), episodes.unit))), 4)
    return out


def run(data, kernel, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X, y, train, test = load(data)
    shots = (5,) if data == "digits" else (1, 5)
    episodes = {k: class_episodes(y, test, k, N_WAY, 100, 0) for k in shots}
    rows_of = [np.flatnonzero(train & (y == c)) for c in np.unique(y[train])]
    X = torch.as_tensor(X)
    head = KernelHead(X.shape[1], kernel)
    trained = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=1e-2)
    curve = {0: {k: score(head, X, y, e) for k, e in episodes.items()}}
    start = time.perf_counter()
    for step in range(1, STEPS + 1):
        loss = 0.0
        for _ in range(BATCH):
            s, q, y_s, y_q = episode(rows_of, rng)
            logits = head(X[s], torch.nn.functional.one_hot(y_s, N_WAY).double(), X[q])
            loss = loss + torch.nn.functional.cross_entropy(logits, y_q)
        optimizer.zero_grad()
        (loss / BATCH).backward()
        optimizer.step()
        if step in (300, 600, STEPS):
            curve[step] = {k: score(head, X, y, e) for k, e in episodes.items()}
    return {"curve": curve, "train_s": time.perf_counter() - start}


def main():
    torch.set_num_threads(1)
    results = []
    for data in ("leaf", "digits"):
        for kernel in ("linear", "ard", "isotropic"):
            for seed in SEEDS:
                out = run(data, kernel, seed)
                results.append({"data": data, "kernel": kernel, "seed": seed, **out})
                final = out["curve"][STEPS]
                print(data, kernel, seed, {k: round(v, 4) for k, v in final.items()},
                      f"{out['train_s']:.0f} s", flush=True)  # fmt: skip
    centroids = {data: nearest_centroid(data) for data in ("leaf", "digits")}
    OUT.write_text(
        json.dumps({"runs": results, "nearest_centroid": centroids}, indent=1)
    )
    print("\nmean over seeds after", STEPS, "steps (accuracy by shots):")
    for data in ("leaf", "digits"):
        for kernel in ("linear", "ard", "isotropic"):
            runs = [r for r in results if r["data"] == data and r["kernel"] == kernel]
            shots = runs[0]["curve"][STEPS]
            means = {k: np.mean([r["curve"][STEPS][k] for r in runs]) for k in shots}
            means = {k: round(float(v), 4) for k, v in means.items()}
            print(f"  {data:7s} {kernel:17s}", means)
        print(f"  {data:7s} nearest centroid ", centroids[data])


if __name__ == "__main__":
    main()
