"""Torch modules of the closed-form meta-learners, vectorised over members.

A *member* is one independently initialised model. Cross-validated early
stopping trains one member per fold of tasks beside the member that sees all
tasks, and all of them run as one batched computation: every parameter carries
a leading member axis, inputs are ``(n_members, n_episodes, n_rows,
n_features)``. The maths of the heads is in `_closed_form`.
"""

import copy
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from sktransfer.meta._closed_form import (
    KernelPosterior,
    RidgePosterior,
    class_prototypes,
    gaussian_nll,
    kernel_posterior,
    kernel_predict,
    prototype_logits,
    ridge_posterior,
    ridge_predict,
)
from sktransfer.meta._inner_loop import batched_forward


def _escape(name):
    return name.replace(".", "__")


class StackedNetwork(nn.Module):
    """Copies of one network with their weights stacked on a member axis.

    The copies are evaluated with `batched_forward` (batched matrix products
    for a plain MLP, ``vmap(functional_call)`` otherwise). ``template`` keeps
    the architecture and the buffers; it is not a submodule, so its own
    weights are neither trained nor saved, but it moves with the module.
    """

    def __init__(self, networks):
        super().__init__()
        self.names = [name for name, _ in networks[0].named_parameters()]
        self.weights = nn.ParameterDict(
            {
                _escape(name): nn.Parameter(
                    torch.stack([dict(n.named_parameters())[name] for n in networks])
                    .detach()
                    .clone()
                )
                for name in self.names
            }
        )
        self.__dict__["template"] = copy.deepcopy(networks[0]).requires_grad_(False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.template._apply(fn)
        return self

    def train(self, mode=True):
        # The template runs the forward pass: dropout follows eval() too.
        super().train(mode)
        self.template.train(mode)
        return self

    def n_outputs(self, n_inputs):
        """Width of the network's output for ``n_inputs`` features."""
        with torch.no_grad():
            return self.template(torch.zeros(1, n_inputs)).shape[-1]

    def stacked(self):
        """The weights as ``{name: (n_members, *shape)}``."""
        return {name: self.weights[_escape(name)] for name in self.names}

    def forward(self, X):
        """``X`` is ``(n_members, n_rows, n_features)``."""
        buffers = {
            name: value.unsqueeze(0).expand(X.shape[0], *value.shape)
            for name, value in self.template.named_buffers()
        }
        return batched_forward(self.template)({**self.stacked(), **buffers}, X)

    def member(self, index):
        """Member ``index`` as a plain module (a copy of the template)."""
        network = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, value in network.named_parameters():
                value.copy_(self.weights[_escape(name)][index])
        return network.requires_grad_(True)


class _Members(nn.Module):
    """Common mechanics of the members of one closed-form model kind.

    Every parameter and buffer registered below it has the member axis first.
    """

    @property
    def n_members(self):
        return next(iter(self.state_dict(keep_vars=True).values())).shape[0]

    def member_state(self, index):
        """Detached copy of member ``index``'s tensors."""
        return {
            name: value[index].detach().clone()
            for name, value in self.state_dict(keep_vars=True).items()
        }

    def load_member_state(self, index, state):
        with torch.no_grad():
            for name, value in self.state_dict(keep_vars=True).items():
                value[index] = state[name]

    def keep_member(self, index):
        """Drop every member but ``index`` (the member axis stays, of size 1)."""
        for module in self.modules():
            for name, value in module._parameters.items():
                if value is not None:
                    module._parameters[name] = nn.Parameter(
                        value[index : index + 1].detach().clone(),
                        requires_grad=value.requires_grad,
                    )
            for name, value in module._buffers.items():
                if value is not None:
                    module._buffers[name] = value[index : index + 1].clone()


def _inverse_softplus(value):
    return torch.log(torch.expm1(torch.as_tensor(value, dtype=torch.float32)))


class PriorInit(NamedTuple):
    """Where a linear head's prior starts, per member.

    ``mean`` ``(n_members, n_inputs + 1, n_outputs)`` and ``std``
    ``(n_members, n_inputs + 1)`` for the weights of ``[x, 1]``, and the noise
    variance ``(n_members,)``. The weights of learned features start at mean 0.
    """

    mean: np.ndarray
    std: np.ndarray
    noise_var: np.ndarray


class RidgeMembers(_Members):
    # The head starts at the empirical-Bayes baseline: a candidate of its own.
    start_is_a_model = True

    """Meta-learned Bayesian linear heads (ALPaCA; R2-D2 for classes).

    Features ``phi(x) = [g(x), x, 1]`` where ``g`` is a learned network (absent
    for the linear kind, ``body=None``); per member a prior mean of the head's
    weights (learned unless ``learn_prior_mean=False``, the episodic label
    space, where it is 0), a diagonal prior standard deviation, a noise
    variance, and for classification an output scale of the one-hot ridge
    predictions (the logits).

    The last ``n_offset`` inputs are a pooled model's predictions (targets,
    or log-odds of the classes) and also the head's offset: the head is
    solved for what the offset leaves of the targets (the one-hot targets
    less the offset's class probabilities) and its output is added to the
    offset (scaled, to the offset's logits).

    ``kernel="rbf"`` or ``"ard"`` adds an RBF term on the inputs to the
    head's covariance (`KernelPosterior`), with a meta-learned standard
    deviation and lengthscale: one lengthscale, and one prior standard
    deviation shared by the slopes of the inputs (``"rbf"``: few
    meta-parameters, for few training classes), or one of each per input
    (``"ard"``). The RBF term starts with the variance of the slopes' part
    and lengthscales ``sqrt(n_inputs)``.
    """

    def __init__(
        self,
        body,
        n_members,
        n_inputs,
        n_outputs,
        *,
        n_offset=0,
        classification,
        prior=None,
        learned_std=0.1,
        scale=10.0,
        kernel="linear",
    ):
        super().__init__()
        self.body = body
        self.n_offset = n_offset
        self.classification = classification
        self.n_outputs = n_outputs
        self.kernel = kernel
        n_learned = 0 if body is None else body.n_outputs(n_inputs)
        n_features = n_learned + n_inputs + 1
        mean = torch.zeros(n_members, n_features, n_outputs)
        std = torch.full((n_members, n_features), learned_std)
        noise = torch.full((n_members,), 0.8)
        if prior is None:
            # The episodic label space: classes differ between tasks, the
            # prior mean stays 0.
            std[:] = 0.1
            self.register_buffer("prior_mean", mean)
        else:
            mean[:, n_learned:] = torch.as_tensor(prior.mean, dtype=mean.dtype)
            std[:, n_learned:] = torch.as_tensor(prior.std, dtype=std.dtype)
            noise[:] = torch.as_tensor(prior.noise_var, dtype=noise.dtype)
            self.prior_mean = nn.Parameter(mean)
        self.prior_std_ = nn.Parameter(_inverse_softplus(std))
        self.noise_var_ = nn.Parameter(_inverse_softplus(noise))
        self._inputs = slice(n_learned, n_learned + n_inputs)
        if kernel != "linear":
            slopes = std[:, self._inputs].square().sum(1).sqrt()
            self.rbf_std_ = nn.Parameter(_inverse_softplus(slopes))
            width = 1 if kernel == "rbf" else n_inputs
            self.log_lengthscale = nn.Parameter(
                torch.full((n_members, width), 0.5 * float(np.log(n_inputs)))
            )
        if classification:
            self.scale_ = nn.Parameter(
                _inverse_softplus(torch.full((n_members,), float(scale)))
            )

    def features(self, X):
        """``phi`` of ``X`` ``(n_members, n_episodes, n_rows, n_inputs)``."""
        n_members, n_episodes, n_rows, n_inputs = X.shape
        parts = [X, torch.ones_like(X[..., :1])]
        if self.body is not None:
            learned = self.body(X.reshape(n_members, n_episodes * n_rows, n_inputs))
            parts.insert(0, learned.reshape(n_members, n_episodes, n_rows, -1))
        return torch.cat(parts, -1)

    def _offset(self, X):
        """The offset of every row, in output units (logits for classes)."""
        if not self.n_offset:
            return None
        offset = X[..., -self.n_offset :]
        if self.classification and self.n_outputs == 2 and self.n_offset == 1:
            offset = torch.cat([torch.zeros_like(offset), offset], -1)
        return offset

    def _targets(self, y, X):
        """What the head is solved for: the targets less the offset's share."""
        if self.classification:
            y = torch.nn.functional.one_hot(y, self.n_outputs).to(X.dtype)
        else:
            y = y.to(X.dtype)
        offset = self._offset(X)
        if offset is None:
            return y
        return y - (offset.softmax(-1) if self.classification else offset)

    def _prior_std(self):
        """The prior standard deviations; the inputs' block shares its mean
        with ``kernel="rbf"``."""
        std = torch.nn.functional.softplus(self.prior_std_)
        if self.kernel != "rbf":
            return std
        slopes = std[:, self._inputs]
        shared = slopes.mean(1, keepdim=True).expand_as(slopes)
        return torch.cat(
            [std[:, : self._inputs.start], shared, std[:, self._inputs.stop :]], 1
        )

    def _hyperparameters(self, n_episodes):
        """Per (member, episode): prior mean and std, noise variance, and
        the RBF term's std and lengthscale (not with the linear kernel)."""
        softplus = torch.nn.functional.softplus
        out = [
            self.prior_mean,
            self._prior_std(),
            softplus(self.noise_var_),
        ]
        if self.kernel != "linear":
            out += [softplus(self.rbf_std_), self.log_lengthscale.exp()]
        return [value.repeat_interleave(n_episodes, dim=0) for value in out]

    def posterior(self, X, y, weight):
        """Posterior of every (member, episode) from its support rows.

        ``y`` holds class indices ``(n_members, n_episodes, n_rows)`` or targets
        ``(..., n_outputs)``. Returns a `RidgePosterior` (a `KernelPosterior`
        with an RBF term) over ``n_members * n_episodes`` tasks, member-major.
        """
        features = self.features(X).flatten(0, 1)
        targets = self._targets(y, X).flatten(0, 1)
        hyper = self._hyperparameters(X.shape[1])
        if self.kernel == "linear":
            return ridge_posterior(features, targets, weight.flatten(0, 1), *hyper)
        return kernel_posterior(
            features, X.flatten(0, 1), targets, weight.flatten(0, 1), *hyper
        )

    def prior(self):
        """The prior as a posterior without data: one episode per member."""
        n_members, n_features = self.prior_std_.shape
        like = self.prior_mean
        if self.kernel == "linear":
            mean, std, noise = self._hyperparameters(1)
            eye = torch.eye(n_features, dtype=like.dtype, device=like.device)
            return RidgePosterior(
                mean, eye.expand(n_members, n_features, n_features), std, noise
            )
        # One support row of weight 0: no data.
        n_inputs = self._inputs.stop - self._inputs.start
        return KernelPosterior(
            like.new_zeros(n_members, 1, n_features),
            like.new_zeros(n_members, 1, n_inputs),
            like.new_zeros(n_members, 1),
            like.new_zeros(n_members, 1, self.n_outputs),
            like.new_ones(n_members, 1, 1),
            *self._hyperparameters(1),
        )

    def _solved_outputs(self, posterior, X, return_var=False):
        """The head's outputs at ``X`` (``n_members * n_episodes`` tasks)."""
        features = self.features(X).flatten(0, 1)
        if self.kernel == "linear":
            return ridge_predict(posterior, features, return_var=return_var)
        return kernel_predict(
            posterior, features, X.flatten(0, 1), return_var=return_var
        )

    def predict(self, posterior, X):
        """Outputs at ``X`` ``(n_members, n_episodes, n_rows, n_inputs)``.

        Regression: the posterior predictive mean and variance (per row).
        Classification: the logits (the scaled one-hot ridge predictions) and
        None.
        """
        n_members, n_episodes = X.shape[:2]
        offset = self._offset(X)
        if self.classification:
            scale = torch.nn.functional.softplus(self.scale_)
            scale = scale.repeat_interleave(n_episodes).view(-1, 1, 1)
            logits = scale * self._solved_outputs(posterior, X)
            logits = logits.unflatten(0, (n_members, n_episodes))
            return (logits if offset is None else logits + offset), None
        mean, var = self._solved_outputs(posterior, X, return_var=True)
        mean = mean.unflatten(0, (n_members, n_episodes))
        return (
            mean if offset is None else mean + offset,
            var.unflatten(0, (n_members, n_episodes)),
        )

    def episode_losses(self, support, query):
        """Per (member, episode) loss of the query rows: ``(n_members, n_episodes)``.

        Regression: the Gaussian negative log-likelihood under the posterior
        predictive; classification: the cross-entropy of the logits.
        """
        X_q, y_q, w_q = query
        out, var = self.predict(self.posterior(*support), X_q)
        if self.classification:
            return _cross_entropy(out, y_q, w_q)
        return gaussian_nll(
            out.flatten(0, 1), var.flatten(0, 1), y_q.flatten(0, 1), w_q.flatten(0, 1)
        ).unflatten(0, X_q.shape[:2])

    def validation_outputs(self, support, query):
        """Query outputs for early stopping: posterior means, or logits."""
        return self.predict(self.posterior(*support), query[0])[0]


class ProtoMembers(_Members):
    """Prototypical networks: class means of the support set in an embedding.

    In the shared label space (``shared=True``) every class also has a learned
    prior prototype, weighted as ``prior_count`` rows, so that a class absent
    from a support set keeps a prototype.
    """

    classification = True
    # A random embedding is no model to fall back to (see `RidgeMembers`).
    start_is_a_model = False

    def __init__(self, body, n_members, n_inputs, n_classes, *, shared):
        super().__init__()
        self.body = body
        self.n_outputs = n_classes
        self.shared = shared
        if shared:
            n_components = body.n_outputs(n_inputs)
            self.prior_prototypes = nn.Parameter(
                torch.zeros(n_members, n_classes, n_components)
            )
            self.prior_count_ = nn.Parameter(_inverse_softplus(torch.ones(n_members)))

    def embed(self, X):
        n_members, n_episodes, n_rows, n_inputs = X.shape
        out = self.body(X.reshape(n_members, n_episodes * n_rows, n_inputs))
        return out.reshape(n_members, n_episodes, n_rows, -1)

    def posterior(self, X, y, weight):
        """Prototypes ``(n_members * n_episodes, n_classes, n_components)``."""
        n_episodes = X.shape[1]
        prior = count = None
        if self.shared:
            prior = self.prior_prototypes.repeat_interleave(n_episodes, dim=0)
            count = torch.nn.functional.softplus(self.prior_count_)
            count = count.repeat_interleave(n_episodes)
        return class_prototypes(
            self.embed(X).flatten(0, 1),
            y.flatten(0, 1),
            weight.flatten(0, 1),
            self.n_outputs,
            prior=prior,
            prior_count=count,
        )[0]

    def prior(self):
        """The prior prototypes (shared label space): one episode per member."""
        return self.prior_prototypes

    def predict(self, prototypes, X):
        n_members, n_episodes = X.shape[:2]
        logits = prototype_logits(self.embed(X).flatten(0, 1), prototypes)
        return logits.unflatten(0, (n_members, n_episodes)), None

    def episode_losses(self, support, query):
        X_q, y_q, w_q = query
        logits, _ = self.predict(self.posterior(*support), X_q)
        return _cross_entropy(logits, y_q, w_q)

    def validation_outputs(self, support, query):
        """Query logits for early stopping."""
        return self.predict(self.posterior(*support), query[0])[0]


def _cross_entropy(logits, labels, weight):
    """Weighted mean cross-entropy per (member, episode)."""
    per_row = torch.nn.functional.cross_entropy(
        logits.flatten(0, 2), labels.flatten(), reduction="none"
    ).view_as(weight)
    return (per_row * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
