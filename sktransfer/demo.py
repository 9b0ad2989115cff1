"""Demo: meta-train on many small related tasks, adapt to a new one from a few rows.

Run with ``python -m sktransfer.demo``. Uses generated tasks (nothing is
downloaded): 200 related classification tasks for meta-training and 50 new
tasks for evaluation. For each new task the meta-learned model adapts on
``k_shot`` labelled rows per class and is scored on the task's other rows,
beside the same network trained from scratch on those few rows alone.
"""

import argparse
import time

import numpy as np
import torch

from sktransfer import MAMLClassifier
from sktransfer.datasets import make_related_classification_tasks
from sktransfer.nn import MLP


def train_from_scratch(X, y, n_classes, hidden_layer_sizes, seed, epochs=300):
    """The same network, trained on the support rows alone (full-batch Adam)."""
    torch.manual_seed(seed)
    net = MLP(X.shape[1], n_classes, hidden_layer_sizes)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X_t), y_t).backward()
        opt.step()
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k-shot", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=600)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    X, y, tasks = make_related_classification_tasks(
        n_tasks=250, n_samples=60, random_state=0
    )
    train = tasks < 200
    hidden = (40, 40)
    est = MAMLClassifier(
        hidden_layer_sizes=hidden,
        inner_lr=0.1,
        n_inner_steps=1,
        n_adapt_steps=5,
        k_shot=args.k_shot,
        max_iter=args.max_iter,
        meta_lr=3e-3,
        random_state=0,
        verbose=0 if args.quiet else 1,
    )
    print(f"Meta-training {type(est).__name__} on 200 tasks ...")
    start = time.perf_counter()
    est.fit(X[train], y[train], task_ids=tasks[train])
    print(f"done in {time.perf_counter() - start:.1f} s\n")

    rng = np.random.default_rng(0)
    scores = {"MAML, adapted": [], "MAML, not adapted": [], "from scratch": []}
    for task in range(200, 250):
        Xt, yt = X[tasks == task], y[tasks == task]
        support = np.concatenate(
            [
                rng.choice(np.flatnonzero(yt == c), args.k_shot, replace=False)
                for c in np.unique(yt)
            ]
        )
        query = np.setdiff1d(np.arange(len(yt)), support)
        scores["MAML, not adapted"].append(est.score(Xt[query], yt[query]))
        est.adapt(Xt[support], yt[support])
        scores["MAML, adapted"].append(est.score(Xt[query], yt[query]))
        net = train_from_scratch(
            Xt[support], yt[support], len(est.classes_), hidden, seed=task
        )
        with torch.no_grad():
            pred = net(torch.as_tensor(Xt[query], dtype=torch.float32)).argmax(1)
        scores["from scratch"].append(float((pred.numpy() == yt[query]).mean()))

    print(f"Few-shot accuracy on 50 new tasks ({args.k_shot} labelled rows per class):")
    for name, values in scores.items():
        values = np.asarray(values)
        half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
        print(f"  {name:<18} {values.mean():.3f} +/- {half:.3f}")
    return scores


if __name__ == "__main__":
    main()
