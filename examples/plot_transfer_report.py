"""
=========================================================
Is the transfer real? Fine-tuning against a scratch model
=========================================================

A source of many pooled tasks and a handful of labelled rows from new target
tasks. :class:`~sktransfer.FineTuneClassifier` pre-trains on the source and
fine-tunes its output layer on each target's support rows;
:func:`~sktransfer.transfer_report` scores it beside the same network trained
from scratch on those rows alone, on identical splits, and warns with
:class:`~sktransfer.exceptions.NegativeTransferWarning` when transfer hurts.
"""

import matplotlib.pyplot as plt
import numpy as np

from sktransfer import FineTuneClassifier, transfer_report
from sktransfer.datasets import make_related_classification_tasks

X, y, task_ids = make_related_classification_tasks(
    n_tasks=40, n_samples=60, task_shift=2.0, random_state=0
)
source = task_ids < 30
est = FineTuneClassifier(
    hidden_layer_sizes=(32,), lr=1e-2, max_iter=30, adapt_max_iter=50, random_state=0
).fit(X[source], y[source])

target = (X[~source], y[~source], task_ids[~source])
report = transfer_report(est, target, k_shot=5, random_state=0)
print(f"mean gain over scratch: {report.mean_gain:+.3f}")

# %%
# Per-task accuracy of the fine-tuned model against the scratch baseline.
order = np.argsort(report.gain)
fig, ax = plt.subplots(figsize=(6, 4))
ax.bar(np.arange(len(order)) - 0.2, report.baseline[order], 0.4, label="scratch")
ax.bar(np.arange(len(order)) + 0.2, report.adapted[order], 0.4, label="fine-tuned")
ax.set(xlabel="target task", ylabel="accuracy on query rows", ylim=(0.4, 1))
ax.legend()
fig.tight_layout()
plt.show()
