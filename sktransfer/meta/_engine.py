"""The skorch engine of meta-training: one batch is one meta-iteration."""

import torch
import tqdm
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from torch import nn

from sktransfer.meta._inner_loop import (
    adapt,
    batched_forward,
    expand_params,
    meta_loss,
    task_losses,
    task_scores,
)
from sktransfer.tasks._sampling import sample_episodes


class MetaModule(nn.Module):
    """The user's network plus, for Meta-SGD, one learned step size per weight."""

    def __init__(self, net, adapt_names, inner_lr, learn_inner_lr):
        super().__init__()
        self.net = net
        self.adapt_names = list(adapt_names)
        self.inner_lr = inner_lr
        self.inner_lrs = nn.ParameterDict()
        if learn_inner_lr:
            params = dict(net.named_parameters())
            for name in self.adapt_names:
                self.inner_lrs[name.replace(".", "__")] = nn.Parameter(
                    torch.full_like(params[name], inner_lr)
                )

    def step_sizes(self):
        if len(self.inner_lrs) == 0:
            return dict.fromkeys(self.adapt_names, self.inner_lr)
        return {n: self.inner_lrs[n.replace(".", "__")] for n in self.adapt_names}

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
            total=net.episode["n_iterations"], desc="meta-training", unit="it"
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


class MetaTrainer(NeuralNet):
    """skorch engine for meta-training: one batch is one meta-iteration.

    skorch supplies the callbacks, the history, the progress bar, the device
    and the optimiser. Its data loop does not fit meta-training, so
    ``get_iterator`` yields meta-iteration numbers, ``train_step`` draws a
    meta-batch of tasks on the device and takes one meta-gradient step, and
    ``run_single_epoch`` records the epoch's mean loss with a single host
    synchronisation instead of one ``.item()`` per step. With held-out
    validation episodes, each epoch ends by adapting to them and recording
    ``valid_loss`` and ``valid_score`` (accuracy or R² on their query rows),
    which skorch's ``EarlyStopping`` can monitor.
    """

    def __init__(self, *args, episode=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.episode = episode

    def get_default_callbacks(self):
        return [("epoch_timer", EpochTimer()), ("print_log", PrintLog())]

    def get_split_datasets(self, X, y=None, **fit_params):
        return X["train"], X["valid"]

    def get_iterator(self, dataset, training=False):
        return range(self.iterations_per_epoch_)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Meta-train on ``X["train"]`` (a task pool), validating on ``X["valid"]``.

        ``X["valid"]`` is ``None`` or fixed ``(support, query)`` episodes.
        """
        self.pool_, valid = self.get_split_datasets(X)
        self.forward_ = batched_forward(self.module_.net)
        epoch_kwargs = {"dataset_train": self.pool_, "dataset_valid": valid}
        try:
            remaining = self.episode["n_iterations"]
            while remaining > 0:
                steps = min(self.iterations_per_epoch_, remaining)
                self.notify("on_epoch_begin", **epoch_kwargs)
                self.run_single_epoch(
                    range(steps), training=True, prefix="train", step_fn=self.train_step
                )
                if valid is not None:
                    self.validate_episodes(valid)
                self.notify("on_epoch_end", **epoch_kwargs)
                remaining -= steps
        finally:
            del self.pool_, self.forward_
        return self

    def adapt_episodes(self, X, y, weight, n_steps):
        """Adapt the current weights to many support sets, without meta-gradient.

        As `adapt` does it: in train mode, from detached weights and step
        sizes. Returns the batched adapted parameters, detached; the module's
        mode is restored.
        """
        meta = self.module_
        params = {
            name: value.detach().requires_grad_()
            for name, value in meta.net.named_parameters()
        }
        lrs = {
            name: lr.detach() if torch.is_tensor(lr) else lr
            for name, lr in meta.step_sizes().items()
        }
        was_training = meta.training
        meta.train()
        try:
            with torch.enable_grad():
                adapted = adapt(
                    batched_forward(meta.net),
                    self.criterion_,
                    expand_params(params, X.shape[0]),
                    X,
                    y,
                    weight,
                    inner_lrs=lrs,
                    n_steps=n_steps,
                    adapt_names=meta.adapt_names,
                    create_graph=False,
                )
        finally:
            meta.train(was_training)
        return {name: value.detach() for name, value in adapted.items()}

    def validate_episodes(self, episodes):
        """Adapt to held-out episodes; record their query loss and score."""
        support, query = episodes
        adapted = self.adapt_episodes(*support, self.episode["n_adapt_steps"])
        self._set_training(False)
        with torch.no_grad():
            output = self.forward_(adapted, query[0])
            loss = task_losses(self.criterion_, output, *query[1:]).mean()
            score = task_scores(output, *query[1:]).mean()
        self.history.record("valid_loss", float(loss))
        self.history.record("valid_score", float(score))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        self._set_training(training)
        total = None
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch)
            loss = step["loss"].detach()
            total = loss if total is None else total + loss
            self.notify("on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_loss", float(total) / len(iterator))
        self.history.record(prefix + "_batch_count", len(iterator))

    def train_step(self, batch, **fit_params):
        episode = self.episode
        self.optimizer_.zero_grad()
        support, query = sample_episodes(
            self.pool_,
            episode["meta_batch_size"],
            episode["k_shot"],
            episode["n_query"],
            n_way=episode["n_way"],
            generator=self.generator_,
        )
        meta = self.module_
        loss = meta_loss(
            self.forward_,
            self.criterion_,
            dict(meta.net.named_parameters()),
            support,
            query,
            inner_lrs=meta.step_sizes(),
            n_steps=episode["n_inner_steps"],
            adapt_names=meta.adapt_names,
            first_order=episode["first_order"],
        )
        loss.backward()
        self.optimizer_.step()
        return {"loss": loss}
