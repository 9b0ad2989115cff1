"""
=======================================================
Is the transfer real? Fine-tuning against the baselines
=======================================================

A source of many pooled tasks and a handful of labelled rows from new target
tasks. :class:`~sktransfer.FineTuneClassifier` pre-trains on the source and
fine-tunes its output layer on each target's support rows.
:func:`~sktransfer.transfer_report` scores it, on identical splits, beside the
models a practitioner already has: a logistic regression fitted on the support
rows alone, the pooled logistic regression without adaptation, and the pooled
model plus a per-task shift shrunk by empirical Bayes. It warns with
:class:`~sktransfer.exceptions.NegativeTransferWarning`, naming every baseline
that wins.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from sktransfer import FineTuneClassifier, NegativeTransferWarning, transfer_report
from sktransfer.datasets import make_related_classification_tasks

X, y, task_ids = make_related_classification_tasks(
    n_tasks=40, n_samples=60, task_shift=2.0, random_state=0
)
source = task_ids < 30
est = FineTuneClassifier(
    hidden_layer_sizes=(32,), lr=1e-2, max_iter=30, adapt_max_iter=50, random_state=0
).fit(X[source], y[source])

train = (X[source], y[source], task_ids[source])
target = (X[~source], y[~source], task_ids[~source])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", NegativeTransferWarning)
    report = transfer_report(est, target, k_shot=5, train_tasks=train, random_state=0)
print(report)
for warning in caught:
    print(warning.message)

# %%
# The mean gain of the fine-tuned model over each baseline, with its paired 95%
# confidence interval over target tasks: left of zero, the baseline wins.
names = list(report.baselines)
gains = np.array([report.mean_gain[name] for name in names])
low, high = np.array([report.ci95[name] for name in names]).T
fig, ax = plt.subplots(figsize=(6, 3))
ax.errorbar(gains, np.arange(len(names)), xerr=[gains - low, high - gains], fmt="o")
ax.axvline(0, color="grey", linewidth=1)
ax.set(
    yticks=np.arange(len(names)),
    yticklabels=names,
    xlabel="accuracy gain of the fine-tuned model",
)
fig.tight_layout()
plt.show()
