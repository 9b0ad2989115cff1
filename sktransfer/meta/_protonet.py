"""Prototypical networks as a scikit-learn classifier."""

from numbers import Integral

from sktransfer.meta._closed_form_base import BaseClosedForm, ClosedFormClassifierMixin
from sktransfer.meta._docstrings import CLOSED_FORM_PARAMETERS, CLOSED_FORM_TEXT
from sktransfer.meta._heads import ProtoMembers
from sktransfer.utils._docstrings import (
    CATEGORIES,
    DEVICE,
    MODULE_PARAMETERS,
    STANDARDIZE,
)
from sktransfer.utils._sklearn_compat import Interval


class ProtoNetClassifier(ClosedFormClassifierMixin, BaseClosedForm):
    __doc__ = (
        """Prototypical networks: classes as mean points of a learned embedding.

    Meta-learns an embedding ``g(x)`` (a torch network) over many tasks so
    that, in each task, rows lie near the mean embedding of their class's
    support rows (Snell, Swersky & Zemel, 2017). `adapt` computes those class
    means, the prototypes, in closed form; `predict` gives each row the class
    of the nearest prototype (softmax over negative squared distances). In
    the episodic label space (``n_way``) any new classes work. In the shared
    label space every class also has a meta-learned prior prototype that a
    support set shifts (each class mean is shrunk toward it as if a learned
    number of rows sat there), so a class absent from a support set still
    has one, and prediction before `adapt` uses the priors.
"""
        + CLOSED_FORM_PARAMETERS.format(
            specific="""    n_components : int, default=16
        Dimension of the embedding: the outputs of ``module``.
""",
            k_shot=5,
            unit="per class",
            n_way="""    n_way : int, default=None
        ``None``: the shared label space (labels mean the same in every task).
        An int: the episodic label space, where every episode is an
        ``n_way``-class problem whose classes are drawn from its task and
        relabelled, and `adapt` accepts up to ``n_way`` new classes.
""",
            module_parameters=MODULE_PARAMETERS.replace("(40, 40)", "(64, 64)"),
            standardize=STANDARDIZE,
            device=DEVICE,
            **CLOSED_FORM_TEXT,
        )
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Shared label space: the labels of all training tasks. Episodic label
        space: the labels of the last support set, set by `adapt`.
    module_ : nn.Module
        The learned embedding network.
    adapted_ : dict
        The prototypes after the last `adapt`.
    history_ : skorch.history.History
        Per epoch: ``train_loss`` (query cross-entropy) and, with
        ``early_stopping``, ``valid_loss_learned`` (cross-validated).
    best_iteration_ : dict
        With ``early_stopping``: the meta-iteration kept.
    net_ : skorch.NeuralNet
        The skorch engine that ran meta-training.
    n_iter_ : int
        Meta-iterations run so far.
    x_mean_, x_scale_ : ndarray of shape (n_inputs,) or None
        Mean and standard deviation of each input column (``n_features``
        with each categorical column one-hot) over the training rows.
"""
        + CATEGORIES
        + """    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when they are all strings.

    See Also
    --------
    MetaRidgeClassifier : A ridge head on the embedding and the raw features.

    Examples
    --------
    >>> from sktransfer import ProtoNetClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=20, random_state=0)
    >>> est = ProtoNetClassifier(max_iter=50, random_state=0).fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    _parameter_constraints: dict = {
        **BaseClosedForm._parameter_constraints,
        "n_way": [None, Interval(Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(64, 64),
        n_components=16,
        meta_lr=2e-3,
        weight_decay=1e-4,
        meta_batch_size=32,
        max_iter=2000,
        k_shot=5,
        n_query=None,
        n_way=None,
        early_stopping=True,
        cv=5,
        n_iter_no_change=10,
        tol=1e-4,
        standardize=True,
        categorical_features="from_dtype",
        device="cpu",
        batch_size=None,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.module_params = module_params
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.meta_lr = meta_lr
        self.weight_decay = weight_decay
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_way = n_way
        self.early_stopping = early_stopping
        self.cv = cv
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.device = device
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _kinds(self, n_inputs, n_outputs, n_members, prior):
        return {
            "learned": ProtoMembers(
                self._stacked_network(n_inputs, n_members),
                n_members,
                n_inputs,
                n_outputs,
                shared=self.n_way is None,
            )
        }
