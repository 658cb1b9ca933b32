"""dm_control suite tasks: MuJoCo physics seen through 64x64 frames from camera 0.

Names: the paper's six control tasks, each with the paper's action repeat R
(`PAPER_TASKS`), and any other suite task as `domain-task`, e.g. `walker-run`,
`point_mass-easy` (R = 2). An episode lasts 1000 environment steps; only a real end of the
task (a time step with discount 0) is `terminated=True`.

Rendering is headless: unless `MUJOCO_GL` is already set, importing `planet_torch` sets it
to `egl` (`planet_torch.gl`), before dm_control is (lazily) imported here. A backend that
cannot start ends in one line naming the fixes, without the GL libraries' own warnings.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from gymnasium import spaces

from planet_torch import gl
from planet_torch.envs.base import IMAGE_SIZE, PixelEnv, unknown_task

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

_RENDER_HELP = (
    "MuJoCo rendering could not start with MUJOCO_GL={backend!r}: {error}. "
    "For headless EGL install the GL libraries (e.g. `apt-get install libegl1 "
    "libgl1-mesa-dri`), or set MUJOCO_GL=osmesa (needs libosmesa6), or MUJOCO_GL=glfw on "
    "a desktop with a display. dm_control itself installs with `pip install dm_control`."
)


def matches(task: str) -> bool:
    """Whether `task` has this family's form: a paper task's name or `domain-task`."""
    domain, _, name = task.partition("-")
    return task in PAPER_TASKS or bool(domain and name)


def suite_task(task: str) -> tuple[str, str]:
    """(domain, task) of a dm_control task name, checked against `suite.ALL_TASKS`."""
    if task in PAPER_TASKS:
        return PAPER_TASKS[task][:2]
    domain, _, name = task.partition("-")
    suite = _import_dm_control_suite()
    if (domain, name) not in suite.ALL_TASKS:
        domains = ", ".join(sorted({d for d, _ in suite.ALL_TASKS}))
        raise unknown_task(task, f"dm_control's suite has no task {domain}/{name} "
                                 f"(its domains: {domains})")
    return domain, name


def default_action_repeat(task: str) -> int:
    """R of `task`: the paper's for its six tasks, else `DM_CONTROL_ACTION_REPEAT`."""
    suite_task(task)
    return PAPER_TASKS[task][2] if task in PAPER_TASKS else DM_CONTROL_ACTION_REPEAT


def default_episode_steps(task: str) -> int:
    """Environment steps per episode of `task` (checked against the suite)."""
    suite_task(task)
    return DM_CONTROL_EPISODE_STEPS


def make(task: str, action_repeat: int, episode_steps: int,
         seed: int | None) -> DMControlEnv:
    """`task` as a `DMControlEnv`."""
    domain, name = suite_task(task)
    return DMControlEnv(domain, name, action_repeat, episode_steps, seed)


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
