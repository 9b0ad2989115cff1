"""
=====================================================
Meta-learning sinusoids: adapt from ten points
=====================================================

The classic MAML regression family (Finn et al., 2017): every task is a sine
wave with its own amplitude and phase. :class:`~sktransfer.MAMLRegressor`
meta-learns an initialisation from many such tasks; one gradient step on ten
points of a new wave then fits it. The meta-training loss per epoch is kept in
``history_``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import mean_squared_error

from sktransfer import MAMLRegressor, few_shot_score
from sktransfer.datasets import make_sinusoid_tasks

X, y, task_ids = make_sinusoid_tasks(n_tasks=2000, n_samples=20, random_state=0)
est = MAMLRegressor(
    hidden_layer_sizes=(40, 40),
    k_shot=10,
    meta_lr=2e-3,
    max_iter=2000,
    random_state=0,
).fit(X, y, task_ids=task_ids)

# %%
# Few-shot mean squared error on new waves, with a 95% confidence interval
# over tasks (R², the estimator's own score, is unstable on waves of tiny
# amplitude).
new_tasks = make_sinusoid_tasks(n_tasks=200, n_samples=60, random_state=1)
result = few_shot_score(
    est, new_tasks, k_shot=10, random_state=0, metric=mean_squared_error
)
low, high = result.ci95
print(f"few-shot MSE {result.mean:.2f} (95% CI {low:.2f} to {high:.2f})")

# %%
# The meta-training loss, and one new wave before and after adaptation.
X_new, y_new, t_new, params = make_sinusoid_tasks(
    n_tasks=1, n_samples=10, return_params=True, random_state=2
)
grid = np.linspace(-5, 5, 200).reshape(-1, 1)
before = est.predict(grid)  # few_shot_score left the meta-learned model as it was
after = est.adapt(X_new, y_new).predict(grid)

fig, (ax_loss, ax_task) = plt.subplots(1, 2, figsize=(10, 4))
ax_loss.plot(est.history_[:, "train_loss"])
ax_loss.set(xlabel="epoch", ylabel="query MSE after adaptation", yscale="log")
ax_loss.set_title("history_")
truth = params["amplitude"][0] * np.sin(grid[:, 0] - params["phase"][0])
ax_task.plot(grid, truth, "k", label="true wave")
ax_task.plot(grid, before, "--", label="meta-learned")
ax_task.plot(grid, after, label="after adapt")
ax_task.plot(X_new, y_new, "r^", label="10 support points")
ax_task.legend()
ax_task.set_title("a new task")
fig.tight_layout()
plt.show()
