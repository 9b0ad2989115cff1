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
