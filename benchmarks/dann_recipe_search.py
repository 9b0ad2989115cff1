"""Search over DANN training recipes, beyond the estimator's parameters.

A compact re-implementation of `DANNClassifier`'s training loop (the same
``MLP``, cross-entropy on source rows, domain loss averaged over the two
domains, gradient reversal with Ganin et al.'s schedule), with knobs the
estimator does not expose: SGD with momentum 0.9, a learning rate of the
domain classifier's own, batches half source and half target, the schedule's
``gamma``, a bottleneck layer, the statistics of the input standardisation
(``pooled`` over source and target rows, ``source`` rows only, or
``per-domain``), and a conditional-entropy term on the target rows (as in
VADA, Shu et al. 2018). Exploration only: recipes that win here have to be
confirmed through the estimator (``bench_dann_defaults.py``).

Each recipe runs on the problems of ``bench_dann.py`` with its seeds; one
JSON line per recipe is written to ``benchmarks/results/dann/recipes.jsonl``
(mean and per-seed target accuracy). Run:
``python benchmarks/dann_recipe_search.py`` (about 20 minutes on two cores).
"""

import json
import math
from multiprocessing import Pool

import numpy as np
import torch
from bench_dann import OUT, PROBLEMS, SEEDS
from torch import nn

from sktransfer.domain_adaptation._gradient_reversal import reverse_gradient
from sktransfer.nn import MLP

DEFAULTS = dict(
    hidden=(64, 64),
    domain_hidden=(64, 64),
    activation="relu",
    optimizer="adam",
    lr=1e-3,
    domain_lr_factor=1.0,
    anneal=False,
    epochs=100,
    batch=64,
    balanced=False,
    weight=1.0,
    gamma=10.0,
    statistics="pooled",
    bottleneck=None,
    entropy=0.0,
    source_only=False,
)
SGD = dict(optimizer="sgd", lr=0.01, balanced=True, domain_hidden=(100,))
RECIPES = {
    "source only (64, 64)": dict(source_only=True),
    "source only (16, 16)": dict(source_only=True, hidden=(16, 16)),
    "defaults (Adam 1e-3, 100 epochs)": {},
    "per-domain statistics": dict(statistics="per-domain"),
    "source statistics": dict(statistics="source"),
    "300 epochs": dict(epochs=300),
    "balanced batches, 300 epochs": dict(balanced=True, epochs=300),
    "weight 0.3": dict(weight=0.3),
    "weight 3": dict(weight=3.0),
    "domain (100,)": dict(domain_hidden=(100,)),
    "domain (100, 100), lr x10": dict(domain_hidden=(100, 100), domain_lr_factor=10),
    "tanh": dict(activation="tanh"),
    "tanh, weight 3": dict(activation="tanh", weight=3.0),
    "bottleneck 16": dict(bottleneck=16),
    "entropy 0.3": dict(entropy=0.3),
    "SGD 0.01 annealed, 100 epochs": dict(SGD, anneal=True),
    "SGD 0.01 annealed, 300 epochs": dict(SGD, anneal=True, epochs=300),
    "SGD 0.05 annealed, 300 epochs": dict(SGD, anneal=True, lr=0.05, epochs=300),
    "SGD 0.01, 100 epochs": dict(SGD),
    "SGD 0.03, 100 epochs": dict(SGD, lr=0.03),
    "SGD 0.01, 300 epochs": dict(SGD, epochs=300),
    "SGD 0.01, 300 epochs, weight 0.5": dict(SGD, epochs=300, weight=0.5),
    "SGD 0.01, 300 epochs, domain lr x10": dict(SGD, epochs=300, domain_lr_factor=10),
    "Ganin toy: (15,), linear domain, SGD 0.05, weight 6": dict(
        SGD, hidden=(15,), domain_hidden=(), lr=0.05, weight=6.0, epochs=300
    ),
}


def _statistics(a):
    mean, scale = a.mean(0), a.std(0)
    return mean, np.where(scale > 0, scale, 1.0)


