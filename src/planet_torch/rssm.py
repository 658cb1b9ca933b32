"""The recurrent state-space model (RSSM, paper section 3, figure 2c), `--model.kind rssm`.

The model state at step t has a deterministic part, the belief h_t, and a stochastic part,
the state s_t:

    deterministic state model   h_t = f(h_{t-1}, s_{t-1}, a_t)        GRU cell
    stochastic state model      p(s_t | h_t)       (prior, transition)
    filtering posterior         q(s_t | h_t, e_t)  (e_t = enc(o_t))

Both distributions are diagonal Gaussians with std = softplus(.) + min_std. The action index
follows the replay convention: row t holds the action a_t that led to o_t (what the paper
writes a_{t-1}), so `belief[t] = f(belief[t-1], state[t-1], action[t])`. The loops over a
sequence (`observe`, `imagine`) are those of `latent.LatentDynamics`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from planet_torch.config import ModelConfig
from planet_torch.latent import LatentDynamics, LatentState, gaussian, standard_normal


class RSSM(LatentDynamics):
    """Transition f, prior p(s_t | h_t) and posterior q(s_t | h_t, e_t) of the paper's RSSM."""

    def __init__(self, cfg: ModelConfig, action_size: int, embed_size: int | None = None) -> None:
        super().__init__(cfg, action_size, cfg.belief_size, cfg.state_size)
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

    def _transition(self, prev: LatentState, action: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h_t = f(h_{t-1}, s_{t-1}, a_t) and the mean and std of p(s_t | h_t)."""
        self.check(prev, action)
        x = F.relu(self.state_action(torch.cat([prev.state, action], dim=-1)))
        belief = self.gru(x, prev.belief)
        mean, std = gaussian(self.prior_net(belief), self.min_std)
        return belief, mean, std

    def img_step(self, prev: LatentState, action: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LatentState:
        """One prior step: h_t = f(h_{t-1}, s_{t-1}, a_t), s_t ~ p(s_t | h_t).

        prev (B, ...), action (B, A), noise (B, state_size) standard normal or None.
        """
        belief, mean, std = self._transition(prev, action)
        eps = standard_normal(noise, tuple(mean.shape), mean, generator)
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
        mean, std = gaussian(self.posterior_net(torch.cat([belief, embed], dim=-1)),
                             self.min_std)
        eps = standard_normal(noise, tuple(mean.shape), mean, generator)
        return prior, LatentState(belief, mean + std * eps, mean, std)
