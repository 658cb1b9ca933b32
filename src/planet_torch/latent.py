"""The latent state and the interface every latent dynamics model has (paper section 3).

A latent dynamics model keeps a model state per step: a deterministic part, the belief h_t,
and a stochastic part, the state s_t, drawn from a diagonal Gaussian. The three designs the
paper compares (its figure 2) differ in which part they have:

    rssm   (rssm.py)   h_t = f(h_{t-1}, s_{t-1}, a_t), s_t ~ p(s_t | h_t)     both parts
    ssm    (ssm.py)    s_t ~ p(s_t | s_{t-1}, a_t)                           stochastic only
    drnn   (drnn.py)   h_t = f(h_{t-1}, a_t, e_t)                            deterministic only

A part a model does not have is a tensor of size 0 in the last dimension, so `LatentState`,
the planner, the agent and the objective handle every design the same way. Each model says
which terms of the bound it provides (`LatentDynamics.stochastic`: a KL term, or none) and
which of its states the image and reward likelihoods read (`likelihood_states`).

The action index follows the replay convention: row t holds the action a_t that led to o_t
(what the paper writes a_{t-1}). The models hold no recurrent state between calls: every
method takes the previous `LatentState` and returns the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Independent, Normal
from torch.nn import functional as F

from planet_torch.config import ModelConfig


class LatentState(NamedTuple):
    """Belief h_t and state s_t with the Gaussian the state was drawn from.

    Every field shares the leading dimensions (batch, or batch and time). A model without
    a belief has belief (..., 0); one without a stochastic state has state, mean, std (..., 0).
    """

    belief: torch.Tensor
    """h_t, (..., belief_size)."""
    state: torch.Tensor
    """s_t, a sample of Normal(mean, std), (..., state_size)."""
    mean: torch.Tensor
    """Mean of the prior or posterior over s_t, (..., state_size)."""
    std: torch.Tensor
    """Standard deviation of that Gaussian, (..., state_size)."""

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> LatentState:
        """Apply fn to every field (indexing, reshaping, moving)."""
        return LatentState(*(fn(x) for x in self))

    def detach(self) -> LatentState:
        """The same state cut from the graph."""
        return self.map(torch.Tensor.detach)

    def feat(self) -> torch.Tensor:
        """[h_t, s_t], (..., belief_size + state_size): what decoder and reward model read."""
        return torch.cat([self.belief, self.state], dim=-1)

    def dist(self) -> Independent:
        """The diagonal Gaussian over s_t, its event the state_size dimensions."""
        # std = softplus + min_std is positive by construction; validating it would read a
        # tensor on the host (a device sync) every time.
        return Independent(Normal(self.mean, self.std, validate_args=False), 1,
                           validate_args=False)

    @staticmethod
    def stack(states: list[LatentState], dim: int = 1) -> LatentState:
        """Stack per-step states along a new time dimension (default: batch-major, dim 1)."""
        return LatentState(*(torch.stack(parts, dim) for parts in zip(*states, strict=True)))


def gaussian(params: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std = softplus(.) + min_std of a diagonal Gaussian from a layer's output
    (..., 2 * size): the first half is the mean."""
    mean, raw_std = params.chunk(2, dim=-1)
    return mean, F.softplus(raw_std) + min_std


