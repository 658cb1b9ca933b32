"""Gymnasium environments that render `rgb_array` frames, named `gym:ID`.

E.g. `gym:Pendulum-v1`. The frames, resized to 64x64 with a box filter, are the
observations; the action space must be a Box. R = 1, and the environment's own time limit
holds (1000 environment steps where it registers none).
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from PIL import Image

from planet_torch.envs.base import IMAGE_SIZE, PixelEnv, unknown_task

GYM_PREFIX = "gym:"
"""Prefix of Gymnasium task names, as in `gym:Pendulum-v1`."""
GYM_ACTION_REPEAT = 1
"""Action repeat R of a Gymnasium task."""
GYM_EPISODE_STEPS = 1000
"""Episode cap of a Gymnasium environment registered without a time limit of its own."""


def matches(task: str) -> bool:
    """Whether `task` has this family's form, `gym:ID`."""
    return task.startswith(GYM_PREFIX)


def env_spec(task: str) -> gymnasium.envs.registration.EnvSpec:
    """Gymnasium's registration of `gym:ID` (raises ValueError if it has none)."""
    env_id = task.removeprefix(GYM_PREFIX)
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise unknown_task(task, f"Gymnasium has no environment {env_id!r} ({error})") from error


def default_action_repeat(task: str) -> int:
    """R of `task`, `GYM_ACTION_REPEAT` (checked against Gymnasium's registry)."""
    env_spec(task)
    return GYM_ACTION_REPEAT


def default_episode_steps(task: str) -> int:
    """The environment's own time limit, else `GYM_EPISODE_STEPS`."""
    return env_spec(task).max_episode_steps or GYM_EPISODE_STEPS


def make(task: str, action_repeat: int, episode_steps: int,
         seed: int | None) -> GymPixelEnv:
    """`task` as a `GymPixelEnv`."""
    return GymPixelEnv(task.removeprefix(GYM_PREFIX), action_repeat, episode_steps, seed)


class GymPixelEnv(PixelEnv):
    """A Gymnasium environment whose `rgb_array` frames, resized to 64x64, are observations."""

    def __init__(self, env_id: str, action_repeat: int, episode_steps: int,
                 seed: int | None) -> None:
        self._env = gymnasium.make(env_id, render_mode="rgb_array")
        inner_space = self._env.action_space
        if not isinstance(inner_space, spaces.Box):
            self._env.close()
            raise ValueError(f"gym:{env_id} has action space {inner_space}; PlaNet plans "
                             "continuous actions and needs a Box action space")
        if "rgb_array" not in self._env.metadata.get("render_modes", []):
            self._env.close()
            raise ValueError(f"gym:{env_id} does not render rgb_array frames, which PlaNet "
                             "needs as observations")
        inner_fps = self._env.metadata.get("render_fps")
        super().__init__(
            spaces.Box(inner_space.low.astype(np.float32), inner_space.high.astype(np.float32),
                       dtype=np.float32),
            action_repeat, episode_steps, seed,
            render_fps=None if inner_fps is None else inner_fps / action_repeat,
        )

    def _reset_simulator(self, seed: int | None) -> None:
        self._env.reset(seed=seed)

    def _step_simulator(self, action: np.ndarray) -> tuple[float, bool, bool]:
        _, reward, terminated, truncated, _ = self._env.step(
            action.astype(self._env.action_space.dtype))
        return float(reward), bool(terminated), bool(truncated)

    def _render_frame(self) -> np.ndarray:
        frame = Image.fromarray(self._env.render()).convert("RGB")
        return np.array(frame.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX))

    def close(self) -> None:
        """Close the wrapped Gymnasium environment."""
        self._env.close()
