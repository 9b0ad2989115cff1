"""Parameter and attribute text of the DANN estimators, written once."""

from sktransfer.utils._docstrings import CATEGORIES, verbose_doc, weight_decay_doc

PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(64, 64)
        Widths of the feature extractor's hidden layers (``Linear`` then the
        activation); the label predictor is one ``Linear`` layer on their
        output.
    domain_hidden_layer_sizes : array-like of int, default=(64, 64)
        Widths of the domain classifier's hidden layers. A domain classifier
        weaker than the feature extractor is fooled without any alignment;
        as deep as the feature extractor is a robust default.
    activation : {{"relu", "tanh", "logistic", "gelu", "identity"}}, \
default="relu"
        Activation of every hidden layer.
    domain_weight : float, default=1.0
        Largest weight of the reversed domain gradient. The weight follows
        Ganin et al.'s schedule ``domain_weight * (2 / (1 + exp(-10 p)) - 1)``,
        ``p`` the training progress from 0 to 1. 0 trains the source-only
        network.
    lr : float, default=1e-3
        Learning rate of Adam (AdamW with ``weight_decay``).
{weight_decay}    anneal_lr : bool, default=False
        Anneal the learning rate as ``lr / (1 + 10 p) ** 0.75`` (Ganin et al.,
        who used plain SGD). With Adam it stopped the alignment early and lost
        accuracy on rotated moons, hence off by default.
    max_iter : int, default=100
        Number of epochs (passes over the source and target rows).
    batch_size : int, default=None
        Rows per step, source and target mixed; ``None`` is ``min(64,
        n_rows)``. Adversarial training needs many steps: batches of 256
        rows aligned the domains less on rotated moons.
    validation_fraction : float or None, default=0.1
        Fraction of the source rows held out of training for the
        negative-transfer check: a network of the same architecture is
        trained on the source rows alone, beside the domain-adversarial one,
        and both are scored on the held-out rows
        (``source_validation_score_``, ``source_only_validation_score_``). A
        :class:`~sktransfer.exceptions.NegativeTransferWarning` says when the
        domain-adversarial model is worse by more than two paired standard
        errors (and 0.01). ``None`` trains on every source row and skips it.
{standardize}    standardize_per_domain : bool, default=False
        With ``standardize``, standardise each domain with its own mean and
        standard deviation (all source domains pooled, all target domains
        pooled), the target's taken from its unlabelled rows in `fit`; in the
        spirit of AdaBN (Li et al., 2016). It removes a shift or rescaling of
        the features between the domains (a sensor's offset, a translated
        cloud of rows) before any adversarial alignment. `predict`,
        `transform` and `score` read new rows as target rows (``x_mean_`` and
        ``x_scale_`` are the target's statistics); ``score`` with
        ``sample_domain`` reads its source rows with the source statistics.
        It assumes that the labelling rule moves with the domain's mean and
        scale. Under a plain covariate shift (one rule in the raw units, the
        target drawn from another region) or a label shift (other class
        proportions in the target, which move its mean) it does harm, which
        no check on the source rows can see; there ``False`` (one set of
        statistics over source and target rows, the default) is the better
        choice. Without target rows the two are the same. The default is
        ``False`` because a wrong ``True`` fails silently: in
        ``benchmarks/bench_dann.py`` it lifts translated moons from 0.77 to
        1.00 but costs 11 points on a tabular covariate shift and 2 on the
        real vote shift against one set of statistics. With one set of
        statistics no other setting closes the gap on translated moons: in
        ``benchmarks/bench_dann_defaults.py`` a smaller or larger reversal
        weight, learning rate or domain classifier, larger batches,
        annealing, more epochs and ``tanh`` (with a reversal weight of 3: the
        best, which costs 5 points on the tabular shift) score 0.64 to 0.84
        there, against 0.80 for the better of two source-only networks.
{device}    random_state : int, RandomState instance or None, default=None
        Seeds the network's initialisation, the batches and the held-out
        split.
{verbose}    callbacks : list of skorch callbacks, default=None
        Extra callbacks of the skorch training engine.
"""

ATTRIBUTES = """
    Attributes
    ----------
{classes}    module_ : DANNModule
        The trained network: ``features`` (the feature extractor), ``head``
        (the label predictor), ``domain_classifier`` and, with a
        ``validation_fraction``, ``source_only`` (the source-only twin).
    history_ : skorch History
        One row per epoch: ``train_loss``, ``label_loss``, ``domain_loss``
        (the batch means; the domain loss is near ``log 2 = 0.693`` when the
        domain classifier is fooled), and the ``reversal_weight`` of each
        batch.
    n_iter_ : int
        Number of epochs run.
    source_domains_ : ndarray of int
        The source domains seen in `fit`.
    target_domains_ : ndarray of int
        The target domains seen in `fit`.
    source_validation_score_ : float or None
        Accuracy or R² of the model on the held-out source rows.
    source_only_validation_score_ : float or None
        The same for the network trained on the source rows alone.
    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when ``X`` has string column
        names.
{statistics}"""

X_STATISTICS = (
    """    x_mean_ : ndarray of shape (n_features,) or None
        Mean of each feature, with which `predict`, `transform` and `score`
        standardise their rows: over the target rows with
        ``standardize_per_domain`` (and target rows), else over every row of
        `fit`; None with ``standardize=False``.
    x_scale_ : ndarray of shape (n_features,) or None
        Standard deviation of each feature over the same rows, 1 for a
        constant feature; None with ``standardize=False``.
    source_x_mean_ : ndarray of shape (n_features,) or None
        Mean of each feature over the source rows with
        ``standardize_per_domain`` (and target rows), else ``x_mean_``.
    source_x_scale_ : ndarray of shape (n_features,) or None
        Standard deviation of each feature over the same rows.
"""
    + CATEGORIES
)

SHARED_TEXT = {
    "weight_decay": weight_decay_doc(
        default="0.0",
        weights="all the network's weights",
        calls="`fit`",
        lr="``lr``",
        note="",
    ),
    "verbose": verbose_doc(bar=" per epoch", epoch=""),
}
