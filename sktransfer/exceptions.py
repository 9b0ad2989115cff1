"""Warnings and errors raised by sktransfer."""


class NegativeTransferWarning(UserWarning):
    """A baseline scores better, on average, than the adapted model.

    Raised by :func:`sktransfer.model_selection.transfer_report`, naming every
    baseline (a model fitted on the support rows alone, the pooled model, the
    pooled model plus a shrunk per-task offset, ...) that beats the adapted
    estimator on average over the target tasks, with the margin and its 95%
    confidence interval: on these tasks, what was learned from the source
    tasks does not pay for itself.
    """


class SingleTaskWarning(UserWarning):
    """A meta-learner was meta-trained on a single task.

    Raised by `fit` and `partial_fit` of the meta-learners (MAML, MetaRidge,
    ProtoNet) in the shared label space when no ``task_ids`` were given, so
    that all rows form one task: meta-learning learns what tasks have in
    common and how they differ, which one task cannot show. Pass the task of
    every row (``fit(X, y, task_ids=t)``, or a list of ``(X, y)`` pairs);
    through a `~sklearn.pipeline.Pipeline` or a search such as
    `~sklearn.model_selection.GridSearchCV`, enable scikit-learn's metadata
    routing so that ``task_ids`` reaches ``fit``. Filter it with
    ``warnings.filterwarnings("ignore", category=SingleTaskWarning)`` where a
    single task is meant.
    """
