"""
=========================================================
How many labelled rows? The few-shot curve of a pipeline
=========================================================

Related regression tasks, one per store say, in a table with numeric columns
and a string column (the store's region). A scikit-learn
:class:`~sklearn.pipeline.Pipeline` scales the numbers and one-hot encodes the
region, then :class:`~sktransfer.MetaRidgeRegressor` meta-learns from the
training stores; :func:`sktransfer.adapt` adapts the whole pipeline to a new
store from a few labelled rows, through the fitted encoder.

:class:`~sktransfer.FewShotCurveDisplay` answers the question every user of a
transfer model asks: from how many labelled rows of a new task on does
meta-training pay, and against what? It scores the adapted pipeline on new
stores at 1, 2, 5, 10 and 20 labelled rows, with a 95% band over stores,
beside the baselines of :func:`~sktransfer.transfer_report`: a ridge
regression of the support rows alone, a pooled ridge regression, and the
pooled model with a per-store offset shrunk by empirical Bayes.
:class:`~sktransfer.TrainingHistoryDisplay` shows what meta-training recorded.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import sktransfer
from sktransfer import FewShotCurveDisplay, MetaRidgeRegressor, TrainingHistoryDisplay
from sktransfer.datasets import make_related_regression_tasks

X, y, stores = make_related_regression_tasks(n_tasks=120, random_state=0)
numeric = [f"x{i}" for i in range(X.shape[1])]
table = pd.DataFrame(X, columns=numeric)
table["region"] = np.array(["north", "south", "east", "west"])[stores % 4]
train, new = stores < 100, stores >= 100

pipe = make_pipeline(
    make_column_transformer(
        (StandardScaler(), numeric),
        (OneHotEncoder(handle_unknown="ignore"), ["region"]),
    ),
    MetaRidgeRegressor(max_iter=150, random_state=0),
)
# With metadata routing, the pipeline passes task_ids on to its last step.
with sklearn.config_context(enable_metadata_routing=True):
    pipe.fit(table[train], y[train], task_ids=stores[train])

# %%
# Adapt the pipeline to one new store from five labelled rows, and predict
# its other rows. The encoder and the scaler are used as fitted, not refitted.
rows = np.flatnonzero(stores == 100)
support, query = rows[:5], rows[5:]
before = pipe.predict(table.iloc[query])
after = sktransfer.adapt(pipe, table.iloc[support], y[support]).predict(
    table.iloc[query]
)
for name, pred in [("meta-learned", before), ("adapted to 5 rows", after)]:
    rmse = np.sqrt(np.mean((pred - y[query]) ** 2))
    print(f"{name:>18}: RMSE {rmse:.2f} on the store's other {len(query)} rows")

# %%
# The few-shot curve on the 20 new stores, three support draws per store and
# size: the adapted pipeline with its 95% band, and the baselines (fitted on
# the training stores, through the same encoder).
fig, (ax_curve, ax_history) = plt.subplots(1, 2, figsize=(11, 4))
curve = FewShotCurveDisplay.from_estimator(
    pipe,
    (table[new], y[new], stores[new]),
    k_shots=[1, 2, 5, 10, 20],
    train_tasks=(table[train], y[train], stores[train]),
    n_episodes=3,
    random_state=0,
    ax=ax_curve,
)
ax_curve.set_title("R² on new stores")
for i, k in enumerate(curve.k_shots):
    low, high = curve.ci95[i]
    others = ", ".join(f"{n} {s[i]:.3f}" for n, s in curve.baseline_scores.items())
    print(
        f"k_shot={k:>2}: R² {curve.scores[i]:.3f} ({low:.3f} to {high:.3f}); {others}"
    )
# A least-squares fit of one or two rows extrapolates wildly on some stores:
# the support-set-only model scores far below 0 there, off this axis.
ax_curve.set_ylim(-1, 1)

# %%
# The training history: the training loss, and the loss of each model kind
# on the folds of tasks held out for early stopping.
TrainingHistoryDisplay.from_estimator(pipe, ax=ax_history)
fig.tight_layout()
plt.show()
