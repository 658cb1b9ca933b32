"""`toy-reach`, a tiny pixel task in pure numpy for learning tests on a CPU (`ToyReachEnv`).

A red dot, moved by a 2-D action, is to reach a green goal ring in a 64x64 picture; no GL,
no physics engine. R = 1 and 50 environment steps per episode.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from planet_torch.envs.base import IMAGE_SIZE, PixelEnv

TOY_REACH = "toy-reach"
"""Name of the built-in pixel task (`ToyReachEnv`)."""


def matches(task: str) -> bool:
    """Whether `task` is `toy-reach`."""
    return task == TOY_REACH


def default_action_repeat(task: str) -> int:
    """R of `toy-reach`, `ToyReachEnv.ACTION_REPEAT`."""
    return ToyReachEnv.ACTION_REPEAT


def default_episode_steps(task: str) -> int:
    """Environment steps per episode of `toy-reach`, `ToyReachEnv.EPISODE_STEPS`."""
    return ToyReachEnv.EPISODE_STEPS


def make(task: str, action_repeat: int, episode_steps: int,
         seed: int | None) -> ToyReachEnv:
    """`toy-reach` as a `ToyReachEnv`."""
    return ToyReachEnv(action_repeat, episode_steps, seed)


class ToyReachEnv(PixelEnv):
    """`toy-reach`: move a dot to a fixed goal in a 64x64 picture; pure numpy, no GL.

    The dot's position p lies in the arena [-1, 1]^2 and the goal g is its centre (0, 0).
    An action a in [-1, 1]^2 moves the dot, p <- clip(p + 0.15 a, -1, 1), and the reward of
    each environment step is r = exp(-|p - g|^2 / 0.2), i.e. 1 on the goal, 0.29 at
    distance 0.5 and 0.007 at distance 1. Episodes start at p ~ U[-0.6, 0.6]^2, redrawn
    until |p - g| >= 0.3, and last 50 steps (R = 1), so a return lies in [0, 50].

    The picture: mid-grey background (128), a green ring of radius 6 px around the goal,
    the dot as a red disc of radius 4 px drawn on top (in a prototype a 3 px dot was
    not learned in minutes, 4 px was). Arena coordinates map to pixels so that the whole
    dot stays in view; y points up.

    Measured returns over 20 episodes (5 seeds x 4 starts, as in tests/test_envs.py):
    uniform random actions 8.2 on average (0.6 to 21.5); a policy heading straight for the
    goal, a = clip(-p / 0.15, -1, 1), 49.5 (48.9 to 49.9), since it arrives within 6 steps.
    """

    ACTION_REPEAT = 1
    """Default action repeat R."""
    EPISODE_STEPS = 50
    """Environment steps per episode."""
    STEP_SCALE = 0.15
    """Distance the dot moves per unit of action per environment step."""
    REWARD_WIDTH = 0.2
    """w in the reward exp(-d^2 / w)."""
    START_RANGE = 0.6
    """Start positions are uniform in [-START_RANGE, START_RANGE]^2 ..."""
    MIN_START_DISTANCE = 0.3
    """... at least this far from the goal."""
    DOT_RADIUS = 4
    """Radius of the dot in pixels."""
    GOAL_RING_RADIUS = 6
    """Radius of the goal ring in pixels; larger than the dot so that it does not hide it."""
    BACKGROUND = 128
    """Grey level of the background."""
    DOT_COLOUR = (255, 0, 0)
    """RGB of the dot: red, far from the grey background."""
    GOAL_COLOUR = (0, 255, 0)
    """RGB of the goal ring."""
    RENDER_FPS = 10
    """Frames per second of a video at R = 1."""

    def __init__(self, action_repeat: int = ACTION_REPEAT, episode_steps: int = EPISODE_STEPS,
                 seed: int | None = None) -> None:
        super().__init__(spaces.Box(-1.0, 1.0, (2,), np.float32), action_repeat, episode_steps,
                         seed, render_fps=self.RENDER_FPS / action_repeat)
        self._rng = np.random.default_rng(seed)
        self._position = np.zeros(2)
        self._rows, self._cols = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
        centre_row, centre_col = self._to_pixels(np.zeros(2))
        distance = np.hypot(self._rows - centre_row, self._cols - centre_col)
        self._background = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), self.BACKGROUND, np.uint8)
        self._background[np.abs(distance - self.GOAL_RING_RADIUS) <= 0.5] = self.GOAL_COLOUR

    @property
    def position(self) -> np.ndarray:
        """The dot's position p in [-1, 1]^2 (for scripted policies and tests), shape (2,)."""
        return self._position.copy()

    def _to_pixels(self, point: np.ndarray) -> tuple[float, float]:
        """(row, column) of an arena point; the arena is inset by the dot's radius."""
        centre = (IMAGE_SIZE - 1) / 2
        scale = centre - self.DOT_RADIUS
        return centre - point[1] * scale, centre + point[0] * scale

    def _reset_simulator(self, seed: int | None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        while True:
            start = self._rng.uniform(-self.START_RANGE, self.START_RANGE, size=2)
            if np.linalg.norm(start) >= self.MIN_START_DISTANCE:
                break
        self._position = start

    def _step_simulator(self, action: np.ndarray) -> tuple[float, bool, bool]:
        move = self.STEP_SCALE * np.clip(action, -1.0, 1.0)
        self._position = np.clip(self._position + move, -1.0, 1.0)
        reward = math.exp(-float(np.sum(self._position**2)) / self.REWARD_WIDTH)
        return reward, False, False

    def _render_frame(self) -> np.ndarray:
        row, col = self._to_pixels(self._position)
        dot = (self._rows - row) ** 2 + (self._cols - col) ** 2 <= self.DOT_RADIUS**2
        frame = self._background.copy()
        frame[dot] = self.DOT_COLOUR
        return frame
