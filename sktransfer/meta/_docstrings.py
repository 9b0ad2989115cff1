"""Docstring text shared by the MAML estimators, written once."""

from sktransfer.utils._docstrings import verbose_doc, weight_decay_doc

SCORE_DOC = """Plain score, or the few-shot score over tasks given ``task_ids``.

Without ``task_ids`` this is scikit-learn's score of `predict` (accuracy
or R²) with the current model. With ``task_ids``, for every task it
draws a support set of ``k_shot`` rows (per class for classifiers),
adapts to it, scores the task's remaining rows, and returns the mean
over tasks. The split is fixed by ``random_state``; the estimator's own
current adaptation is left untouched.

Parameters
----------
X : array-like of shape (n_samples, n_features)
    Rows to score.
y : array-like of shape (n_samples,)
    True targets.
sample_weight : array-like of shape (n_samples,), default=None
    Weights of the scored rows.
task_ids : array-like of shape (n_samples,), default=None
    Task label of each row; turns on few-shot scoring.

Returns
-------
score : float
    Mean accuracy (classifiers) or R² (regressors).
"""

PARAMETERS = """
    Parameters
    ----------
{module_parameters}    inner_lr : float, default={inner_lr}
        Step size of the inner (adaptation) gradient steps; the initial value
        of the learned step sizes when ``learn_inner_lr=True``, and of the
        learned update's input gate when ``learn_inner_lr="lstm"``.
        {inner_lr_note}
    n_inner_steps : int, default=1
        Inner gradient steps per task during meta-training.
    n_adapt_steps : int, default=None
        Gradient steps of `adapt`; ``None`` means ``n_inner_steps``.
    meta_lr : float, default=1e-3
        Learning rate of the outer optimiser (Adam; AdamW with
        ``weight_decay``).
{weight_decay}    meta_batch_size : int, default=25
        Tasks per meta-iteration, drawn with replacement.
    max_iter : int, default=1000
        Meta-iterations of `fit`.
    k_shot : int, default=5
        Support rows {unit} in every training episode.
    n_query : int, default=None
        Query rows {unit} in every training episode; ``None`` means
        ``k_shot``. Each task needs ``k_shot + n_query`` rows{needs}.
{n_way}    first_order : bool, default=False
        Use first-order MAML (no gradient through the inner steps).
    learn_inner_lr : bool or "lstm", default=False
        The inner update, meta-learned with the initialisation. ``False``: a
        gradient step of the fixed size ``inner_lr`` (MAML). ``True``: one
        learned step size per weight (Meta-SGD). ``"lstm"``: the learned
        update rule of Ravi & Larochelle (2017), a small LSTM shared by all
        adapted weights that reads each weight's gradient and the support
        loss and sets a forget gate ``f`` and an input gate ``i`` per weight
        ``w``, which becomes ``f * w - i * grad``. It starts close to a
        gradient step of size ``inner_lr`` (which must then be below 1), and
        a meta-iteration costs about 20 times MAML's. With
        ``first_order=True`` the gradients and losses it reads are
        constants, as in the paper; the rule itself is still learned.
    adapt_layers : {{"all", "head"}}, default="all"
        The weights the inner loop adapts: all of them (MAML) or the output
        layer only (ANIL).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the tasks (at least one), and after
        every epoch adapt to fixed episodes of them and record ``valid_loss``
        and ``valid_score`` (accuracy or R² on their query rows) in
        ``history_``; stop when ``valid_loss`` has not improved by ``tol`` for
        ``n_iter_no_change`` epochs and keep the best weights (skorch's
        ``EarlyStopping``). Needs at least two tasks.
    validation_fraction : float, default=0.1
        Fraction of the tasks held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping, with ``early_stopping``.
    tol : float, default=1e-4
        Least improvement of ``valid_loss`` that counts, with
        ``early_stopping``.
{standardize}{device}    batch_size : int, default=None
        Rows per forward pass at prediction; ``None`` predicts all at once.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and task sampling: the same value gives
        bit-identical models on the same machine and device.
{verbose}    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks for meta-training, e.g.
        ``EarlyStopping(monitor="train_loss")``.
"""

