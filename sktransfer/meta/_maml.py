"""MAML, first-order MAML, Meta-SGD, a learned update rule and ANIL as estimators."""

import math
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, is_regressor
from torch import nn

from sktransfer.base import (
    BodyTransformerMixin,
    TransferClassifierMixin,
    TransferRegressorMixin,
    early_stopping_callback,
    private_module,
    resolve_device,
    torch_seed,
    uses_global_rng,
)
from sktransfer.meta._base import BaseMetaLearner
from sktransfer.meta._docstrings import (
    ATTRIBUTES,
    CLASSES,
    CLASSIFIER_LR,
    N_OUTPUTS,
    N_WAY,
    PARAMETERS,
    REGRESSOR_LR,
)
from sktransfer.meta._engine import (
    MAMLTrainingConfig,
    MetaModule,
    MetaProgressBar,
    MetaTrainer,
)
from sktransfer.meta._inner_loop import batched_forward, head_parameter_names
from sktransfer.meta._targets import (
    MetaClassifierMixin,
    MetaRegressorMixin,
    usable_tasks,
)
from sktransfer.tasks._sampling import build_pool, sample_episodes
from sktransfer.utils._categorical import CATEGORICAL_CONSTRAINT
from sktransfer.utils._docstrings import (
    DEVICE,
    MODULE_PARAMETERS,
    STANDARDIZE,
    X_STATISTICS,
    Y_STATISTICS,
    verbose_doc,
    weight_decay_doc,
)
from sktransfer.utils._sklearn_compat import Interval, StrOptions

_SHARED_TEXT = {
    "module_parameters": MODULE_PARAMETERS,
    "weight_decay": weight_decay_doc(
        default="0.0",
        weights="the network's weights",
        calls="`fit` and `partial_fit`, the outer (meta-level) optimiser",
        lr="``meta_lr``",
        note="The learned inner update (``learn_inner_lr``) is not decayed.",
    ),
    "standardize": STANDARDIZE,
    "device": DEVICE,
    "verbose": verbose_doc(
        bar=" over meta-training",
        epoch=", a pass of meta-batches over the tasks",
    ),
}


