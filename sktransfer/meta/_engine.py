"""The skorch engine of meta-training: one batch is one meta-iteration."""

from dataclasses import dataclass

import torch
import tqdm
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from torch import nn

from sktransfer.meta._inner_loop import (
    adapt,
    batched_forward,
    expand_params,
    init_lstm_update,
    meta_loss,
    task_losses,
    task_scores,
)
from sktransfer.tasks._sampling import sample_episodes
from sktransfer.utils._divergence import (
    all_finite,
    divergence_error,
    finite_weights,
    restore_weights,
)
from sktransfer.utils._state import private_module


@dataclass(frozen=True, kw_only=True)
class MetaTrainingConfig:
    """What one meta-training call runs, given to the engine in `meta_train`.

    Attributes
    ----------
    n_iterations : int
        Meta-iterations of the call (early stopping may end it sooner).
    iterations_per_epoch : int
        Meta-iterations of an epoch (one row of the history).
    meta_batch_size : int
        Episodes (tasks) of a meta-iteration.
    k_shot, n_query : int
        Support and query rows of an episode, per class or per task.
    n_way : int or None
        Classes of an episode; None in the shared label space.
    seed : int
        Seeds the generator that draws the episodes.
    """

    n_iterations: int
    iterations_per_epoch: int
    meta_batch_size: int
    k_shot: int
    n_query: int
    n_way: int | None
    seed: int


@dataclass(frozen=True, kw_only=True)
class MAMLTrainingConfig(MetaTrainingConfig):
    """`MetaTrainingConfig` of the MAML family (`MetaTrainer`).

    Attributes
    ----------
    n_inner_steps : int
        Inner steps of meta-training.
    n_adapt_steps : int
        Inner steps of adaptation (to the validation episodes).
    first_order : bool
        Whether the meta-gradient drops the second-order terms.
    """

    n_inner_steps: int
    n_adapt_steps: int
    first_order: bool


@dataclass(frozen=True, kw_only=True)
class ClosedFormTrainingConfig(MetaTrainingConfig):
    """`MetaTrainingConfig` of the closed-form family (`ClosedFormTrainer`).

    Attributes
    ----------
    random_support_size : bool
        Whether every episode's support size is drawn from 1 to ``k_shot``.
    patience : int
        Scorings without an improvement of ``tol`` before a kind stops.
    tol : float
        The improvement of the held-out loss that counts.
    """

    random_support_size: bool
    patience: int
    tol: float


class MetaModule(nn.Module):
    """The user's network plus what the inner update learns.

    ``learn_inner_lr``: False for a fixed step size ``inner_lr``, True for one
    learned step size per weight (Meta-SGD, ``inner_lrs``), ``"lstm"`` for
    the learned recurrent update of Ravi & Larochelle (``lstm``, the
    parameters of `init_lstm_update`). Both are meta-learned with the
    network's weights.
    """

    def __init__(self, net, adapt_names, inner_lr, learn_inner_lr):
        super().__init__()
        self.net = net
        self.adapt_names = list(adapt_names)
        self.inner_lr = inner_lr
        self.inner_lrs = nn.ParameterDict()
        self.lstm = nn.ParameterDict()
        params = dict(net.named_parameters())
        if learn_inner_lr == "lstm":
            dtype = next(iter(params.values())).dtype
            for name, value in init_lstm_update(inner_lr).items():
                self.lstm[name] = nn.Parameter(value.to(dtype))
        elif learn_inner_lr:
            for name in self.adapt_names:
                self.inner_lrs[name.replace(".", "__")] = nn.Parameter(
                    torch.full_like(params[name], inner_lr)
                )

    def inner_update(self, detach=False):
        """The keyword arguments of `adapt` that choose its update.

        ``detach=True`` gives the learned parts without their graph (for
        adaptation outside meta-training).
        """

        def own(value):
            return value.detach() if detach else value

        if len(self.lstm):
            return {"lstm": {n: own(v) for n, v in self.lstm.items()}}
        if len(self.inner_lrs) == 0:
            return {"inner_lrs": dict.fromkeys(self.adapt_names, self.inner_lr)}
        return {
            "inner_lrs": {
                n: own(self.inner_lrs[n.replace(".", "__")]) for n in self.adapt_names
            }
        }

    def forward(self, X):
        return self.net(X)