def fit_predict(Xs, ys, Xt_train, Xt_test, seed, **params):
    """Train one recipe; the predicted labels of ``Xt_test``."""
    p = {**DEFAULTS, **params}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if p["source_only"] or p["statistics"] == "source":
        source_stats = target_stats = _statistics(Xs)
    elif p["statistics"] == "per-domain":
        source_stats, target_stats = _statistics(Xs), _statistics(Xt_train)
    else:
        source_stats = target_stats = _statistics(np.vstack([Xs, Xt_train]))

    def tensor(X, stats):
        return torch.tensor((X - stats[0]) / stats[1], dtype=torch.float32)

    xs, xt = tensor(Xs, source_stats), tensor(Xt_train, target_stats)
    ys = torch.as_tensor(ys, dtype=torch.long)
    hidden = tuple(p["hidden"]) + ((p["bottleneck"],) if p["bottleneck"] else ())
    net = MLP(xs.shape[1], int(ys.max()) + 1, hidden, p["activation"])
    features, head = net[:-1], net[-1]
    domain = MLP(head.in_features, 1, tuple(p["domain_hidden"]), p["activation"])
    groups = [
        {"params": list(net.parameters()), "lr": p["lr"]},
        {"params": list(domain.parameters()), "lr": p["lr"] * p["domain_lr_factor"]},
    ]
    if p["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(groups, lr=p["lr"], momentum=0.9)
    else:
        optimizer = torch.optim.Adam(groups, lr=p["lr"])
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    ns, nt = len(xs), 0 if p["source_only"] else len(xt)
    half = p["batch"] // 2
    steps_per_epoch = (
        math.ceil(max(ns, nt) / half)
        if p["balanced"] and nt
        else math.ceil((ns + nt) / p["batch"])
    )
    total = p["epochs"] * steps_per_epoch
    for step in range(total):
        if step % steps_per_epoch == 0:
            perm = torch.randperm(ns + nt, generator=gen)
            perm_s = torch.randperm(ns, generator=gen)
            perm_t = torch.randperm(max(nt, 1), generator=gen)
        i = step % steps_per_epoch
        if p["balanced"] and nt:
            si = perm_s[torch.arange(i * half, (i + 1) * half) % ns]
            ti = perm_t[torch.arange(i * half, (i + 1) * half) % nt]
        else:
            rows = perm[i * p["batch"] : (i + 1) * p["batch"]]
            si, ti = rows[rows < ns], rows[rows >= ns] - ns
        progress = step / max(total - 1, 1)
        ramp = 2.0 / (1.0 + math.exp(-p["gamma"] * progress)) - 1.0
        if p["anneal"]:
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr / (1.0 + 10.0 * progress) ** 0.75
        zs = features(xs[si])
        loss = nn.functional.cross_entropy(head(zs), ys[si]) if len(si) else 0.0
        if len(si) and len(ti):
            zt = features(xt[ti])
            logits = domain(reverse_gradient(torch.cat([zs, zt]), p["weight"] * ramp))
            logits = logits.squeeze(1)
            bce = nn.functional.binary_cross_entropy_with_logits
            ds, dt = logits[: len(si)], logits[len(si) :]
            loss = loss + 0.5 * (
                bce(ds, torch.zeros_like(ds)) + bce(dt, torch.ones_like(dt))
            )
            if p["entropy"]:
                log_p = torch.log_softmax(head(zt), 1)
                entropy = -(log_p.exp() * log_p).sum(1).mean()
                loss = loss + p["entropy"] * ramp * entropy
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return net(tensor(Xt_test, target_stats)).argmax(1).numpy()


def run(job):
    recipe, problem, seed = job
    torch.set_num_threads(1)
    Xs, ys, Xt, yt = PROBLEMS[problem](seed)
    half = len(Xt) // 2
    y_pred = fit_predict(
        np.asarray(Xs, float),
        np.asarray(ys),
        np.asarray(Xt[:half], float),
        np.asarray(Xt[half:], float),
        seed,
        **RECIPES[recipe],
    )
    return recipe, problem, seed, float(np.mean(y_pred == yt[half:]))


def main():
    jobs = [(r, p, s) for r in RECIPES for p in PROBLEMS for s in SEEDS]
    results = {r: {p: {} for p in PROBLEMS} for r in RECIPES}
    with Pool(2) as pool:
        for recipe, problem, seed, accuracy in pool.imap_unordered(run, jobs):
            results[recipe][problem][seed] = accuracy
    short = [p.split(":")[0].replace("moons ", "") for p in PROBLEMS]
    print(f"{'':52s}" + "".join(f"{s[:14]:>15s}" for s in short))
    with open(OUT / "recipes.jsonl", "w") as out:
        for recipe, by_problem in results.items():
            means = {p: float(np.mean(list(v.values()))) for p, v in by_problem.items()}
            print(f"{recipe:52s}" + "".join(f"{m:>15.3f}" for m in means.values()))
            out.write(
                json.dumps(
                    {
                        "recipe": recipe,
                        "params": {**DEFAULTS, **RECIPES[recipe]},
                        "mean": means,
                        "per_seed": by_problem,
                    }
                )
                + "\n"
            )


if __name__ == "__main__":
    main()
