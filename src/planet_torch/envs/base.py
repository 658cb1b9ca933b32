"""What every task family shares: 64x64 uint8 frames, action repeat, the episode limit.

`PixelEnv` is the base of each family's environment; a family supplies one environment
step, a reset and the current frame. `unknown_task` is the one error for a task name that
no family takes. `PaddedActions` gives a task a longer action vector, for one agent that
acts in several tasks.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

IMAGE_SIZE = 64
"""Height and width of every observation in pixels (paper: 64x64 RGB)."""


def unknown_task(task: str, reason: str) -> ValueError:
    """The error for `task`: `reason`, then every named task and name form that is known."""
    # The table imports the families, which import this module: look it up when raising.
    from planet_torch.envs.registry import known_tasks

    return ValueError(f"unknown task {task!r}: {reason}. {known_tasks()}")


class PixelEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Action repeat, episode limit, seeding and 64x64 frames shared by every task.

    A subclass provides one environment step (`_step_simulator`), a reset
    (`_reset_simulator`) and the current frame (`_render_frame`). `reset(seed=k)` reseeds
    the task and the action space, so the same seed and actions give the same episode.
    """

    def __init__(self, action_space: spaces.Box, action_repeat: int, episode_steps: int,
                 seed: int | None, render_fps: float | None) -> None:
        self.observation_space = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        self.action_space = action_space
        self.action_repeat = action_repeat
        """R: environment steps per agent step."""
        self.episode_steps = episode_steps
        """Environment steps per episode."""
        self.render_mode = "rgb_array"
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": render_fps}
        self._first_seed = seed
        self._env_steps = 0
        self._needs_reset = True
        self._obs = np.zeros(self.observation_space.shape, np.uint8)
        if seed is not None:
            self.action_space.seed(seed)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; `seed` (or the `make_env` seed on the first reset) reseeds."""
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        self._reset_simulator(seed)
        self._env_steps = 0
        self._needs_reset = False
        self._obs = self._render_frame()
        return self._obs, self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Run `action` R times; return o_t, the summed reward, terminated, truncated, info."""
        if self._needs_reset:
            raise RuntimeError("the episode is over or has not started: call reset() first")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, "
                             f"got {action.shape}")
        reward = 0.0
        terminated = truncated = False
        for _ in range(self.action_repeat):
            step_reward, terminated, truncated = self._step_simulator(action)
            reward += step_reward
            self._env_steps += 1
            truncated = truncated or self._env_steps >= self.episode_steps
            if terminated or truncated:
                break
        self._needs_reset = terminated or truncated
        self._obs = self._render_frame()
        return self._obs, reward, terminated, truncated, self._info()

    def render(self) -> np.ndarray:
        """The last observation, uint8 (64, 64, 3)."""
        return self._obs.copy()

    def _info(self) -> dict[str, Any]:
        return {"env_steps": self._env_steps, "action_repeat": self.action_repeat}

    def _reset_simulator(self, seed: int | None) -> None:
        """Start a new episode of the underlying task; reseed it first if `seed` is given."""
        raise NotImplementedError

    def _step_simulator(self, action: np.ndarray) -> tuple[float, bool, bool]:
        """One environment step: (reward, terminated, truncated by the task itself)."""
        raise NotImplementedError

    def _render_frame(self) -> np.ndarray:
        """The current frame, uint8 (64, 64, 3)."""
        raise NotImplementedError


class PaddedActions(gymnasium.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """A task whose action vector is padded to `size` dimensions, as the official code does
    to train one agent on tasks of different action sizes: the task sees the first
    dimensions of each action and ignores the rest. The padding's bounds are [-1, 1]."""

    def __init__(self, env: PixelEnv, size: int) -> None:
        super().__init__(env)
        own = env.action_space
        self.own_size = own.shape[0]
        if size < self.own_size:
            raise ValueError(f"cannot pad {self.own_size} action dimensions to {size}")
        pad = np.ones(size - self.own_size, np.float32)
        self.action_space = spaces.Box(np.concatenate([own.low, -pad]),
                                       np.concatenate([own.high, pad]), dtype=np.float32)
        self.action_repeat = env.action_repeat
        self.episode_steps = env.episode_steps

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """The task's reset; `seed` also reseeds the padded action space."""
        if seed is not None:
            self.action_space.seed(seed)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The task's step on the first `own_size` dimensions of the action."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, "
                             f"got {action.shape}")
        return self.env.step(action[:self.own_size])
