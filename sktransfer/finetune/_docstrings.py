"""Docstring text shared by the fine-tuning estimators, written once."""

PARAMETERS = """
    Parameters
    ----------
{module_parameters}    lr : float, default=1e-3
        Learning rate of the optimiser of pre-training (Adam; AdamW with
        ``weight_decay``).
{weight_decay}    max_iter : int, default=100
        Epochs of pre-training in `fit`.
    batch_size : int, default=None
        Rows per mini-batch of training and per forward pass at prediction;
        ``None`` trains on ``min(200, n_samples)`` rows per batch and predicts
        all rows at once.
    pretrained : bool, default=False
        Whether the instance given as ``module`` is already trained. If True,
        `adapt` works without `fit`: the module's weights are then the
        pre-trained weights{pretrained_note}. Such a module was trained in
        units unknown here, so it gets ``X`` as given (no standardisation).
    freeze : None, "body", int or list of str, default="body"
        What `adapt` keeps fixed: nothing (``None``), all but the output layer
        (``"body"``), the first ``n`` parameterised layers (an int), or the
        parameters whose names match any of the :func:`fnmatch.fnmatch`
        patterns (e.g. ``["0.*"]``). Frozen weights stay bit-identical.
    head : {{"auto", "reset", "keep"}}, default="auto"
        The output layer at `adapt`: ``"auto"`` keeps it when {head_auto},
        and puts a freshly initialised ``nn.Linear`` in its place otherwise;
        ``"reset"`` always starts from a fresh one; ``"keep"`` always keeps
        the pre-trained one.
    adapt_lr : float, default=None
        Learning rate of the optimiser of `adapt` (of the output layer
        when ``layer_lr_decay`` is set); ``None`` means ``lr``.
    adapt_max_iter : int, default=100
        Epochs of `adapt`.
    unfreeze_every : int, default=None
        Gradual unfreezing: every ``unfreeze_every`` epochs of `adapt`, the
        top-most frozen layer starts training too. ``None`` keeps the frozen
        layers frozen.
    layer_lr_decay : float, default=None
        Discriminative learning rates: the output layer trains at
        ``adapt_lr``, the layer below it at ``adapt_lr * layer_lr_decay``, the
        next at ``adapt_lr * layer_lr_decay**2`` and so on. ``None`` uses
        ``adapt_lr`` everywhere.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for
        classifiers where possible) in `fit` and in `adapt`, stop when the
        validation loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and keep the best weights.
    validation_fraction : float, default=0.1
        Fraction of the rows held out when ``early_stopping=True``.
    tol : float, default=1e-4
        Least improvement of the validation loss that counts, with
        ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping, with ``early_stopping``.
{standardize}{device}    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the fresh head, shuffling and the
        validation split: the same value gives bit-identical models on the
        same machine and device.
{verbose}    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (e.g. ``LRScheduler``, ``Checkpoint``); a fresh
        copy serves pre-training and each `adapt`.
"""

ATTRIBUTES = """
    Attributes
    ----------{classes}
    module_ : nn.Module
        The network `predict` uses: the adapted one after `adapt`, else the
        pre-trained one.
    pretrained_module_ : nn.Module
        The pre-trained network, the starting point of every `adapt`.
    history_ : skorch.history.History
        Losses per epoch of pre-training.
    adapt_history_ : skorch.history.History
        Losses per epoch of the last `adapt`.
    net_ : skorch.NeuralNet
        The skorch engine of pre-training.
    adapt_net_ : skorch.NeuralNet
        The skorch engine of the last `adapt`, a fresh one for each call.
    n_iter_ : int
        Epochs of pre-training run so far.
    adapt_n_iter_ : int
        Epochs run by the last `adapt` (fewer than ``adapt_max_iter`` with
        early stopping).
{statistics}    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when they are all strings.
"""

ADAPT_Y_STATISTICS = """    adapt_y_mean_ : ndarray of shape (n_outputs,) or None
        Set by `adapt` when, with ``standardize=True``, it gives the network a
        fresh output layer for targets that have no training statistics (a
        number of outputs other than the source's, or a module trained
        elsewhere): the mean of each target column of the target set, used in
        place of ``y_mean_`` until the next `adapt` or `partial_fit`. None
        otherwise.
    adapt_y_scale_ : ndarray of shape (n_outputs,) or None
        The standard deviation that goes with ``adapt_y_mean_``.
"""
