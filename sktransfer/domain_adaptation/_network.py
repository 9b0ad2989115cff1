"""The DANN network and its skorch training engine."""

import numpy as np
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

from sktransfer.domain_adaptation._gradient_reversal import (
    GradientReversal,
    annealed_lr,
    reversal_weight,
)
from sktransfer.nn import MLP


class DANNModule(nn.Module):
    """Feature extractor, label predictor and domain classifier of DANN.

    ``forward(X)`` gives the label predictor's outputs; with ``domain`` (the
    training loop's call) it also gives the domain classifier's logit, taken
    through the gradient-reversal layer, and the outputs of the source-only
    network trained beside it (None without one). ``output="features"`` gives
    the feature extractor's output.
    """

    def __init__(
        self,
        n_features=1,
        n_outputs=1,
        hidden_layer_sizes=(64, 64),
        domain_hidden_layer_sizes=(64, 64),
        activation="relu",
        source_only=False,
    ):
        super().__init__()
        network = MLP(n_features, n_outputs, tuple(hidden_layer_sizes), activation)
        self.features = network[:-1]
        self.head = network[-1]
        self.reversal = GradientReversal(0.0)
        self.domain_classifier = MLP(
            self.head.in_features, 1, tuple(domain_hidden_layer_sizes), activation
        )
        self.source_only = (
            MLP(n_features, n_outputs, tuple(hidden_layer_sizes), activation)
            if source_only
            else None
        )

    def forward(self, X, domain=None, output="labels"):
        z = self.features(X)
        if output == "features":
            return z
        labels = self.head(z)
        if domain is None:
            return labels
        twin = None if self.source_only is None else self.source_only(X)
        return labels, self.domain_classifier(self.reversal(z)).squeeze(1), twin


class ReversalSchedule(Callback):
    """Sets the reversal weight (and the annealed learning rate) before each step.

    ``p``, the progress, runs from 0 at the first step to 1 at the last.
    """

    def __init__(self, total_steps, max_weight, lr, anneal):
        self.total_steps = total_steps
        self.max_weight = max_weight
        self.lr = lr
        self.anneal = anneal

    def initialize(self):
        self.step_ = 0
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        progress = min(self.step_ / max(self.total_steps - 1, 1), 1.0)
        net.module_.reversal.weight = reversal_weight(progress, self.max_weight)
        if self.anneal:
            for group in net.optimizer_.param_groups:
                group["lr"] = annealed_lr(progress, self.lr)
        net.history.record_batch("reversal_weight", net.module_.reversal.weight)
        self.step_ += 1


class DANNTrainer(NeuralNet):
    """skorch engine of DANN: the label loss on source rows plus the domain loss.

    ``X`` is a dict of the standardised rows (``X``) and the domain of each
    row (``domain``: 1 source, 0 target); target rows carry a placeholder
    label. The domain loss gives the source and the target half the weight
    each, whatever their sizes.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        labels, domain_logit, twin = y_pred
        is_source = X["domain"].to(labels.device) > 0.5
        zero = labels.sum() * 0.0
        label_loss = (
            self.criterion_(labels[is_source], y_true[is_source]).mean()
            if is_source.any()
            else zero
        )
        target_d = is_source.to(domain_logit.dtype).neg().add(1.0)  # 1 = target
        per_row = nn.functional.binary_cross_entropy_with_logits(
            domain_logit, target_d, reduction="none"
        )
        # A batch without both domains (or a fit without target) has none.
        if is_source.all() or not is_source.any():
            domain_loss = zero
        else:
            domain_loss = (per_row[is_source].mean() + per_row[~is_source].mean()) / 2
        loss = label_loss + domain_loss
        if twin is not None and is_source.any():
            loss = loss + self.criterion_(twin[is_source], y_true[is_source]).mean()
        self.history.record_batch("label_loss", label_loss.item())
        self.history.record_batch("domain_loss", domain_loss.item())
        return loss


class EpochMeans(Callback):
    """Records the epoch means of the batch-level label and domain losses."""

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1]["batches"]
        for key in ("label_loss", "domain_loss"):
            values = [b[key] for b in batches if key in b]
            if values:
                net.history.record(key, float(np.mean(values)))