class _BaseMAML(BodyTransformerMixin, BaseMetaLearner):
    """Shared implementation of `MAMLClassifier` and `MAMLRegressor`."""

    _parameter_constraints: dict = {
        "module": [None, type, nn.Module],
        "module_params": [None, dict],
        "hidden_layer_sizes": ["array-like"],
        "inner_lr": [Interval(Real, 0, None, closed="neither")],
        "n_inner_steps": [Interval(Integral, 1, None, closed="left")],
        "n_adapt_steps": [None, Interval(Integral, 0, None, closed="left")],
        "meta_lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "meta_batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "k_shot": [Interval(Integral, 1, None, closed="left")],
        "n_query": [None, Interval(Integral, 1, None, closed="left")],
        "first_order": ["boolean"],
        "learn_inner_lr": ["boolean", StrOptions({"lstm"})],
        "adapt_layers": [StrOptions({"all", "head"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "categorical_features": CATEGORICAL_CONSTRAINT,
        "device": [str],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.05,
        n_inner_steps=1,
        n_adapt_steps=None,
        meta_lr=1e-3,
        weight_decay=0.0,
        meta_batch_size=25,
        max_iter=1000,
        k_shot=5,
        n_query=None,
        first_order=False,
        learn_inner_lr=False,
        adapt_layers="all",
        early_stopping=False,
        validation_fraction=0.1,
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
        self.inner_lr = inner_lr
        self.n_inner_steps = n_inner_steps
        self.n_adapt_steps = n_adapt_steps
        self.meta_lr = meta_lr
        self.weight_decay = weight_decay
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.k_shot = k_shot
        self.n_query = n_query
        self.first_order = first_order
        self.learn_inner_lr = learn_inner_lr
        self.adapt_layers = adapt_layers
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.device = device
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # -- fitted state exposed from the skorch engine -------------------------
    @property
    def module_(self):
        """The meta-learned network (an ``nn.Module``)."""
        return self.net_.module_.net

    def _episode_sizes(self, counts, single):
        """Support and query rows per slot: shrunk to fit a single task."""
        k = self.k_shot
        q = self.k_shot if self.n_query is None else self.n_query
        present = counts > 0
        smallest = int(counts[present].min())
        if single and smallest < k + q:
            k = max(1, min(k, smallest // 2))
            q = max(1, min(q, smallest - k))
        return k, q

    def _fit(self, X, y, task_ids, *, reset, n_iterations, **kwargs):
        """Meta-train in named stages: validate and encode the tasks (here,
        where warnings point at the caller of `fit`), `_initialize_engine` on
        the first call, `_training_pools`, `_meta_train`."""
        tasks, single = self._validate_tasks(X, y, task_ids, reset=reset)
        if reset:
            self._fit_standardization(tasks.X, tasks.y if is_regressor(self) else None)
        # Targets of the pool (class slots, or float targets) and row groups.
        encoded = self._encode_targets(tasks, reset=reset, **kwargs)
        k, q = self._episode_sizes(encoded.counts, single)
        usable = (
            np.ones(tasks.n_tasks, dtype=bool)
            if single
            else usable_tasks(encoded.counts, tasks, k, q, self._unit)
        )
        device = resolve_device(self.device)
        if reset:
            self._initialize_engine(self._n_module_inputs(), encoded.n_outputs, device)
        pool, valid = self._training_pools(tasks, usable, single, encoded, k, q, device)
        iterations_per_epoch = math.ceil(tasks.n_tasks / self.meta_batch_size)
        config = MAMLTrainingConfig(
            n_iterations=iterations_per_epoch if n_iterations is None else n_iterations,
            iterations_per_epoch=iterations_per_epoch,
            meta_batch_size=self.meta_batch_size,
            k_shot=k,
            n_query=q,
            n_way=getattr(self, "n_way", None),
            seed=self._random_seed + self.n_iter_,
            n_inner_steps=self.n_inner_steps,
            n_adapt_steps=self._n_adapt_steps(),
            first_order=self.first_order,
        )
        self._meta_train(pool, valid, config, device)
        return self

    def _initialize_engine(self, n_features, n_outputs, device):
        """The first call's stage: the seed, the network and what its inner
        update learns, the skorch engine and its callbacks (no steps yet)."""
        self._random_seed = self._draw_seed(self._make_rng())
        with torch_seed(self._random_seed, device):
            net = self._build_module(n_features, n_outputs)
            adapt_names = (
                head_parameter_names(net)
                if self.adapt_layers == "head"
                else [name for name, _ in net.named_parameters()]
            )
            self.net_ = MetaTrainer(
                MetaModule(net, adapt_names, self.inner_lr, self.learn_inner_lr),
                criterion=self._criterion,
                criterion__reduction="none",
                optimizer=torch.optim.AdamW,
                optimizer__fused=True,
                lr=self.meta_lr,
                # The network's weights decay; the learned inner update does not.
                optimizer__weight_decay=0.0,
                optimizer__param_groups=[
                    ("net.*", {"weight_decay": self.weight_decay})
                ],
                train_split=None,
                callbacks=self._engine_callbacks(),
                device=device,
                verbose=int(self.verbose >= 2),
            )
            self.net_.initialize()
        self.n_iter_ = 0

    def _engine_callbacks(self):
        """The user's callbacks, then early stopping and the progress bar."""
        callbacks = list(self.callbacks or [])
        if self.early_stopping:
            callbacks.append(early_stopping_callback(self))
        if self.verbose:
            callbacks.append(("progress_bar", MetaProgressBar()))
        return callbacks

    def _training_pools(self, tasks, usable, single, encoded, k, q, device):
        """The stage of the data: the device-resident pool of the training
        tasks, and fixed episodes of the tasks held out for early stopping
        (None without it)."""
        X = self._standardize_X(tasks.X)
        valid = self._validation_tasks(np.flatnonzero(usable), single)
        in_valid = np.isin(tasks.task_codes, valid)
        in_train = np.isin(tasks.task_codes, np.flatnonzero(usable)) & ~in_valid
        pool = self._pool(X, tasks, in_train, encoded, device)
        if not len(valid):
            return pool, None
        generator = torch.Generator(device=device).manual_seed(self._random_seed)
        return pool, sample_episodes(
            self._pool(X, tasks, in_valid, encoded, device),
            max(self.meta_batch_size, len(valid)),
            k,
            q,
            n_way=getattr(self, "n_way", None),
            generator=generator,
        )

    def _meta_train(self, pool, valid, config, device):
        """The stage of the run: ``config`` on the engine; ``n_iter_`` counts
        the meta-iterations taken (early stopping may end sooner)."""
        net = self.net_
        # Tasks are drawn with the engine's own generator; torch's global one
        # (seeded under a process-wide lock) only matters for dropout.
        seeded = (
            torch_seed(config.seed, device)
            if uses_global_rng(self.module_)
            else nullcontext()
        )
        n_epochs = len(net.history)
        with seeded:
            net.meta_train(pool, valid, config)
        self.n_iter_ += net.iterations_done(net.history[n_epochs:])
        self.__dict__.pop("adapted_params_", None)

    def _validation_tasks(self, candidates, single):
        """Codes of the tasks held out for early stopping (none without it),
        drawn from ``candidates``, the codes of the usable tasks."""
        if not self.early_stopping:
            return np.array([], dtype=np.int64)
        n_tasks = len(candidates)
        if single or n_tasks < 2:
            raise ValueError(
                "early_stopping holds out whole tasks for validation: it needs at "
                f"least 2 tasks, got {n_tasks}. Give task_ids, or set "
                "early_stopping=False."
            )
        n_valid = min(max(1, round(self.validation_fraction * n_tasks)), n_tasks - 1)
        rng = np.random.RandomState(self._random_seed)
        return np.sort(rng.permutation(candidates)[:n_valid])

    def _pool(self, X, tasks, rows, encoded, device):
        """Device-resident pool of the selected rows of standardised ``X``, with
        their `EncodedTargets`."""
        codes = tasks.task_codes[rows]
        dense = np.unique(codes, return_inverse=True)[1].ravel()
        return build_pool(
            X[rows],
            encoded.targets[rows],
            dense,
            encoded.slots[rows],
            int(dense.max()) + 1,
            encoded.n_slots,
            device=device,
            dtype=torch.float32,
            shuffle=np.random.RandomState(self._random_seed),
        )

    def _n_adapt_steps(self):
        return self.n_inner_steps if self.n_adapt_steps is None else self.n_adapt_steps

    # -- adaptation ----------------------------------------------------------
    def _keep_adaptation(self, adapted):
        self.adapted_params_ = {name: value[0] for name, value in adapted.items()}

    def _adapt_batch(self, X, y, weight):
        """Adapt the meta-learned weights to many support sets in one pass.

        ``X`` is ``(n_tasks, n_rows, n_features)`` on the module's device
        (cast to float32, the precision of training), ``y`` the encoded
        targets and ``weight`` 0 for padding rows. Returns the batched adapted
        parameters, detached.
        """
        seeded = (
            torch_seed(self._random_seed, X.device)
            if uses_global_rng(self.module_)
            else nullcontext()
        )
        with seeded:
            return self.net_.adapt_episodes(
                X.float(), y, weight.float(), self._n_adapt_steps()
            )

    def _batched_outputs(self, params, X):
        """Float64 outputs ``(n_tasks, n_rows, n_outputs)`` of batched parameters."""
        state = {name: value.double() for name, value in params.items()}
        with private_module(self.module_) as module, torch.no_grad():
            return batched_forward(module)(state, X.double()).cpu().numpy()

    def _inference_params(self):
        return getattr(self, "adapted_params_", None)

    def _n_outputs(self):
        return self.net_.module_.net(
            torch.zeros(1, self._n_module_inputs(), device=self._device_of_module())
        ).shape[1]

    def _device_of_module(self):
        return next(self.module_.parameters()).device

    def __getstate__(self):
        # A copy: on Python 3.11+ object.__getstate__ returns __dict__ itself,
        # and moving the adaptation to the CPU must not move the live one.
        state = dict(super().__getstate__())
        if "adapted_params_" in state:
            state["adapted_params_"] = {
                k: v.cpu() for k, v in state["adapted_params_"].items()
            }
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "adapted_params_" in state and "net_" in state:
            device = self._device_of_module()
            self.adapted_params_ = {
                k: v.to(device) for k, v in self.adapted_params_.items()
            }


class MAMLClassifier(
    MetaClassifierMixin, TransferClassifierMixin, ClassifierMixin, _BaseMAML
):
    __doc__ = (
        """Model-agnostic meta-learning classifier (MAML, FOMAML, Meta-SGD, ANIL).

    Meta-trains an initialisation of a torch network over many related tasks
    so that a few gradient steps on a new task's support set give a good
    classifier for that task (Finn et al., 2017). ``first_order=True`` drops
    the second-order terms (FOMAML), ``learn_inner_lr=True`` learns one inner
    step size per weight (Meta-SGD), ``learn_inner_lr="lstm"`` learns the
    update itself (the meta-learner LSTM of Ravi & Larochelle, 2017) and
    ``adapt_layers="head"`` adapts only the output layer (ANIL). Each
    meta-batch of tasks is one vectorised pass.
"""
        + PARAMETERS.format(
            unit="per class",
            needs=" of every class it has",
            n_way=N_WAY,
            inner_lr="0.1",
            inner_lr_note=CLASSIFIER_LR,
            **_SHARED_TEXT,
        )
        + ATTRIBUTES.format(classes=CLASSES, n_outputs="", statistics=X_STATISTICS)
        + """
    See Also
    --------
    MAMLRegressor : The same for regression tasks.

    Examples
    --------
    >>> from sktransfer import MAMLClassifier
    >>> from sktransfer.datasets import make_related_classification_tasks
    >>> X, y, t = make_related_classification_tasks(n_tasks=20, random_state=0)
    >>> est = MAMLClassifier(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    _parameter_constraints: dict = {
        **_BaseMAML._parameter_constraints,
        "n_way": [None, Interval(Integral, 2, None, closed="left")],
    }
    _criterion = nn.CrossEntropyLoss

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.1,
        n_inner_steps=1,
        n_adapt_steps=None,
        meta_lr=1e-3,
        weight_decay=0.0,
        meta_batch_size=25,
        max_iter=1000,
        k_shot=5,
        n_query=None,
        n_way=None,
        first_order=False,
        learn_inner_lr=False,
        adapt_layers="all",
        early_stopping=False,
        validation_fraction=0.1,
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
        super().__init__(
            module,
            module_params=module_params,
            hidden_layer_sizes=hidden_layer_sizes,
            inner_lr=inner_lr,
            n_inner_steps=n_inner_steps,
            n_adapt_steps=n_adapt_steps,
            meta_lr=meta_lr,
            weight_decay=weight_decay,
            meta_batch_size=meta_batch_size,
            max_iter=max_iter,
            k_shot=k_shot,
            n_query=n_query,
            first_order=first_order,
            learn_inner_lr=learn_inner_lr,
            adapt_layers=adapt_layers,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            standardize=standardize,
            categorical_features=categorical_features,
            device=device,
            batch_size=batch_size,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
        )
        self.n_way = n_way

    def _class_scores(self, X):
        X = self._validate_inference_X(X)
        if self.n_way is not None and not hasattr(self, "adapted_params_"):
            raise ValueError(
                "This episodic (n_way) model has no classes until it sees a "
                "support set: call adapt(X_support, y_support) before predicting."
            )
        return self._raw_predict(X)[:, : len(self.classes_)]


class MAMLRegressor(
    MetaRegressorMixin, TransferRegressorMixin, RegressorMixin, _BaseMAML
):
    __doc__ = (
        """Model-agnostic meta-learning regressor (MAML, FOMAML, Meta-SGD, ANIL).

    Meta-trains an initialisation of a torch network over many related
    regression tasks so that a few gradient steps on a new task's support set
    fit that task (Finn et al., 2017), with the same variants as
    `MAMLClassifier`. ``k_shot`` and ``n_query`` count rows per task.
"""
        + PARAMETERS.format(
            unit="per task",
            needs="",
            n_way="",
            inner_lr="0.05",
            inner_lr_note=REGRESSOR_LR,
            **_SHARED_TEXT,
        )
        + ATTRIBUTES.format(
            classes="", n_outputs=N_OUTPUTS, statistics=X_STATISTICS + Y_STATISTICS
        )
        + """
    See Also
    --------
    MAMLClassifier : The same for classification tasks.

    Examples
    --------
    >>> from sktransfer import MAMLRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=20, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> est.adapt(X[t == 0][:10], y[t == 0][:10]).predict(X[t == 0][10:12]).shape
    (2,)
    """
    )

    _criterion = nn.MSELoss
