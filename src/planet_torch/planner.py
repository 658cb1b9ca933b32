"""Model-predictive control with the cross-entropy method in latent space (paper section 3).

For each of N agents, from its current posterior state, every iteration i = 1..I:

    a^(j)_{t:t+H} ~ clip(Normal(mu, sigma), low, high)            j = 1..J candidates
    s_{t+k} ~ p(s_{t+k} | h_{t+k}), h_{t+k} = f(h, s, a)           open-loop prior rollout
    R^(j) = sum_{k=1..H} E[ p(r_{t+k} | h_{t+k}, s_{t+k}) ]        predicted mean rewards
    mu, sigma <- mean and standard deviation of the K best candidates

starting from mu = centre of the action bounds and sigma = half their width (Normal(0, I) for
the usual [-1, 1] bounds) at every call, and returning mu's first action. All agents and all
candidates run in one batched rollout of N * J sequences; agent n's candidates start from
agent n's own state.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import nn

from planet_torch.config import PlannerConfig
from planet_torch.rssm import LatentState


class LatentModel(Protocol):
    """What the planner needs of a world model: an RSSM to imagine with and a reward model."""

    rssm: nn.Module
    reward_model: nn.Module


class CEMNoise(NamedTuple):
    """Standard-normal draws for one planning call, to pin its randomness (tests, graphs)."""

    action: torch.Tensor
    """(I, N, J, H, A): draws for the candidate action sequences."""
    state: torch.Tensor
    """(I, N, J, H, state_size): draws for the imagined states."""


class CEMPlanner:
    """Plans the next action of N agents at once by CEM over imagined rollouts."""

    def __init__(self, cfg: PlannerConfig, action_low: torch.Tensor,
                 action_high: torch.Tensor) -> None:
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        if low.dim() != 1 or low.shape != high.shape or not torch.all(low < high):
            raise ValueError(f"action bounds must be 1-D with low < high, got {low} and {high}")
        self.cfg = cfg
        self.low, self.high = low, high

    @property
    def action_size(self) -> int:
        """A, the number of action dimensions."""
        return self.low.numel()

    def noise_shape(self, num_agents: int, state_size: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of `CEMNoise.action` and `CEMNoise.state` for a call with N agents."""
        c = self.cfg
        lead = (c.iterations, num_agents, c.candidates, c.horizon)
        return (*lead, self.action_size), (*lead, state_size)

    @torch.inference_mode()
    def plan(self, model: LatentModel, state: LatentState, noise: CEMNoise | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Best first action (N, A) for each agent's state (N, ...), on the model's device."""
        c = self.cfg
        N = state.belief.shape[0]
        J, K, H, A = c.candidates, c.elites, c.horizon, self.action_size
        device = state.belief.device
        low, high = self.low.to(device), self.high.to(device)
        if noise is not None:
            expected = self.noise_shape(N, state.state.shape[-1])
            actual = (tuple(noise.action.shape), tuple(noise.state.shape))
            if actual != expected:
                raise ValueError(f"CEM noise must have shapes {expected}, got {actual}")
        start = state.map(lambda x: x.repeat_interleave(J, dim=0))  # (N * J, ...), agent-major
        mean = ((low + high) / 2).expand(N, 1, H, A)
        std = ((high - low) / 2).expand(N, 1, H, A)
        for i in range(c.iterations):
            if noise is None:
                action_eps = torch.randn((N, J, H, A), generator=generator, device=device)
                state_eps = None
            else:
                action_eps = noise.action[i]
                state_eps = noise.state[i].reshape(N * J, H, -1)
            candidates = torch.clamp(mean + std * action_eps, low, high)  # (N, J, H, A)
            imagined = model.rssm.imagine(candidates.reshape(N * J, H, A), start, state_eps,
                                          generator)
            returns = model.reward_model(imagined.feat()).reshape(N, J, H).sum(-1)  # (N, J)
            elite = returns.topk(K, dim=1).indices  # (N, K)
            elites = candidates.gather(1, elite[:, :, None, None].expand(N, K, H, A))
            mean = elites.mean(dim=1, keepdim=True)
            std = elites.std(dim=1, unbiased=False, keepdim=True)
        return mean[:, 0, 0]
