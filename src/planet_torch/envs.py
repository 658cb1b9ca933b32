"""Tasks as Gymnasium environments that emit 64x64 RGB images, with action repeat.

PlaNet (Hafner et al., 2019, section 5) sees only pixels: every observation o_t here is a
`uint8` array of shape (64, 64, 3), whatever the task's own state. One agent step t runs
the chosen action R times in the environment ("action repeat") and sums the R rewards; an
episode lasts `episode_steps` environment steps, i.e. ceil(episode_steps / R) agent steps.

Task names:
- the paper's six control tasks, with the paper's action repeat R (`PAPER_TASKS`);
- any other dm_control suite task as `domain-task`, e.g. `walker-run`, `point_mass-easy`
  (R = 2, 1000 environment steps per episode, rendered at 64x64 from camera 0);
- any Gymnasium environment that renders `rgb_array` as `gym:ID`, e.g. `gym:Pendulum-v1`
  (R = 1; frames resized to 64x64 with a box filter; the environment's own time limit holds);
- `toy-reach`, a tiny pixel task in pure numpy for learning tests on a CPU (`ToyReachEnv`).

The episode limit is always reported as `truncated=True`; only a real end of the task (a
dm_control time step with discount 0) is `terminated=True`. `info` carries `env_steps`
(environment steps so far in the episode) and `action_repeat`.

Rendering is headless: unless `MUJOCO_GL` is already set, importing `planet_torch` sets it
to `egl`, before dm_control is (lazily) imported here (`planet_torch.gl`). A backend that
cannot start ends in one line naming the fixes, without the GL libraries' own warnings.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from PIL import Image

from planet_torch import gl

IMAGE_SIZE = 64
"""Height and width of every observation in pixels (paper: 64x64 RGB)."""

PAPER_TASKS: dict[str, tuple[str, str, int]] = {
    "cartpole-swingup": ("cartpole", "swingup", 8),
    "reacher-easy": ("reacher", "easy", 4),
    "cheetah-run": ("cheetah", "run", 4),
    "finger-spin": ("finger", "spin", 2),
    "cup-catch": ("ball_in_cup", "catch", 4),
    "walker-walk": ("walker", "walk", 2),
}
"""The paper's six tasks: name -> (dm_control domain, dm_control task, action repeat R)."""

DM_CONTROL_ACTION_REPEAT = 2
"""Action repeat R of a dm_control task outside the paper's six."""
DM_CONTROL_EPISODE_STEPS = 1000
"""Environment steps per dm_control episode (paper: 1000)."""
GYM_PREFIX = "gym:"
"""Prefix of Gymnasium task names, as in `gym:Pendulum-v1`."""
GYM_ACTION_REPEAT = 1
"""Action repeat R of a Gymnasium task."""
GYM_EPISODE_STEPS = 1000
"""Episode cap of a Gymnasium environment registered without a time limit of its own."""

TOY_REACH = "toy-reach"
"""Name of the built-in pixel task (`ToyReachEnv`)."""

_RENDER_HELP = (
    "MuJoCo rendering could not start with MUJOCO_GL={backend!r}: {error}. "
    "For headless EGL install the GL libraries (e.g. `apt-get install libegl1 "
    "libgl1-mesa-dri`), or set MUJOCO_GL=osmesa (needs libosmesa6), or MUJOCO_GL=glfw on "
    "a desktop with a display. dm_control itself installs with `pip install dm_control`."
)


def task_names() -> list[str]:
    """Named tasks, for listing: the paper's six and `toy-reach`.

    Any dm_control suite task (`domain-task`) and any Gymnasium environment (`gym:ID`) is
    accepted as well.
    """
    return [*PAPER_TASKS, TOY_REACH]


def default_action_repeat(task: str) -> int:
    """Action repeat R of `task`: the paper's value for its six tasks (raises for unknown)."""
    if task == TOY_REACH:
        return ToyReachEnv.ACTION_REPEAT
    if task.startswith(GYM_PREFIX):
        _gym_spec(task)
        return GYM_ACTION_REPEAT
    _dm_control_task(task)
    return PAPER_TASKS[task][2] if task in PAPER_TASKS else DM_CONTROL_ACTION_REPEAT


def default_episode_steps(task: str) -> int:
    """Environment steps per episode of `task` (raises ValueError for unknown tasks)."""
    if task == TOY_REACH:
        return ToyReachEnv.EPISODE_STEPS
    if task.startswith(GYM_PREFIX):
        return _gym_spec(task).max_episode_steps or GYM_EPISODE_STEPS
    _dm_control_task(task)
    return DM_CONTROL_EPISODE_STEPS


