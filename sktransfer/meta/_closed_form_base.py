"""The closed-form meta-learners' shared estimator: members, folds, adaptation."""

import copy
import math
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, is_classifier, is_regressor
from torch import nn

from sktransfer.base import (
    BodyTransformerMixin,
    TransferClassifierMixin,
    private_module,
    resolve_device,
    torch_seed,
    uses_global_rng,
)
from sktransfer.meta._base import BaseMetaLearner
from sktransfer.meta._closed_form import base_targets, random_intercept
from sktransfer.meta._engine import (
    ClosedFormNet,
    ClosedFormTrainer,
    ClosedFormTrainingConfig,
    MetaProgressBar,
    pooled_loss,
    stack_episodes,
    within_noise,
)
from sktransfer.meta._heads import PriorInit, StackedNetwork
from sktransfer.meta._targets import MetaClassifierMixin, episodic_slots, usable_tasks
from sktransfer.tasks._sampling import build_pool, sample_episodes
from sktransfer.utils._categorical import CATEGORICAL_CONSTRAINT
from sktransfer.utils._divergence import check_finite_outputs
from sktransfer.utils._sklearn_compat import Interval


class BaseClosedForm(BodyTransformerMixin, BaseMetaLearner):
    """Shared implementation of the meta-learners that adapt in closed form.

    A subclass provides ``_kinds(n_inputs, n_outputs, n_members, prior_mean)``,
    the model kinds to train by name (`RidgeMembers` or `ProtoMembers`), and
    ``_combine(outputs, weights)``, how the kinds' outputs make one
    prediction; with two kinds, the weights are chosen on the held-out folds.
    ``fit`` trains ``n_folds + 1`` members of every kind side by side, in one
    vectorised pass: one per fold of the tasks (trained without it and scored
    on it every epoch) and the last on every task; the epoch where the folds
    score best, pooled, chooses each kind's final weights (`ClosedFormTrainer`).
    """

    _parameter_constraints: dict = {
        "module": [None, type, nn.Module],
        "module_params": [None, dict],
        "hidden_layer_sizes": ["array-like"],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "meta_lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "meta_batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "k_shot": [Interval(Integral, 1, None, closed="left")],
        "n_query": [None, Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "cv": [Interval(Integral, 2, None, closed="left")],
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

    # The heads' parameters learn at this multiple of ``meta_lr``, without
    # weight decay; the learned network's weights at ``meta_lr``, with it.
    _head_lr_factor = 5.0
    # An epoch: a pass of meta-batches over the tasks, at least this many steps.
    _min_epoch = 50

    # -- fitted state ------------------------------------------------------------
    @property
    def module_(self):
        """The learned network (feature map or embedding), an ``nn.Module``.

        None when the model has no learned part.
        """
        kinds = self.net_.module_.kinds
        if "learned" not in kinds:
            return None
        return kinds["learned"].body.member(0)

    def _fit(self, X, y, task_ids, *, reset, n_iterations, **kwargs):
        tasks, single = self._validate_tasks(X, y, task_ids, reset=reset)
        self._check_base_estimator()
        if reset:
            self._random_seed = self._draw_seed(self._make_rng())
            self._fit_standardization(tasks.X, tasks.y if is_regressor(self) else None)
        # The targets (standardised with the statistics; classes_ set) before
        # the base estimator, whose class columns follow classes_.
        encoded = self._encode_targets(tasks, reset=reset, **kwargs)
        if reset:
            base = self._fit_base_estimator(tasks, single)
        else:
            base = self._base_predictions(tasks.X)
        inputs = self._head_inputs(tasks.X, base)
        usable = usable_tasks(
            encoded.counts,
            tasks,
            self.k_shot,
            self.k_shot if self.n_query is None else self.n_query,
            self._unit,
        )
        device = resolve_device(self.device)
        k = self.k_shot
        q = self.k_shot if self.n_query is None else self.n_query
        n_way = getattr(self, "n_way", None)
        cross_validate = reset and self.early_stopping and n_iterations is not None
        if single and n_way is None:
            # Warned of (SingleTaskWarning): early stopping holds out tasks.
            cross_validate = False
        folds = (
            self._folds(tasks, usable, single, encoded.slots) if cross_validate else []
        )

        units = self._units(tasks, single, encoded.slots)
        rows = np.isin(tasks.task_codes, np.flatnonzero(usable))
        held_out = [np.isin(units, fold) for fold in folds]
        member_rows = [rows & ~held for held in held_out] + [rows]
        if reset:
            prior = self._prior_init(
                inputs, encoded.targets, tasks.task_codes, member_rows
            )
            with torch_seed(self._random_seed, device):
                net = ClosedFormNet(
                    self._kinds(
                        inputs.shape[1], encoded.n_outputs, len(member_rows), prior
                    )
                )
            self.net_ = self._engine(net, device)
            self.n_iter_ = 0
            self.__dict__.pop("best_iteration_", None)
        self.__dict__.pop("adapted_", None)

        def pool(selected):
            return self._pool(inputs, tasks, selected, encoded, device)

        pools = [pool(selected) for selected in member_rows]
        valid = None
        if folds:
            generator = torch.Generator(device=device).manual_seed(self._random_seed)
            valid = self._validation_episodes(
                [pool(rows & held) for held in held_out], k, q, n_way, generator
            )
        engine = self.net_
        epoch = max(
            math.ceil(int(usable.sum()) / self.meta_batch_size), self._min_epoch
        )
        config = ClosedFormTrainingConfig(
            n_iterations=epoch if n_iterations is None else n_iterations,
            iterations_per_epoch=epoch,
            meta_batch_size=self.meta_batch_size,
            k_shot=k,
            n_query=q,
            n_way=n_way,
            seed=self._random_seed + self.n_iter_,
            random_support_size=True,
            patience=self.n_iter_no_change,
            tol=self.tol,
        )
        seeded = (
            torch_seed(self._random_seed + self.n_iter_, device)
            if uses_global_rng(engine.module_)
            else nullcontext()
        )
        n_epochs = len(engine.history)
        with seeded:
            engine.meta_train(pools, valid, config)
        self.n_iter_ += engine.iterations_done(engine.history[n_epochs:])
        if folds:
            best = engine.keep_best()
            self.best_iteration_ = {name: it for name, (it, _) in best.items()}
            self.kind_weights_ = self._choose_weights(
                {name: out for name, (_, out) in best.items()}, valid
            )
        elif reset:
            kinds = list(engine.module_.kinds)
            self.kind_weights_ = dict.fromkeys(kinds, 1.0 / len(kinds))
        self._inference_net = copy.deepcopy(engine.module_).double().eval()
        return self

    def _engine(self, net, device):
        """The skorch engine: AdamW, the learned network at ``meta_lr`` with
        ``weight_decay``, the heads at a higher rate without."""
        callbacks = list(self.callbacks or [])
        if self.verbose:
            callbacks.append(("progress_bar", MetaProgressBar()))
        return ClosedFormTrainer(
            net,
            criterion=nn.MSELoss,
            optimizer=torch.optim.AdamW,
            lr=self.meta_lr * self._head_lr_factor,
            optimizer__weight_decay=0.0,
            optimizer__param_groups=[
                ("*.body.*", {"lr": self.meta_lr, "weight_decay": self.weight_decay})
            ],
            train_split=None,
            callbacks=callbacks,
            device=device,
            verbose=int(self.verbose >= 2),
        ).initialize()

    # -- tasks, folds and episodes -------------------------------------------------
    def _units(self, tasks, single, slots):
        """The cross-validation unit of every row: its task, or its class when
        the classes of one episodic task are what must generalise."""
        if single and getattr(self, "n_way", None) is not None:
            return slots
        return tasks.task_codes

    def _folds(self, tasks, usable, single, slots):
        """The units (tasks, or classes) each fold of early stopping holds out."""
        n_way = getattr(self, "n_way", None)
        if single and n_way is not None:
            units = np.unique(slots)
            # At least two folds of n_way classes or more: every fold then also
            # leaves n_way classes or more to train on (half the classes at least).
            n_folds = min(self.cv, len(units) // n_way)
            if n_folds < 2:
                raise ValueError(
                    "early_stopping holds out classes for validation: with "
                    f"{len(units)} classes and n_way={n_way} there are too few for "
                    "two folds of at least n_way classes each. Give more classes, "
                    "or set early_stopping=False."
                )
        else:
            units = np.flatnonzero(usable)
            n_folds = min(self.cv, len(units))
            if n_folds < 2:
                raise ValueError(
                    "early_stopping holds out whole tasks for validation: it needs "
                    f"at least 2 tasks, got {len(units)}. Give task_ids, or set "
                    "early_stopping=False."
                )
        order = np.random.RandomState(self._random_seed).permutation(units)
        return [np.sort(order[f::n_folds]) for f in range(n_folds)]

    def _validation_episodes(self, pools, k, q, n_way, generator):
        """Fixed episodes of every fold's held-out units, and the unit of each.

        Every held-out task gets episodes of support sizes ``k / 4``, ``k / 2``
        and ``k``, at least 48 episodes per fold in all; the folds' episodes
        are numbered by task (by episode when the held-out units are classes of
        a single task). The last member (trained on every task) gets weight-0
        copies of the first fold's episodes, so that all members stack.
        """
        sizes = np.array(sorted({max(1, k // 4), max(1, k // 2), k}))
        most = max(pool.n_tasks for pool in pools)
        n_episodes = len(sizes) * max(most, -(-48 // len(sizes)))
        device = pools[0].X.device
        episodes, units, offset = [], [], 0
        for pool in pools:
            n_tasks = int(pool.n_tasks)
            task = np.arange(n_episodes) // len(sizes) % n_tasks
            episodes.append(
                sample_episodes(
                    pool,
                    n_episodes,
                    k,
                    q,
                    n_way=n_way,
                    generator=generator,
                    tasks=torch.as_tensor(task, device=device),
                    support_size=torch.as_tensor(
                        np.resize(sizes, n_episodes), device=device
                    ),
                )
            )
            unit = task if n_tasks > 1 else np.arange(n_episodes)
            units.append(unit + offset)
            offset += int(unit.max()) + 1
        support, query = episodes[0]
        episodes.append(
            (
                (*support[:2], torch.zeros_like(support[2])),
                (*query[:2], torch.zeros_like(query[2])),
            )
        )
        units.append(units[0])
        support, query = stack_episodes(episodes)
        return support, query, torch.as_tensor(np.stack(units), device=device)

    def _pool(self, inputs, tasks, rows, encoded, device):
        """Device-resident pool of the selected rows and their `EncodedTargets`,
        task codes made dense."""
        codes = tasks.task_codes[rows]
        dense = np.unique(codes, return_inverse=True)[1].ravel()
        slots, n_slots = encoded.slots[rows], encoded.n_slots
        if getattr(self, "n_way", None) is not None:
            # Ranks among the classes left in the pool, without gaps.
            slots, n_slots = episodic_slots(dense, slots)
        return build_pool(
            inputs[rows],
            encoded.targets[rows],
            dense,
            slots,
            int(dense.max()) + 1,
            n_slots,
            device=device,
            dtype=torch.float32,
            shuffle=np.random.RandomState(self._random_seed),
        )

    def _prior_init(self, inputs, targets, task_codes, member_rows):
        """Each member's prior to start from: a random-intercept model.

        The empirical-Bayes fit of its own training rows (`random_intercept`):
        the pooled least-squares weights as the prior mean, the between-task
        standard deviation of the intercept and a small one of the slopes,
        the within-task noise; meta-training earns the random slopes. With a
        base estimator the fit is of what its prediction leaves. None in the
        episodic label space, where classes differ between tasks and the prior
        mean stays 0.
        """
        if getattr(self, "n_way", None) is not None:
            return None
        n_classes = self._n_outputs() if is_classifier(self) else None
        n_base = self._n_base_columns()
        if n_base and n_classes is not None:
            targets = np.eye(n_classes)[targets]
            n_classes = None
        if n_classes is None:
            targets = targets.reshape(len(inputs), -1)
        if n_base:
            targets = targets - base_targets(
                inputs[:, -n_base:], targets.shape[1], is_classifier(self)
            )
        fits = [
            random_intercept(
                inputs[rows], targets[rows], task_codes[rows], n_classes=n_classes
            )
            for rows in member_rows
        ]
        return PriorInit(*(np.stack(part) for part in zip(*fits, strict=True)))

    def _choose_weights(self, outputs, valid):
        """Weights of the kinds' predictions, chosen on the held-out folds.

        For two kinds, the weight of the first (the learned one) on a grid
        0, 0.05, ..., 1, each kind's fold models taken at its chosen
        iteration: the smallest weight of `_combine` no worse than the best
        weight beyond noise, held-out task by held-out task (`within_noise`),
        so that the linear model keeps the weight unless the learned one
        clearly scores better.
        """
        names = list(outputs)
        if len(names) == 1:
            return {names[0]: 1.0}
        last = next(iter(outputs.values())).shape[0]
        _, query, units = valid
        grid = np.linspace(0.0, 1.0, 21)
        scores = []
        for w in grid:
            weights = {names[0]: w, names[1]: 1.0 - w}
            combined, _ = self._combine(
                {name: (out, None) for name, out in outputs.items()}, weights
            )
            scores.append(
                pooled_loss(
                    combined,
                    query[1][:last],
                    query[2][:last],
                    is_classifier(self),
                    units[:last],
                )
            )
        w = float(grid[within_noise(scores)])
        return {names[0]: w, names[1]: 1.0 - w}

    def _stacked_network(self, n_inputs, n_members):
        """``n_members`` freshly initialised copies of the learned network."""
        return StackedNetwork(
            [self._build_module(n_inputs, self.n_components) for _ in range(n_members)]
        )

    # -- what a base estimator adds (see MetaRidge); none here -------------------
    def _check_base_estimator(self):
        pass

    def _fit_base_estimator(self, tasks, single):
        return None

    def _base_predictions(self, X):
        return None

    def _n_base_columns(self):
        return 0

    def _head_inputs(self, X, base):
        """The head's inputs: standardised ``X`` (float64)."""
        return self._standardize_X(np.asarray(X, dtype=np.float64))

    def _episode_inputs(self, X):
        """The head's inputs for validated rows in the user's units (float64)."""
        return self._head_inputs(X, self._base_predictions(X))

    # -- adaptation and prediction ---------------------------------------------------
    def _keep_adaptation(self, adapted):
        self.adapted_ = adapted

    def _device_of_module(self):
        return next(self._inference_net.parameters()).device

    def _adapt_batch(self, X, y, weight):
        """Every kind's posterior for many support sets, in float64."""
        X = X.double().unsqueeze(0)
        y = y.unsqueeze(0)
        y = y.double() if y.is_floating_point() else y
        weight = weight.double().unsqueeze(0)
        # A private copy of the network: a custom module runs through
        # functional_call, which must not touch the one other threads use.
        with private_module(self._inference_net) as net, torch.no_grad():
            return {
                name: kind.posterior(X, y, weight) for name, kind in net.kinds.items()
            }

    def _outputs(self, adapted, X):
        """The combined outputs, and variances, ``(n_tasks, n_rows, ...)``.

        ``adapted`` None predicts from the prior (one task).
        """
        X = X.double().unsqueeze(0)
        with private_module(self._inference_net) as net, torch.no_grad():
            kinds = net.kinds
            outputs = {
                name: kind.predict(
                    kind.prior() if adapted is None else adapted[name], X
                )
                for name, kind in kinds.items()
            }
        mean, var = self._combine(outputs, self.kind_weights_)
        return mean[0], None if var is None else var[0]

    def _batched_outputs(self, adapted, X):
        return self._outputs(adapted, X)[0].cpu().numpy()

    def _has_body(self):
        """Whether there is a learned network ``g`` (``n_components > 0``)."""
        return self.n_components > 0

    def _body_outputs(self, X):
        """``g`` of validated ``X`` (float64): what the head sees of it.

        The learned network of the model kept by `fit`, on the head's inputs
        (standardised ``X`` and any base estimator's columns); `adapt` does
        not change it.
        """
        inputs = torch.as_tensor(
            self._episode_inputs(X), device=self._device_of_module()
        )
        batch_size = self.batch_size or len(inputs) or 1
        with private_module(self._inference_net) as net, torch.no_grad():
            body = net.kinds["learned"].body
            outputs = [
                body(inputs[None, start : start + batch_size])[0].cpu().numpy()
                for start in range(0, len(inputs), batch_size)
            ]
        return np.concatenate(outputs)

    def _predict_rows(self, X):
        """Combined outputs and variances (or None) for validated ``X``."""
        inputs = torch.as_tensor(
            self._episode_inputs(X), device=self._device_of_module()
        )
        adapted = getattr(self, "adapted_", None)
        batch_size = self.batch_size or len(inputs) or 1
        means, variances = [], []
        for start in range(0, len(inputs), batch_size):
            mean, var = self._outputs(adapted, inputs[None, start : start + batch_size])
            means.append(mean[0].cpu().numpy())
            variances.append(None if var is None else var[0].cpu().numpy())
        if not means:
            return np.empty((0, self._n_outputs())), np.empty(0)
        var = None if variances[0] is None else np.concatenate(variances)
        return check_finite_outputs(np.concatenate(means)), var

    def __getstate__(self):
        # A copy: on Python 3.11+ object.__getstate__ returns __dict__ itself,
        # and moving the adaptation to the CPU must not move the live one.
        state = dict(super().__getstate__())
        if "adapted_" in state:
            state["adapted_"] = _to_device(state["adapted_"], "cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "adapted_" in state:
            self.adapted_ = _to_device(self.adapted_, self._device_of_module())


def _to_device(value, device):
    """Tensors in (named) tuples and dicts, moved to ``device``."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, tuple):
        moved = [_to_device(v, device) for v in value]
        return type(value)(*moved) if hasattr(value, "_fields") else tuple(moved)
    return value


class ClosedFormClassifierMixin(
    MetaClassifierMixin, TransferClassifierMixin, ClassifierMixin
):
    """Classes from the closed-form kinds: mixture probabilities, both spaces."""

    def _class_scores(self, X):
        X = self._validate_inference_X(X)
        if self.n_way is not None and not hasattr(self, "adapted_"):
            raise ValueError(
                "This episodic (n_way) model has no classes until it sees a "
                "support set: call adapt(X_support, y_support) before predicting."
            )
        return self._predict_rows(X)[0][:, : len(self.classes_)]

    def _combine(self, outputs, weights):
        """Log of the weighted mean of the kinds' class probabilities."""
        proba = sum(
            weights[name] * logits.softmax(-1) for name, (logits, _) in outputs.items()
        )
        return proba.clamp_min(torch.finfo(proba.dtype).tiny).log(), None

    def _n_outputs(self):
        return len(self.classes_) if self.n_way is None else self.n_way
