"""The recurrent state-space model (RSSM, paper section 3, figure 2c).

The model state at step t has a deterministic part, the belief h_t, and a stochastic part,
the state s_t:

    deterministic state model   h_t = f(h_{t-1}, s_{t-1}, a_t)        GRU cell
    stochastic state model      p(s_t | h_t)       (prior, transition)
    filtering posterior         q(s_t | h_t, e_t)  (e_t = enc(o_t))

Both distributions are diagonal Gaussians with std = softplus(.) + min_std. The action index
follows the replay convention: row t holds the action a_t that led to o_t (what the paper
writes a_{t-1}), so `belief[t] = f(belief[t-1], state[t-1], action[t])`.

The model holds no recurrent state between calls: every method takes the previous
`LatentState` and returns the next, and the agent keeps the belief while acting.
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

    Every field shares the leading dimensions (batch, or batch and time).
    """

    belief: torch.Tensor
    """h_t, (..., belief_size)."""
    state: torch.Tensor
    """s_t, a sample of Normal(mean, std), (..., state_size)."""
    mean: torch.Tensor
    """Mean of p(s_t | h_t) or q(s_t | h_t, e_t), (..., state_size)."""
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


def _gaussian(params: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw_std = params.chunk(2, dim=-1)
    return mean, F.softplus(raw_std) + min_std


def _noise(noise: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor,
           generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws of `shape`: the given ones, checked, or fresh ones."""
    if noise is None:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
    return noise


class RSSM(nn.Module):
    """Transition f, prior p(s_t | h_t) and posterior q(s_t | h_t, e_t) of the paper's RSSM."""

    def __init__(self, cfg: ModelConfig, action_size: int, embed_size: int | None = None) -> None:
        super().__init__()
        self.belief_size = cfg.belief_size
        self.state_size = cfg.state_size
        self.action_size = action_size
        self.min_std = cfg.min_std
        embed_size = cfg.embed_size if embed_size is None else embed_size
        # h_t = f(h_{t-1}, s_{t-1}, a_t): a dense layer on [s_{t-1}, a_t] feeds the GRU cell
        self.state_action = nn.Linear(cfg.state_size + action_size, cfg.hidden_size)
        self.gru = nn.GRUCell(cfg.hidden_size, cfg.belief_size)
        # p(s_t | h_t)
        self.prior_net = nn.Sequential(nn.Linear(cfg.belief_size, cfg.hidden_size), nn.ReLU(),
                                       nn.Linear(cfg.hidden_size, 2 * cfg.state_size))
        # q(s_t | h_t, e_t)
        self.posterior_net = nn.Sequential(
            nn.Linear(cfg.belief_size + embed_size, cfg.hidden_size), nn.ReLU(),
            nn.Linear(cfg.hidden_size, 2 * cfg.state_size))

    def initial_state(self, batch_size: int, device: torch.device | str | None = None
                      ) -> LatentState:
        """All-zero h_0 and s_0 (mean 0, std 1) for a batch, the state before any step."""
        zeros = torch.zeros(batch_size, self.state_size, device=device)
        return LatentState(torch.zeros(batch_size, self.belief_size, device=device),
                           zeros, zeros, torch.ones_like(zeros))

    def _check(self, prev: LatentState, action: torch.Tensor) -> None:
        if prev.belief.dim() != 2 or prev.belief.shape[-1] != self.belief_size:
            raise ValueError(f"state belief must be (B, {self.belief_size}), "
                             f"got {tuple(prev.belief.shape)}")
        if tuple(action.shape) != (prev.belief.shape[0], self.action_size):
            raise ValueError(f"action must be ({prev.belief.shape[0]}, {self.action_size}), "
                             f"got {tuple(action.shape)}")

    def _transition(self, prev: LatentState, action: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h_t = f(h_{t-1}, s_{t-1}, a_t) and the mean and std of p(s_t | h_t)."""
        self._check(prev, action)
        x = F.relu(self.state_action(torch.cat([prev.state, action], dim=-1)))
        belief = self.gru(x, prev.belief)
        mean, std = _gaussian(self.prior_net(belief), self.min_std)
        return belief, mean, std

    def img_step(self, prev: LatentState, action: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LatentState:
        """One prior step: h_t = f(h_{t-1}, s_{t-1}, a_t), s_t ~ p(s_t | h_t).

        prev (B, ...), action (B, A), noise (B, state_size) standard normal or None.
        """
        belief, mean, std = self._transition(prev, action)
        eps = _noise(noise, tuple(mean.shape), mean, generator)
        return LatentState(belief, mean + std * eps, mean, std)

    def obs_step(self, prev: LatentState, action: torch.Tensor, embed: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[LatentState, LatentState]:
        """One filtering step: h_t and p(s_t | h_t) as in `img_step`, then s_t ~ q(s_t | h_t, e_t).

        Returns (prior, posterior); the posterior's sample is what the next step builds on.
        The prior carries its mean in place of a sample (its sample is never used).
        """
        belief, prior_mean, prior_std = self._transition(prev, action)
        prior = LatentState(belief, prior_mean, prior_mean, prior_std)
        mean, std = _gaussian(self.posterior_net(torch.cat([belief, embed], dim=-1)),
                              self.min_std)
        eps = _noise(noise, tuple(mean.shape), mean, generator)
        return prior, LatentState(belief, mean + std * eps, mean, std)

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
        eps = _noise(noise, (B, T, self.state_size), embeds, generator)
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
        eps = _noise(noise, (B, T, self.state_size), actions, generator)
        states = []
        for t in range(T):
            state = self.img_step(state, actions[:, t], eps[:, t])
            states.append(state)
        return LatentState.stack(states)
