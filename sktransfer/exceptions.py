"""Warnings and errors raised by sktransfer."""


class NegativeTransferWarning(UserWarning):
    """The adapted model scores worse, on average, than the from-scratch baseline.

    Raised by :func:`sktransfer.model_selection.transfer_report`: what was
    learned from the source tasks hurts on these target tasks.
    """
