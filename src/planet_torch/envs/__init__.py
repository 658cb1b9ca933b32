"""Tasks as Gymnasium environments that emit 64x64 RGB images, with action repeat.

PlaNet (Hafner et al., 2019, section 5) sees only pixels: every observation o_t here is a
`uint8` array of shape (64, 64, 3), whatever the task's own state. One agent step t runs
the chosen action R times in the environment ("action repeat") and sums the R rewards; an
episode lasts `episode_steps` environment steps, i.e. ceil(episode_steps / R) agent steps.

Task names, one family a module:
- `dm_control`: the paper's six control tasks, with the paper's action repeat R
  (`PAPER_TASKS`), and any other dm_control suite task as `domain-task`, e.g.
  `walker-run`, `point_mass-easy` (R = 2, 1000 environment steps per episode, rendered at
  64x64 from camera 0);
- `gym`: any Gymnasium environment that renders `rgb_array` as `gym:ID`, e.g.
  `gym:Pendulum-v1` (R = 1; frames resized to 64x64 with a box filter; the environment's
  own time limit holds);
- `toy`: `toy-reach`, a tiny pixel task in pure numpy for learning tests on a CPU
  (`ToyReachEnv`).

`registry.FAMILIES` is the table from a name form to its factory and defaults; `base` holds
`PixelEnv`, which every family's environment extends.

The episode limit is always reported as `truncated=True`; only a real end of the task (a
dm_control time step with discount 0) is `terminated=True`. `info` carries `env_steps`
(environment steps so far in the episode) and `action_repeat`.

Rendering is headless: unless `MUJOCO_GL` is already set, importing `planet_torch` sets it
to `egl`, before dm_control is (lazily) imported (`planet_torch.gl`).
"""

from planet_torch.envs.base import IMAGE_SIZE, PaddedActions, PixelEnv
from planet_torch.envs.dm_control import (
    DM_CONTROL_ACTION_REPEAT,
    DM_CONTROL_EPISODE_STEPS,
    PAPER_TASKS,
    DMControlEnv,
)
from planet_torch.envs.gym import GYM_ACTION_REPEAT, GYM_EPISODE_STEPS, GYM_PREFIX, GymPixelEnv
from planet_torch.envs.registry import (
    FAMILIES,
    Family,
    default_action_repeat,
    default_episode_steps,
    family_of,
    make_env,
    task_names,
)
from planet_torch.envs.toy import TOY_REACH, ToyReachEnv

__all__ = [
    "DM_CONTROL_ACTION_REPEAT",
    "DM_CONTROL_EPISODE_STEPS",
    "FAMILIES",
    "GYM_ACTION_REPEAT",
    "GYM_EPISODE_STEPS",
    "GYM_PREFIX",
    "IMAGE_SIZE",
    "PAPER_TASKS",
    "TOY_REACH",
    "DMControlEnv",
    "Family",
    "GymPixelEnv",
    "PaddedActions",
    "PixelEnv",
    "ToyReachEnv",
    "default_action_repeat",
    "default_episode_steps",
    "family_of",
    "make_env",
    "task_names",
]