class MetaProgressBar(Callback):
    """One progress bar over a whole meta-training run, with the epoch loss.

    skorch's ``ProgressBar`` draws one bar per epoch, which for meta-training
    (an epoch is a pass of meta-batches, often a handful of iterations) is a
    flicker of short bars.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.pbar_ = tqdm.tqdm(
            total=net.config_.n_iterations, desc="meta-training", unit="it"
        )

    def on_batch_end(self, net, **kwargs):
        self.pbar_.update()

    def on_epoch_end(self, net, **kwargs):
        self.pbar_.set_postfix(train_loss=net.history[-1, "train_loss"], refresh=False)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.pbar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pbar_", None)
        return state


class MetaEngine(NeuralNet):
    """skorch engine of meta-training: one batch is one meta-iteration.

    skorch supplies the callbacks, the history, the progress bar, the device
    and the optimiser. Its data loop does not fit meta-training, so
    ``get_iterator`` yields meta-iteration numbers, ``train_step`` (of each
    family) draws a meta-batch of tasks on the device and takes one
    meta-gradient step, and ``run_single_epoch`` records the epoch's mean loss
    with a single host synchronisation instead of one ``.item()`` per step.
    ``end_epoch`` is each family's validation at the end of an epoch; it
    returns False to stop. A call is configured by one frozen
    `MetaTrainingConfig` given to `meta_train`, held as ``config_`` for the
    call only.
    """

    def get_default_callbacks(self):
        return [("epoch_timer", EpochTimer()), ("print_log", PrintLog())]

    def get_split_datasets(self, X, y=None, **fit_params):
        return X["train"], X["valid"]

    def get_iterator(self, dataset, training=False):
        return range(self.config_.iterations_per_epoch)

    def meta_train(self, train, valid, config):
        """Meta-train on the pool(s) ``train`` as ``config`` says; return self.

        ``valid`` holds the family's validation episodes, or None.
        ``config`` (a `MetaTrainingConfig`) holds for this call only, as
        ``config_``; the episodes are drawn with a generator seeded from
        ``config.seed``. Goes on from the current weights and history
        (skorch's ``partial_fit``).
        """
        self.config_ = config
        try:
            return self.partial_fit({"train": train, "valid": valid})
        finally:
            del self.config_

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Meta-train on ``X["train"]``, validating on ``X["valid"]`` (or None)."""
        self.pool_, valid = self.get_split_datasets(X)
        self.begin_training(valid)
        epoch_kwargs = {"dataset_train": self.pool_, "dataset_valid": valid}
        try:
            remaining = self.config_.n_iterations
            go_on = True
            while remaining > 0 and go_on:
                steps = min(self.config_.iterations_per_epoch, remaining)
                self.notify("on_epoch_begin", **epoch_kwargs)
                self.run_single_epoch(
                    range(steps), training=True, prefix="train", step_fn=self.train_step
                )
                go_on = valid is None or self.end_epoch(valid)
                self.notify("on_epoch_end", **epoch_kwargs)
                remaining -= steps
        finally:
            self.end_training()
        return self

    def begin_training(self, valid):
        """Set up what the training steps share (called before the first epoch):
        the generator of the episodes, on the engine's device."""
        self.generator_ = torch.Generator(device=self.device).manual_seed(
            self.config_.seed
        )

    def end_training(self):
        """Drop what `begin_training` set up."""
        del self.pool_, self.generator_
        self.__dict__.pop("last_finite_", None)

    def set_training(self, training=True):
        """Train (True) or evaluation (False) mode of the module and criterion.

        What skorch's private ``_set_training`` does for this engine's one
        module and one criterion, through torch's public ``train``.
        """
        self.module_.train(training)
        self.criterion_.train(training)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run the epoch's meta-iterations; record the mean loss.

        The divergence guard: every step's loss and, at the end, every weight
        are checked on the device, and read with the mean loss in the epoch's
        one host synchronisation. On a non-finite value the weights of the
        last finite epoch are restored and `divergence_error` is raised.
        """
        self.set_training(training)
        if "last_finite_" not in self.__dict__:
            self.last_finite_ = finite_weights(self.module_)
        total = None
        losses = []
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                try:
                    step = step_fn(batch)
                except torch.linalg.LinAlgError as exc:
                    # A closed-form solve on weights that left the floats.
                    raise self.diverged(len(losses)) from exc
                loss = step["loss"].detach()
                total = loss if total is None else total + loss
                losses.append(loss)
                self.notify("on_batch_end", batch=batch, training=training, **step)
        except KeyboardInterrupt:
            # A callback stops training within the epoch (skorch's convention;
            # Ctrl-C is another exception, see `interrupts_propagate`): the row
            # counts the steps taken, so n_iter_, history_ and weights agree.
            if losses:
                summed = self.checked_total(losses, total)
                self.history.record(prefix + "_loss", summed / len(losses))
            self.history.record(prefix + "_batch_count", len(losses))
            raise
        summed = self.checked_total(losses, total)
        self.history.record(prefix + "_loss", summed / len(iterator))
        self.history.record(prefix + "_batch_count", len(iterator))

    def checked_total(self, losses, total):
        """The epoch's summed loss as a float, read with the divergence check.

        One host synchronisation reads the sum and whether every step's loss
        and every weight are finite; then the weights are kept as the last
        finite ones, or `diverged` restores those and raises.
        """
        finite = torch.cat(
            [
                torch.isfinite(torch.stack(losses)),
                all_finite(self.module_.parameters()).reshape(1),
            ]
        )
        summed, *flags = torch.cat(
            [total.reshape(1).double(), finite.double()]
        ).tolist()
        if not all(flags):
            raise self.diverged(min(flags.index(0.0), len(losses) - 1))
        self.last_finite_ = finite_weights(self.module_)
        return summed

    # The parameters a divergence error advises to lower.
    learning_rates = "meta_lr"

    def iterations_done(self, rows=None):
        """Meta-iterations of the history's epochs (``rows``, default all); an
        epoch interrupted as it began (Ctrl-C, a callback) has no batches."""
        rows = self.history if rows is None else rows
        return sum(row.get("train_batch_count", 0) for row in rows)

    def diverged(self, step):
        """Restore the last finite weights; the error naming meta-iteration
        ``step`` (0-based) of the current epoch."""
        restore_weights(self.module_, self.last_finite_)
        done = self.iterations_done(self.history[:-1])
        where = f"meta-iteration #{done + step + 1} (epoch #{len(self.history)})"
        return divergence_error(where, self.learning_rates)


class MetaTrainer(MetaEngine):
    """The engine of the MAML family.

    With held-out validation episodes, each epoch ends by adapting to them and
    recording ``valid_loss`` and ``valid_score`` (accuracy or R² on their
    query rows), which skorch's ``EarlyStopping`` can monitor.
    """

    learning_rates = "meta_lr or inner_lr"

    def begin_training(self, valid):
        super().begin_training(valid)
        self.forward_ = batched_forward(self.module_.net)

    def end_training(self):
        super().end_training()
        del self.forward_

    def end_epoch(self, valid):
        self.validate_episodes(valid)
        return True

    def adapt_episodes(self, X, y, weight, n_steps):
        """Adapt the current weights to many support sets, without meta-gradient.

        As `adapt` does it: in train mode, from detached weights and step
        sizes (or update rule). Returns the batched adapted parameters,
        detached. The module is not changed (a private copy runs, see
        `private_module`), so threads may adapt and predict at once.
        """
        meta = self.module_
        params = {
            name: value.detach().requires_grad_()
            for name, value in meta.net.named_parameters()
        }
        with private_module(meta.net, training=True) as net, torch.enable_grad():
            adapted = adapt(
                batched_forward(net),
                self.criterion_,
                expand_params(params, X.shape[0]),
                X,
                y,
                weight,
                **meta.inner_update(detach=True),
                n_steps=n_steps,
                adapt_names=meta.adapt_names,
                create_graph=False,
            )
        return {name: value.detach() for name, value in adapted.items()}

    def validate_episodes(self, episodes):
        """Adapt to held-out episodes; record their query loss and score."""
        support, query = episodes
        adapted = self.adapt_episodes(*support, self.config_.n_adapt_steps)
        self.set_training(False)
        with torch.no_grad():
            output = self.forward_(adapted, query[0])
            loss = task_losses(self.criterion_, output, *query[1:]).mean()
            score = task_scores(output, *query[1:]).mean()
        self.history.record("valid_loss", float(loss))
        self.history.record("valid_score", float(score))

    def train_step(self, batch, **fit_params):
        config = self.config_
        self.optimizer_.zero_grad()
        support, query = sample_episodes(
            self.pool_,
            config.meta_batch_size,
            config.k_shot,
            config.n_query,
            n_way=config.n_way,
            generator=self.generator_,
        )
        meta = self.module_
        loss = meta_loss(
            self.forward_,
            self.criterion_,
            dict(meta.net.named_parameters()),
            support,
            query,
            **meta.inner_update(),
            n_steps=config.n_inner_steps,
            adapt_names=meta.adapt_names,
            first_order=config.first_order,
        )
        loss.backward()
        self.optimizer_.step()
        return {"loss": loss}


class ClosedFormNet(nn.Module):
    """The model kinds of a closed-form meta-learner, trained side by side.

    ``kinds`` maps a name (``"learned"``, ``"linear"``) to the members of that
    kind (`RidgeMembers` or `ProtoMembers`), all with the same number of
    members. Kinds whose early stopping has ended are dropped from
    ``active`` and take no more steps.
    """

    def __init__(self, kinds):
        super().__init__()
        self.kinds = nn.ModuleDict(kinds)
        self.active = list(kinds)

    @property
    def n_members(self):
        return next(iter(self.kinds.values())).n_members

    def forward(self, support, query):
        """Sum over active kinds and members of each member's mean query loss."""
        return sum(
            self.kinds[name].episode_losses(support, query).mean(1).sum()
            for name in self.active
        )


def stack_episodes(episodes):
    """Stack per-member ``(support, query)`` episodes on a leading member axis.

    Members whose pools give episodes of fewer rows (their tasks have fewer
    classes) are padded with weight-0 rows to the widest.
    """

    def stack(parts):
        rows = max(part.shape[1] for part in parts)
        return torch.stack(
            [
                torch.nn.functional.pad(
                    part,
                    (0, 0) * (part.ndim - 2) + (0, rows - part.shape[1]),
                )
                for part in parts
            ]
        )

    return tuple(
        tuple(stack(part) for part in zip(*sides, strict=True))
        for sides in zip(*episodes, strict=True)
    )


class ClosedFormTrainer(MetaEngine):
    """The engine of the closed-form family: members, cross-validated stopping.

    ``X["train"]`` is one task pool per member; every step draws
    ``meta_batch_size`` episodes for each member from its own pool (with a
    support size drawn uniformly from 1 to ``k_shot`` per episode when
    ``config_.random_support_size``) and takes one step on the sum of the
    members' losses. With ``X["valid"]``, fixed episodes of each fold
    member's held-out tasks (the last member, which sees every task, has
    weight-0 copies), every epoch ends by scoring each kind on them, pooled
    over folds, and recording ``valid_loss_<kind>`` in the history (the
    starting point is scored too). `keep_best` keeps, per kind, the last
    member's weights of the candidate chosen by the one-standard-error rule;
    a kind stops after ``config_.patience`` epochs without an improvement
    of ``config_.tol``, and training stops when every kind has.
    """

    def begin_training(self, valid):
        super().begin_training(valid)
        net = self.module_
        net.active = list(net.kinds)
        self.candidates_ = {name: [] for name in net.kinds}
        self.patience_left_ = dict.fromkeys(net.kinds, self.config_.patience)
        if valid is not None:
            # A start that is a model (the empirical-Bayes head) is a
            # candidate too: iteration 0.
            self.score_members(valid, iteration=0)

    def draw(self, pools):
        """One meta-batch of episodes for every member, stacked."""
        config = self.config_
        n = config.meta_batch_size
        episodes = []
        for pool in pools:
            size = None
            if config.random_support_size:
                size = torch.randint(
                    1,
                    config.k_shot + 1,
                    (n,),
                    generator=self.generator_,
                    device=pool.X.device,
                )
            episodes.append(
                sample_episodes(
                    pool,
                    n,
                    config.k_shot,
                    config.n_query,
                    n_way=config.n_way,
                    generator=self.generator_,
                    support_size=size,
                )
            )
        return stack_episodes(episodes)

    def train_step(self, batch, **fit_params):
        self.optimizer_.zero_grad()
        support, query = self.draw(self.pool_)
        loss = self.module_(support, query)
        loss.backward()
        self.optimizer_.step()
        n = len(self.module_.active) * len(self.pool_)
        return {"loss": loss / n}

    def end_epoch(self, valid):
        """Score every kind on the held-out folds; keep the best full member."""
        return self.score_members(valid, self.iterations_done(), record=True)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Score the kinds that have no candidate yet: a callback stopped
        training before the first epoch ended (skorch's convention)."""
        valid = None if X is None else X["valid"]
        if valid is not None and not all(self.candidates_.values()):
            self.score_members(valid, self.iterations_done())

    def score_members(self, valid, iteration, record=False):
        """Score the fold members of every active kind, pooled over folds.

        Every scoring is a candidate (the last member's weights, the fold
        members' outputs, the pooled loss and its standard error); a kind
        without an improvement of ``tol`` over its best for ``patience``
        scorings stops. Returns whether any kind is still active.
        """
        net = self.module_
        support, query, self.units_ = valid
        last = net.n_members - 1
        self.set_training(False)
        with torch.no_grad():
            for name, kind in net.kinds.items():
                if name not in net.active or (
                    iteration == 0 and not kind.start_is_a_model
                ):
                    continue
                try:
                    outputs = kind.validation_outputs(support, query)[:last]
                except torch.linalg.LinAlgError as exc:  # ill-conditioned scales
                    where = (
                        f"meta-iteration #{iteration}"
                        if iteration
                        else "the start of meta-training (the initial model)"
                    )
                    raise divergence_error(where, self.learning_rates) from exc
                loss, per_unit = pooled_loss(
                    outputs,
                    query[1][:last],
                    query[2][:last],
                    kind.classification,
                    self.units_[:last],
                )
                if record:
                    self.history.record(f"valid_loss_{name}", loss)
                candidates = self.candidates_[name]
                best = min((c[1] for c in candidates), default=float("inf"))
                if loss < best - self.config_.tol:
                    self.patience_left_[name] = self.config_.patience
                else:
                    self.patience_left_[name] -= 1
                    if self.patience_left_[name] <= 0:
                        net.active.remove(name)
                candidates.append(
                    (iteration, loss, per_unit, kind.member_state(last), outputs)
                )
        self.set_training(True)
        return bool(net.active)

    def keep_best(self):
        """Load each kind's chosen full member and drop the fold members.

        The paired one-standard-error rule chooses (`within_noise`): the
        earliest candidate no worse than the best one beyond noise, held-out
        task by held-out task, so that a longer training must show more than
        noise to be kept. Where the start is a model of its own (scored at
        iteration 0, ``start_is_a_model``), a trained candidate replaces it
        only when it scores better by more than two paired standard errors
        (`clearly_better`): the best of many noisy scorings is an optimistic
        estimate, and the start is the empirical-Bayes model the user would
        otherwise fit. Returns, per kind, the meta-iteration chosen and the
        fold members' outputs on the validation episodes there. The
        optimiser starts afresh on the remaining weights.
        """
        net = self.module_
        last = net.n_members - 1
        chosen = {}
        for name, kind in net.kinds.items():
            candidates = self.candidates_[name]
            index = within_noise([(c[1], c[2]) for c in candidates])
            start = candidates[0]
            if index and start[0] == 0:
                index = index if clearly_better(candidates[index][2], start[2]) else 0
            iteration, _, _, state, outputs = candidates[index]
            kind.load_member_state(last, state)
            chosen[name] = (iteration, outputs)
            kind.keep_member(last)
        net.active = list(net.kinds)
        self.initialize_optimizer()
        del self.candidates_, self.patience_left_, self.units_
        return chosen


def pooled_loss(outputs, target, weight, classification, units):
    """Mean query loss over every row, and the mean loss of every unit.

    The squared error of the outputs (mean over targets), or the
    cross-entropy of logits; padding rows (weight 0) do not count. ``units``
    ``(n_members, n_episodes)`` numbers the unit (a held-out task) of every
    episode; the per-unit losses pair candidates scored on the same episodes.
    """
    if classification:
        per_row = torch.nn.functional.cross_entropy(
            outputs.flatten(0, -2), target.flatten(), reduction="none"
        ).view_as(weight)
    else:
        per_row = (outputs - target).square().mean(-1)
    loss = (per_row * weight).sum(-1).flatten()
    total = weight.sum(-1).flatten()
    n_units = int(units.max()) + 1
    unit_loss = torch.zeros(n_units, dtype=loss.dtype, device=loss.device)
    unit_weight = torch.zeros_like(unit_loss)
    unit_loss.index_add_(0, units.flatten(), loss)
    unit_weight.index_add_(0, units.flatten(), total)
    present = unit_weight > 0
    mean = float(loss.sum() / total.sum().clamp_min(1.0))
    return mean, (unit_loss[present] / unit_weight[present]).cpu()


def clearly_better(per_unit, reference, n_errors=2.0):
    """Whether per-unit losses beat the reference's beyond ``n_errors``
    standard errors of their mean paired difference."""
    diff = per_unit - reference
    error = float(diff.std() / len(diff) ** 0.5) if len(diff) > 1 else 0.0
    return float(diff.mean()) < -n_errors * error


def within_noise(losses):
    """Index of the first candidate no worse than the best beyond noise.

    ``losses`` is a list of ``(pooled loss, per-unit losses)``. A candidate
    is kept when its mean paired difference with the best candidate, over
    units, is at most one standard error of that difference (the
    one-standard-error rule, paired); the best candidate always qualifies.
    """
    best = min(range(len(losses)), key=lambda i: losses[i][0])
    reference = losses[best][1]
    for i, (_, per_unit) in enumerate(losses):
        if not clearly_better(reference, per_unit, n_errors=1.0):
            return i
    return best
