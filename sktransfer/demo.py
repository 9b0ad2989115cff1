"""Demo: learn from many small related tasks, adapt to new ones from a few rows.

Run with ``python -m sktransfer.demo``. It uses generated tasks (nothing is
downloaded, see `~sktransfer.datasets.make_related_regression_tasks`): 200
related regression tasks for meta-training and 50 new tasks for evaluation.
`~sktransfer.MetaRidgeRegressor` meta-learns a feature map and a prior over a
linear head, then adapts to each new task in closed form from K labelled
rows; `~sktransfer.transfer_report` scores it on the task's other rows beside
what a practitioner already has, on the very same rows: a ridge regression of
the support rows alone, a pooled ridge regression of all training tasks, and
the pooled model plus a per-task offset shrunk by empirical Bayes.
"""

import argparse
import time
import warnings

import torch

from sktransfer import MetaRidgeRegressor, transfer_report
from sktransfer.datasets import make_related_regression_tasks
from sktransfer.exceptions import NegativeTransferWarning


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k-shot", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    X, y, tasks = make_related_regression_tasks(
        n_tasks=250, n_samples=40, random_state=0
    )
    train, new = tasks < 200, tasks >= 200
    est = MetaRidgeRegressor(random_state=0, verbose=0 if args.quiet else 1)
    print(f"Meta-training {type(est).__name__} on 200 tasks ...")
    start = time.perf_counter()
    est.fit(X[train], y[train], task_ids=tasks[train])
    print(
        f"done in {time.perf_counter() - start:.1f} s; kept iterations "
        f"{est.best_iteration_}, weights of the two models {est.kind_weights_}\n"
    )

    reports = {}
    for k in args.k_shot:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NegativeTransferWarning)
            report = transfer_report(
                est,
                (X[new], y[new], tasks[new]),
                k_shot=k,
                train_tasks=(X[train], y[train], tasks[train]),
                metric="neg_root_mean_squared_error",
                random_state=0,
            )
        print(f"{k} labelled rows of each of the 50 new tasks:")
        print(report)
        for warning in caught:
            print(f"  warning: {warning.message}")
        print()
        reports[k] = report
    return reports


if __name__ == "__main__":
    main()
