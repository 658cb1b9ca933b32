"""The acting agent: keeps the belief of N environments, plans, and explores.

At every step, for each environment n (paper algorithm 1, "Collect"):

    e_t = enc(o_t)
    h_t, s_t ~ q(s_t | h_t, e_t)     with h_t = f(h_{t-1}, s_{t-1}, a_{t-1})
    a_t = CEM(h_t, s_t) + eps,  eps ~ Normal(0, exploration_noise^2), clipped to the bounds

The state before the first step is zero and the previous action of the reset frame is zero,
as in the replay's first row, so acting filters exactly as training did.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from planet_torch.latent import LatentState
from planet_torch.world_model import WorldModel


class Planner(Protocol):
    """What the agent plans with: the best next action of N agents from their states.

    `CEMPlanner` is one; `assembly.PLANNERS` names every planner a config can choose.
    """

    @property
    def action_size(self) -> int:
        """A, the number of action dimensions."""
        ...

    def plan(self, model: WorldModel, state: LatentState,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions (N, A) within the bounds for the states (N, ...), on the model's device."""
        ...

    def bounds_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The action bounds low and high (A,) on the device."""
        ...


class Agent:
    """Belief filtering and planning for N environments stepped together."""

    def __init__(self, model: WorldModel, planner: Planner,
                 generator: torch.Generator | None = None) -> None:
        self.model = model
        self.planner = planner
        self.generator = generator
        self.state: LatentState | None = None
        self.prev_action: torch.Tensor | None = None

    def reset(self, num_envs: int) -> None:
        """Start new episodes: zero belief, zero previous action."""
        device = self.model.device
        self.state = self.model.dynamics.initial_state(num_envs, device)
        self.prev_action = torch.zeros(num_envs, self.planner.action_size, device=device)

    @torch.inference_mode()
    def observe(self, obs: np.ndarray) -> LatentState:
        """Update the belief with observations (N, 64, 64, 3) uint8; returns the posterior."""
        if self.state is None or self.prev_action is None:
            raise RuntimeError("call Agent.reset(num_envs) before the first observation")
        device = self.model.device
        pixels = torch.as_tensor(np.asarray(obs), device=device)
        if pixels.shape[0] != self.state.belief.shape[0]:
            raise ValueError(f"expected observations for {self.state.belief.shape[0]} "
                             f"environments, got shape {tuple(pixels.shape)}")
        embed = self.model.encode_pixels(pixels, self.generator)
        _, self.state = self.model.dynamics.obs_step(self.state, self.prev_action, embed,
                                                 generator=self.generator)
        return self.state

    @torch.inference_mode()
    def act(self, obs: np.ndarray, exploration_noise: float = 0.0) -> np.ndarray:
        """Actions (N, A) float32 for observations (N, 64, 64, 3): plan, add noise, clip."""
        if exploration_noise < 0:
            raise ValueError(f"exploration_noise must be >= 0, got {exploration_noise}")
        state = self.observe(obs)
        action = self.planner.plan(self.model, state, generator=self.generator)
        if exploration_noise > 0:
            noise = torch.randn(action.shape, generator=self.generator, device=action.device)
            action = action + exploration_noise * noise
        low, high = self.planner.bounds_on(action.device)
        action = torch.clamp(action, low, high)
        self.prev_action = action
        return action.cpu().numpy().astype(np.float32)
