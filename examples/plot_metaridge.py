"""
============================================================
Closed-form adaptation: MetaRidgeRegressor against baselines
============================================================

Many related regression tasks share a nonlinear trend and differ by an
offset, slopes and the amplitude of a nonlinear component
(:func:`~sktransfer.datasets.make_related_regression_tasks`).
:class:`~sktransfer.MetaRidgeRegressor` meta-learns a feature map and a prior
over a linear head on the training tasks, then solves the head's posterior
for each new task from K labelled rows, in closed form.
:func:`~sktransfer.transfer_report` scores it on the same rows as the
baselines a practitioner already has: a ridge regression of the support rows
alone, a pooled ridge regression, and the pooled model with a per-task offset
shrunk by empirical Bayes. (A synthetic family shows the mechanism; the
package's claims rest on the real tables of the Results page.)
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from sktransfer import MetaRidgeRegressor, transfer_report
from sktransfer.datasets import make_related_regression_tasks

X, y, tasks = make_related_regression_tasks(n_tasks=130, random_state=0)
train, new = tasks < 100, tasks >= 100
est = MetaRidgeRegressor(max_iter=500, random_state=0)
est.fit(X[train], y[train], task_ids=tasks[train])
print("iterations kept:", est.best_iteration_, "weights:", est.kind_weights_)

# %%
# RMSE on the new tasks' other rows against the number of labelled rows.
ks = [2, 5, 10, 20]
scores = {}
for k in ks:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = transfer_report(
            est,
            (X[new], y[new], tasks[new]),
            k_shot=k,
            train_tasks=(X[train], y[train], tasks[train]),
            metric="neg_root_mean_squared_error",
            random_state=0,
        )
    scores.setdefault("MetaRidgeRegressor", []).append(-report.adapted.mean())
    for name, values in report.baselines.items():
        scores.setdefault(name, []).append(-values.mean())

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in scores.items():
    style = "-" if name == "MetaRidgeRegressor" else "--"
    ax.plot(ks, values, style, marker="o", label=name)
ax.axhline(0.5, color="grey", lw=0.8, label="noise (the best possible)")
ax.set(xlabel="labelled rows K of the new task", ylabel="RMSE on its other rows")
ax.legend()
fig.tight_layout()

# %%
# One new task, adapted to 5 rows: the posterior predictive mean and standard
# deviation along its first feature (the others held at their means).
task = X[tasks == 100], y[tasks == 100]
est.adapt(task[0][:5], task[1][:5])
grid = np.zeros((200, X.shape[1]))
grid[:, 0] = np.linspace(-2.5, 2.5, 200)
mean, std = est.predict(grid, return_std=True)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(grid[:, 0], mean, label="posterior predictive mean")
ax.fill_between(grid[:, 0], mean - std, mean + std, alpha=0.3, label="± 1 std")
ax.scatter(task[0][:5, 0], task[1][:5], color="black", zorder=3, label="support rows")
ax.set(xlabel="first feature", ylabel="target")
ax.legend()
fig.tight_layout()
plt.show()