def standard_normal(noise: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws of `shape`: the given ones, checked, or fresh ones."""
    if noise is None:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
    return noise


class LatentDynamics(nn.Module):
    """What training, planning and acting need of a latent dynamics model.

    A subclass sets `belief_size` and `state_size` (0 for a part it does not have) and
    implements `img_step` (one step of the prior, open-loop) and `obs_step` (one filtering
    step: the prior, then the posterior given the embedding e_t). The loops over a sequence,
    `observe` and `imagine`, are shared.
    """

    def __init__(self, cfg: ModelConfig, action_size: int, belief_size: int,
                 state_size: int) -> None:
        super().__init__()
        self.belief_size = belief_size
        self.state_size = state_size
        self.action_size = action_size
        self.min_std = cfg.min_std

    @property
    def stochastic(self) -> bool:
        """Whether the model has a stochastic state (state_size > 0), and so a KL term in
        the bound."""
        return self.state_size > 0

    @property
    def feature_size(self) -> int:
        """Size of the model state [h_t, s_t] that decoder, reward model and planner read."""
        return self.belief_size + self.state_size

    def initial_state(self, batch_size: int, device: torch.device | str | None = None
                      ) -> LatentState:
        """All-zero h_0 and s_0 (mean 0, std 1) for a batch, the state before any step."""
        zeros = torch.zeros(batch_size, self.state_size, device=device)
        return LatentState(torch.zeros(batch_size, self.belief_size, device=device),
                           zeros, zeros, torch.ones_like(zeros))

    def check(self, prev: LatentState, action: torch.Tensor) -> None:
        """Raise ValueError unless prev is a (B, ...) state of this model and action (B, A)."""
        if (prev.belief.dim() != 2 or prev.belief.shape[-1] != self.belief_size
                or prev.state.shape[-1] != self.state_size):
            raise ValueError(f"state belief and state must be (B, {self.belief_size}) and "
                             f"(B, {self.state_size}), got {tuple(prev.belief.shape)} and "
                             f"{tuple(prev.state.shape)}")
        if tuple(action.shape) != (prev.belief.shape[0], self.action_size):
            raise ValueError(f"action must be ({prev.belief.shape[0]}, {self.action_size}), "
                             f"got {tuple(action.shape)}")

    def img_step(self, prev: LatentState, action: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LatentState:
        """One prior step from prev (B, ...) under action (B, A); noise (B, state_size)."""
        raise NotImplementedError

    def obs_step(self, prev: LatentState, action: torch.Tensor, embed: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[LatentState, LatentState]:
        """One filtering step given the embedding e_t (B, E): returns (prior, posterior); the
        posterior is what the next step builds on."""
        raise NotImplementedError

    def likelihood_states(self, posterior: LatentState, prior: LatentState) -> LatentState:
        """The states of a filtered sequence that p(o_t | .) and p(r_t | .) are evaluated
        on: the posterior, for a model with a stochastic state."""
        return posterior

    def observe(self, embeds: torch.Tensor, actions: torch.Tensor,
                state: LatentState | None = None, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[LatentState, LatentState]:
        """Filter a sequence: posteriors and priors for every step.

        embeds (B, T, E), actions (B, T, A), state (B, ...) the state before step 0 (zeros if
        None), noise (B, T, state_size). Returns (posterior, prior), each (B, T, ...).
        Posterior samples, never prior samples, are fed forward.
        """
        if (embeds.dim() != 3 or actions.dim() != 3 or embeds.shape[:2] != actions.shape[:2]
                or actions.shape[-1] != self.action_size):
            raise ValueError(f"observe expects embeds (B, T, E) and actions "
                             f"(B, T, {self.action_size}) with equal B, T; got "
                             f"{tuple(embeds.shape)} and {tuple(actions.shape)}")
        B, T = actions.shape[:2]
        if state is None:
            state = self.initial_state(B, embeds.device)
        eps = standard_normal(noise, (B, T, self.state_size), embeds, generator)
        priors, posteriors = [], []
        for t in range(T):
            prior, state = self.obs_step(state, actions[:, t], embeds[:, t], eps[:, t])
            priors.append(prior)
            posteriors.append(state)
        return LatentState.stack(posteriors), LatentState.stack(priors)

    def imagine(self, actions: torch.Tensor, state: LatentState,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> LatentState:
        """Open-loop prior rollout from `state` under actions (B, T, A): states (B, T, ...)."""
        if actions.dim() != 3 or actions.shape[-1] != self.action_size:
            raise ValueError(f"imagine expects actions (B, T, {self.action_size}), "
                             f"got {tuple(actions.shape)}")
        B, T = actions.shape[:2]
        eps = standard_normal(noise, (B, T, self.state_size), actions, generator)
        states = []
        for t in range(T):
            state = self.img_step(state, actions[:, t], eps[:, t])
            states.append(state)
        return LatentState.stack(states)