ATTRIBUTES = """
    Attributes
    ----------
{classes}    module_ : nn.Module
        The meta-learned network.
    adapted_params_ : dict of str to Tensor
        The weights after the last `adapt`, used by `predict`.
    history_ : skorch.history.History
        Per epoch: ``train_loss`` (query loss after the inner steps) and, with
        ``early_stopping``, ``valid_loss`` and ``valid_score``.
    net_ : skorch.NeuralNet
        The skorch engine that ran meta-training.
    n_iter_ : int
        Meta-iterations run so far.
{n_outputs}{statistics}    n_features_in_ : int
        Number of features seen during `fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during `fit`, when they are all strings.
"""

N_WAY = """    n_way : int, default=None
        ``None``: the shared label space (labels mean the same in every task).
        An int: the episodic label space, where every episode is an
        ``n_way``-class problem whose classes are drawn from its task and
        relabelled, and `adapt` accepts up to ``n_way`` new classes.
"""

CLASSES = """    classes_ : ndarray of shape (n_classes,)
        Shared label space: the labels of all training tasks. Episodic label
        space: the labels of the last support set, set by `adapt`.
"""

N_OUTPUTS = """    n_outputs_ : int
        Number of targets.
"""

CLASSIFIER_LR = """Cross-entropy
        gradients are small: on the related-task family, one step of 0.01
        barely adapts (few-shot accuracy 0.75 against 0.72 unadapted), 0.1
        gives 0.82 (Finn et al. used 0.4 on Omniglot)."""

REGRESSOR_LR = """Finn et
        al.'s 0.01 suits raw sinusoid targets; on standardised ones (the
        default) one step of it adapts too little: few-shot MSE 1.10-1.71 on
        the sinusoid example over three seeds, 0.57-0.96 with 0.05."""

CLOSED_FORM_PARAMETERS = """
    Parameters
    ----------
{module_parameters}{specific}    meta_lr : float, default=2e-3
        Learning rate of the learned network's weights (AdamW); the heads'
        parameters learn at five times this rate.
{weight_decay}    meta_batch_size : int, default=32
        Episodes per meta-iteration (and per fold model), tasks drawn with
        replacement.
    max_iter : int, default=2000
        Most meta-iterations of `fit`; early stopping usually ends sooner.
    k_shot : int, default={k_shot}
        Most support rows {unit} of a training episode: every episode draws
        its support size uniformly from 1 to ``k_shot``, so that one model
        serves every support size up to it.
    n_query : int, default=None
        Query rows {unit} of a training episode; ``None`` means ``k_shot``.
        A task with fewer rows contributes the rows it has.
{n_way}    early_stopping : bool, default=True
        Choose the number of meta-iterations by cross-validation over tasks:
        beside the model trained on every task, one model per fold of tasks
        is trained without that fold, all in the same vectorised pass; after
        every epoch the fold models are scored on fixed episodes of their
        held-out tasks (support sizes ``k_shot / 4``, ``k_shot / 2`` and
        ``k_shot``), pooled, and the full model keeps the weights of the best
        epoch. Training stops when ``n_iter_no_change`` epochs bring no
        improvement. For a single task in the episodic label space the folds
        hold out classes instead of tasks.
    cv : int, default=5
        Folds of tasks for ``early_stopping`` (fewer when there are fewer
        tasks).
    n_iter_no_change : int, default=10
        Epochs without improvement before a model stops, with
        ``early_stopping``. An epoch is a pass of meta-batches over the
        tasks, and at least 50 meta-iterations.
    tol : float, default=1e-4
        Least improvement of the cross-validated loss that counts.
{standardize}{device}    batch_size : int, default=None
        Rows per forward pass at prediction; ``None`` predicts all at once.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the folds and task sampling: the same
        value gives bit-identical models on the same machine and device.
{verbose}    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks for meta-training.
"""

CLOSED_FORM_TEXT = {
    "weight_decay": weight_decay_doc(
        default="1e-4",
        weights="the learned network's weights",
        calls="`fit` and `partial_fit`, the outer (meta-level) optimiser",
        lr="``meta_lr``",
        note="The heads' own parameters (priors, noise, scales) are not decayed.",
    ),
    "verbose": verbose_doc(
        bar=" over meta-training",
        epoch=", a pass of meta-batches over the tasks (at least 50)",
    ),
}
