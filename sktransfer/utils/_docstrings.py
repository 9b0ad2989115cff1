"""Parameter text shared by the docstrings of every estimator, written once."""

MODULE_PARAMETERS = """    module : nn.Module class or instance, default=None
        The network. A class is built as ``module(n_features=..., n_outputs=...,
        **module_params)``; an instance is deep-copied and its weights are the
        starting point of every `fit`. ``None`` builds
        :class:`~sktransfer.nn.MLP` sized by ``hidden_layer_sizes``. Modules
        with batch normalisation are refused.
    module_params : dict, default=None
        Keyword arguments of ``module`` when it is a class (or of the default
        MLP, e.g. ``{"activation": "tanh"}``).
    hidden_layer_sizes : array-like of int, default=(40, 40)
        Hidden layer widths of the default MLP.
"""

DEVICE = """    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (a GPU if present).
"""

STANDARDIZE = """    standardize : bool, default=True
        Standardise the features, and a regressor's targets, inside the
        estimator: `fit` (or the first `partial_fit`) stores the mean and
        standard deviation of every column over its training rows (scale 1
        for a constant column), and training, `adapt`, `predict`, `score` and
        few-shot scoring all use these statistics; later `partial_fit` and
        `adapt` calls never refit them. Predicted targets come back in the
        user's units; losses in ``history_`` are in standardised units.
        ``False`` gives the network ``X`` and ``y`` as they are.
"""

X_STATISTICS = """    x_mean_ : ndarray of shape (n_features,) or None
        Mean of each feature over the training rows; None with
        ``standardize=False``.
    x_scale_ : ndarray of shape (n_features,) or None
        Standard deviation of each feature over the training rows, 1 for a
        constant feature; None with ``standardize=False``.
"""

Y_STATISTICS = """    y_mean_ : ndarray of shape (n_outputs,) or None
        Mean of each target column over the training rows; None with
        ``standardize=False``.
    y_scale_ : ndarray of shape (n_outputs,) or None
        Standard deviation of each target column over the training rows, 1
        for a constant column; None with ``standardize=False``.
"""
