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
