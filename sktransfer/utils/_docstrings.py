"""Parameter text shared by the docstrings of every estimator, written once."""

import textwrap

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

CATEGORICAL_FEATURES = """    categorical_features : "from_dtype", array-like or None, \
            default="from_dtype"
        Which columns of ``X`` are categorical. ``"from_dtype"``: the
        ``category``, ``object`` and ``string`` columns of a pandas DataFrame
        (none of a numpy array), as in scikit-learn's
        ``HistGradientBoosting*``; an array-like of column names, of column
        indices or a boolean mask: those columns (of an array too); ``None``:
        none. Categories are those met in `fit` (or the first `partial_fit`);
        the model sees each categorical column one-hot, after the numeric
        columns. A category never met in `fit` is all zeros there, in
        `adapt`, `predict` and few-shot scoring alike. Missing values are
        refused: fill them first (for instance with
        `~sklearn.impute.SimpleImputer` in a `~sklearn.pipeline.Pipeline`,
        which `sktransfer.adapt` adapts).
"""

STANDARDIZE = (
    """    standardize : bool, default=True
        Standardise the features, and a regressor's targets, inside the
        estimator: `fit` (or the first `partial_fit`) stores the mean and
        standard deviation of every column over its training rows (scale 1
        for a constant column), and training, `adapt`, `predict`, `score` and
        few-shot scoring all use these statistics; later `partial_fit` and
        `adapt` calls never refit them. Predicted targets come back in the
        user's units; losses in ``history_`` are in standardised units.
        ``False`` gives the network ``X`` and ``y`` as they are.
"""
    + CATEGORICAL_FEATURES
)

CATEGORIES = """    is_categorical_ : ndarray of shape (n_features,) of bool or None
        Which columns of ``X`` are categorical; None when none is (see
        ``categorical_features``).
    categories_ : list of ndarray or None
        The sorted categories met in `fit` of each categorical column, in
        column order; None when no column is categorical.
"""

X_STATISTICS = (
    """    x_mean_ : ndarray of shape (n_inputs,) or None
        Mean of each of the network's input columns (``n_features`` with
        each categorical column one-hot) over the training rows; None with
        ``standardize=False``.
    x_scale_ : ndarray of shape (n_inputs,) or None
        Standard deviation of each input column over the training rows, 1 for
        a constant column; None with ``standardize=False``.
"""
    + CATEGORIES
)

Y_STATISTICS = """    y_mean_ : ndarray of shape (n_outputs,) or None
        Mean of each target column over the training rows; None with
        ``standardize=False``.
    y_scale_ : ndarray of shape (n_outputs,) or None
        Standard deviation of each target column over the training rows, 1
        for a constant column; None with ``standardize=False``.
"""


def _entry(head, text):
    """A parameter's entry: its ``name : type`` line, then ``text`` wrapped."""
    body = textwrap.fill(
        " ".join(text.split()),
        width=79,
        initial_indent=" " * 8,
        subsequent_indent=" " * 8,
        break_on_hyphens=False,
    )
    return f"    {head}\n{body}\n"


def weight_decay_doc(*, default, weights, calls, lr, note=""):
    """The ``weight_decay`` entry: one meaning, the family's specifics filled in."""
    return _entry(
        f"weight_decay : float, default={default}",
        "Decoupled weight decay (AdamW; Loshchilov & Hutter, 2019) of the "
        f"optimiser that trains {weights} in {calls}: every step also shrinks "
        "each such weight ``w`` by ``lr * weight_decay * w``, ``lr`` being its "
        f"learning rate ({lr}). ``0`` is plain Adam. {note}",
    )


def verbose_doc(*, bar="", epoch=""):
    """The ``verbose`` entry: one meaning, the family's specifics filled in."""
    return _entry(
        "verbose : int, default=0",
        f"``0``: silent. ``1``: a progress bar{bar}. ``2``: the bar and "
        f"skorch's log line (``PrintLog``) per epoch{epoch}.",
    )
