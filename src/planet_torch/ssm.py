"""The purely stochastic state-space model (SSM, paper figure 2b), `--model.kind ssm`.

The model state is the stochastic state s_t alone; there is no deterministic path:

    transition (prior)    p(s_t | s_{t-1}, a_t)
    filtering posterior   q(s_t | s_{t-1}, a_t, e_t)  (e_t = enc(o_t))

Both are diagonal Gaussians with std = softplus(.) + min_std, each from one hidden layer.
As in the official code's `ssm`, the posterior reads the prior's mean and standard
deviation with the embedding: q(s_t | .) = q(s_t | mean_p, std_p, e_t). Everything the
past carries forward must pass through the sample s_{t-1}, which is why the paper finds
this model hard to train for long horizons. The belief is empty (size 0).
"""

from __future__ import annotations

import torch
from torch import nn

from planet_torch.config import ModelConfig
from planet_torch.latent import LatentDynamics, LatentState, gaussian, standard_normal


class SSM(LatentDynamics):
    """Prior p(s_t | s_{t-1}, a_t) and posterior q(s_t | s_{t-1}, a_t, e_t), no belief."""

    def __init__(self, cfg: ModelConfig, action_size: int, embed_size: int | None = None) -> None:
        super().__init__(cfg, action_size, 0, cfg.state_size)
        embed_size = cfg.embed_size if embed_size is None else embed_size
        self.prior_net = nn.Sequential(
            nn.Linear(cfg.state_size + action_size, cfg.hidden_size), nn.ReLU(),
            nn.Linear(cfg.hidden_size, 2 * cfg.state_size))
        self.posterior_net = nn.Sequential(
            nn.Linear(2 * cfg.state_size + embed_size, cfg.hidden_size), nn.ReLU(),
            nn.Linear(cfg.hidden_size, 2 * cfg.state_size))

    def _prior(self, prev: LatentState, action: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of p(s_t | s_{t-1}, a_t)."""
        self.check(prev, action)
        return gaussian(self.prior_net(torch.cat([prev.state, action], dim=-1)), self.min_std)

    def img_step(self, prev: LatentState, action: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LatentState:
        """One prior step: s_t ~ p(s_t | s_{t-1}, a_t); noise (B, state_size) or None."""
        mean, std = self._prior(prev, action)
        eps = standard_normal(noise, tuple(mean.shape), mean, generator)
        return LatentState(prev.belief, mean + std * eps, mean, std)

    def obs_step(self, prev: LatentState, action: torch.Tensor, embed: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[LatentState, LatentState]:
        """p(s_t | s_{t-1}, a_t), then s_t ~ q(s_t | mean_p, std_p, e_t).

        Returns (prior, posterior); the prior carries its mean in place of a sample.
        """
        prior_mean, prior_std = self._prior(prev, action)
        prior = LatentState(prev.belief, prior_mean, prior_mean, prior_std)
        mean, std = gaussian(self.posterior_net(torch.cat([prior_mean, prior_std, embed], -1)),
                             self.min_std)
        eps = standard_normal(noise, tuple(mean.shape), mean, generator)
        return prior, LatentState(prev.belief, mean + std * eps, mean, std)
