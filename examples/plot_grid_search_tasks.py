"""
===============================================
Grid search by few-shot score on held-out tasks
===============================================

A meta-learner should be tuned for what it is used for: adapting to a *new*
task from a few labelled rows. With scikit-learn's metadata routing switched
on, one array of task labels given to :class:`~sklearn.model_selection.GridSearchCV`
reaches

- the splitter, as ``groups``: :class:`~sklearn.model_selection.GroupKFold`
  holds whole tasks out of meta-training;
- ``fit``, as ``task_ids``: the pipeline's
  :class:`~sktransfer.MAMLClassifier` meta-trains on the training tasks;
- ``score``, as ``task_ids``: on every held-out task it adapts to a seeded
  support set of ``k_shot`` rows per class and scores the task's other rows.

So the candidates are ranked by their few-shot accuracy on unseen tasks. Here
the search tunes the inner-loop step size ``inner_lr`` of a MAML classifier
inside a :class:`~sklearn.pipeline.Pipeline` that scales the numeric columns
of a pandas DataFrame and one-hot encodes a categorical one.
"""

# %%
# Tasks as a DataFrame
# --------------------
# 20 related binary classification tasks of 40 rows, with four numeric
# features and the site each task was recorded at.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import make_column_transformer
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sktransfer import MAMLClassifier
from sktransfer.datasets import make_related_classification_tasks

X, y, task_ids = make_related_classification_tasks(
    n_tasks=20, n_samples=40, n_features=4, random_state=0
)
numeric = ["x0", "x1", "x2", "x3"]
df = pd.DataFrame(X, columns=numeric)
df["site"] = np.array(["north", "south", "west"])[task_ids % 3]
df.head()

# %%
# The routed grid search
# ----------------------
# ``n_adapt_steps=5`` gradient steps adapt the meta-learned network to each
# support set; with ``inner_lr=1e-5`` those steps change nothing.
pipe = make_pipeline(
    make_column_transformer((StandardScaler(), numeric), (OneHotEncoder(), ["site"])),
    MAMLClassifier(
        hidden_layer_sizes=(16,), max_iter=50, n_adapt_steps=5, random_state=0
    ),
)
grid = {"mamlclassifier__inner_lr": [1e-5, 1e-2, 0.1, 0.3]}

with sklearn.config_context(enable_metadata_routing=True):
    search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=4))
    search.fit(df, y, groups=task_ids, task_ids=task_ids)

results = pd.DataFrame(search.cv_results_)
columns = ["param_mamlclassifier__inner_lr", "mean_test_score", "std_test_score"]
print(results[columns + ["rank_test_score"]].to_string(index=False))
print("best:", search.best_params_)

# %%
# Few-shot accuracy per step size
# -------------------------------
# Each point is the mean over the four folds of the few-shot accuracy on the
# five held-out tasks of the fold; the bars are one standard deviation.
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(
    results["param_mamlclassifier__inner_lr"].astype(float),
    results["mean_test_score"],
    yerr=results["std_test_score"],
    marker="o",
    capsize=3,
)
ax.set_xscale("log")
ax.set_xlabel("inner_lr")
ax.set_ylabel("mean few-shot accuracy\non held-out tasks")
ax.set_title("GridSearchCV with task_ids routed")
fig.tight_layout()
plt.show()