def make_env(
    task: str,
    seed: int | None = None,
    action_repeat: int | None = None,
    episode_steps: int | None = None,
) -> gymnasium.Env:
    """Build `task` as a pixel environment with action repeat R and an episode limit.

    Args:
        task: a name from `task_names()`, a dm_control `domain-task` or `gym:ID`.
        seed: seed of the first `reset()` called without a seed, and of the action space.
        action_repeat: R, environment steps per agent step; None takes the task's default.
        episode_steps: environment steps per episode; None takes the task's default.

    Returns:
        An environment with observations uint8 (64, 64, 3) and a float32 Box action space.
    """
    repeat = default_action_repeat(task) if action_repeat is None else action_repeat
    steps = default_episode_steps(task) if episode_steps is None else episode_steps
    if repeat < 1 or steps < 1:
        raise ValueError(f"action_repeat and episode_steps must be >= 1, got {repeat} and "
                         f"{steps}")
    if task == TOY_REACH:
        return ToyReachEnv(repeat, steps, seed)
    if task.startswith(GYM_PREFIX):
        return GymPixelEnv(task.removeprefix(GYM_PREFIX), repeat, steps, seed)
    domain, name = _dm_control_task(task)
    return DMControlEnv(domain, name, repeat, steps, seed)


def _unknown_task(task: str, reason: str) -> ValueError:
    return ValueError(
        f"unknown task {task!r}: {reason}. Known tasks: {', '.join(task_names())}; also any "
        "dm_control suite task as 'domain-task' (e.g. 'cartpole-balance', 'walker-run', "
        "'point_mass-easy') and any Gymnasium environment that renders rgb_array as "
        "'gym:ID' (e.g. 'gym:Pendulum-v1')."
    )


def _gym_spec(task: str) -> gymnasium.envs.registration.EnvSpec:
    env_id = task.removeprefix(GYM_PREFIX)
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise _unknown_task(task, f"Gymnasium has no environment {env_id!r} ({error})") from error


def _dm_control_task(task: str) -> tuple[str, str]:
    """(domain, task) of a dm_control task name, checked against `suite.ALL_TASKS`."""
    if task in PAPER_TASKS:
        return PAPER_TASKS[task][:2]
    domain, _, name = task.partition("-")
    if not domain or not name:
        raise _unknown_task(task, "expected 'domain-task', 'gym:ID' or a known name")
    suite = _import_dm_control_suite()
    if (domain, name) not in suite.ALL_TASKS:
        domains = ", ".join(sorted({d for d, _ in suite.ALL_TASKS}))
        raise _unknown_task(task, f"dm_control's suite has no task {domain}/{name} "
                                  f"(its domains: {domains})")
    return domain, name


class _DropTotalMassNotice(logging.Filter):
    """Drops MuJoCo's notice that dm_control's own cheetah.xml uses the deprecated compiler
    attribute `settotalmass`: it comes at every cheetah model load and no user can act on it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "settotalmass" not in record.getMessage()


_TOTAL_MASS_NOTICE = _DropTotalMassNotice()


def _render_error(error: object) -> RuntimeError:
    return RuntimeError(_RENDER_HELP.format(backend=gl.backend(), error=error))


def _import_dm_control_suite() -> Any:
    logging.getLogger("absl").addFilter(_TOTAL_MASS_NOTICE)  # adds it once, however often
    gl.install_context_cleanup_hook()
    if gl.display_missing():
        raise _render_error("there is no display (DISPLAY is not set)")
    try:
        with gl.quiet_backend_errors():
            from dm_control import suite
    # A missing or unusable GL backend surfaces as ImportError, AttributeError, RuntimeError...
    except Exception as error:
        raise _render_error(error) from error
    return suite


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


class DMControlEnv(PixelEnv):
    """A dm_control suite task rendered at 64x64 from camera 0.

    dm_control's own time limit is switched off (`time_limit=inf`); `PixelEnv` enforces
    `episode_steps` and reports it as truncation.
    """

    def __init__(self, domain: str, task: str, action_repeat: int, episode_steps: int,
                 seed: int | None) -> None:
        suite = _import_dm_control_suite()
        self._env = suite.load(domain, task,
                               task_kwargs={"random": seed, "time_limit": float("inf")})
        spec = self._env.action_spec()
        action_space = spaces.Box(np.broadcast_to(spec.minimum, spec.shape).astype(np.float32),
                                  np.broadcast_to(spec.maximum, spec.shape).astype(np.float32),
                                  dtype=np.float32)
        super().__init__(action_space, action_repeat, episode_steps, seed,
                         render_fps=1.0 / (self._env.control_timestep() * action_repeat))
        try:
            with gl.quiet_backend_errors():
                self._obs = self._render_frame()
        # GL failures come from several libraries (mujoco, PyOpenGL, EGL, GLFW).
        except Exception as error:
            raise _render_error(error) from error

    def _reset_simulator(self, seed: int | None) -> None:
        if seed is not None:
            self._env.task.random.seed(seed)  # the task draws its initial state from this
        self._env.reset()

    def _step_simulator(self, action: np.ndarray) -> tuple[float, bool, bool]:
        time_step = self._env.step(action)
        reward = 0.0 if math.isnan(time_step.reward) else float(time_step.reward)
        terminated = time_step.last() and time_step.discount == 0
        return reward, terminated, time_step.last() and not terminated

    def _render_frame(self) -> np.ndarray:
        return self._env.physics.render(IMAGE_SIZE, IMAGE_SIZE, camera_id=0)

    def close(self) -> None:
        """Free MuJoCo's data and rendering contexts."""
        self._env.physics.free()


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
