"""Device check for a machine with a GPU: fit, adapt, predict, pickling, sync.

Prepared for a session that has a GPU (``--device cpu`` is a dry run here):
``python benchmarks/check_cuda.py && python benchmarks/bench_maml_sinusoid.py
--device cuda && python benchmarks/bench_few_shot_eval.py --device cuda``.
It asserts what must hold and prints what it measured.
"""

import argparse
import pickle
import time

import numpy as np
import torch

from sktransfer import FineTuneClassifier, MAMLClassifier, MAMLRegressor, TaskSet
from sktransfer.datasets import make_related_classification_tasks, make_sinusoid_tasks
from sktransfer.meta._inner_loop import batched_forward, meta_loss
from sktransfer.tasks._sampling import sample_episodes


def one_meta_step(est, X, y, t, device):
    """The meta-training step of `MetaTrainer.train_step`, on its own."""
    net = est.net_
    tasks = TaskSet.from_arrays(X, y, t)
    pool = est._pool(
        tasks,
        np.ones(len(X), dtype=bool),
        y.reshape(-1, 1),
        np.zeros(len(X), dtype=np.int64),
        1,
        device,
    )
    generator = torch.Generator(device=device).manual_seed(0)
    support, query = sample_episodes(pool, 25, 10, 10, generator=generator)
    meta = net.module_
    loss = meta_loss(
        batched_forward(meta.net),
        net.criterion_,
        dict(meta.net.named_parameters()),
        support,
        query,
        **meta.inner_update(),
        n_steps=1,
        adapt_names=meta.adapt_names,
        first_order=False,
    )
    loss.backward()
    net.optimizer_.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    device = torch.device(parser.parse_args().device)
    if device.type == "cuda":
        print(torch.cuda.get_device_name(device))
    X, y, t = make_sinusoid_tasks(n_tasks=500, n_samples=40, random_state=0)
    runs = [
        MAMLRegressor(device=str(device), max_iter=200, random_state=0).fit(
            X, y, task_ids=t
        )
        for _ in range(2)
    ]
    first, second = (r.adapt(X[:10], y[:10]).predict(X) for r in runs)
    assert np.array_equal(first, second), "same random_state: bit-identical"
    assert next(runs[0].module_.parameters()).device.type == device.type
    restored = pickle.loads(pickle.dumps(runs[0]))
    np.testing.assert_allclose(restored.predict(X), first, rtol=1e-6, atol=1e-6)

    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")  # any host sync raises
    try:
        one_meta_step(runs[0], X, y, t, device)
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    if device.type == "cuda":
        print("one meta-training step ran without host synchronisation")
    else:
        print("one meta-training step ran (the sync check needs CUDA)")

    Xc, yc, tc = make_related_classification_tasks(n_tasks=50, random_state=0)
    for cls in (MAMLClassifier, FineTuneClassifier):
        start = time.perf_counter()
        clf = cls(device=str(device), max_iter=100, random_state=0)
        clf.fit(Xc, yc, task_ids=tc).adapt(Xc[tc == 0][:10], yc[tc == 0][:10])
        acc = clf.score(Xc[tc == 0][10:], yc[tc == 0][10:])
        took = time.perf_counter() - start
        print(f"{cls.__name__}: fit and adapt {took:.1f} s, accuracy {acc:.3f}")
        pickle.loads(pickle.dumps(clf)).predict(Xc[:5])
    print("OK")


if __name__ == "__main__":
    main()
