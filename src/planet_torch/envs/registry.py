"""The table of task families: which names each takes, how it builds them, its defaults.

`FAMILIES` holds one `Family` per module of this package (dm_control, toy, Gymnasium).
`make_env`, `default_action_repeat` and `default_episode_steps` find a task's family once
(`family_of`), and the unknown-task error and `planet tasks` list what the table holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium

from planet_torch.envs import dm_control, gym, toy
from planet_torch.envs.base import PixelEnv, unknown_task


@dataclass(frozen=True)
class Family:
    """One family of tasks: the names it takes, how it builds them, and their defaults."""

    name: str
    """What the family is called, e.g. "dm_control"."""
    named_tasks: tuple[str, ...]
    """Its tasks that are listed by name (`task_names`, `planet tasks`)."""
    matches: Callable[[str], bool]
    """Whether a task name has this family's form; whether the task exists is checked later."""
    make: Callable[[str, int, int, int | None], PixelEnv]
    """(task, action repeat R, environment steps per episode, seed) -> the environment."""
    default_action_repeat: Callable[[str], int]
    """R of a task; raises ValueError if the task does not exist."""
    default_episode_steps: Callable[[str], int]
    """Environment steps per episode of a task; raises ValueError if it does not exist."""
    form: str = ""
    """The tasks it takes beyond `named_tasks`, for the unknown-task error ("": none)."""
    summary: str = ""
    """`form` in short, for `planet tasks`."""
    tried_last: bool = False
    """Whether names of other families also have its form, so that it is tried after them."""


FAMILIES: tuple[Family, ...] = (
    Family(
        name="dm_control",
        named_tasks=tuple(dm_control.PAPER_TASKS),
        matches=dm_control.matches,
        make=dm_control.make,
        default_action_repeat=dm_control.default_action_repeat,
        default_episode_steps=dm_control.default_episode_steps,
        form="any dm_control suite task as 'domain-task' (e.g. 'cartpole-balance', "
             "'walker-run', 'point_mass-easy')",
        summary="any dm_control suite task as domain-task "
                f"(action repeat {dm_control.DM_CONTROL_ACTION_REPEAT})",
        tried_last=True,  # `toy-reach` and `gym:a-b` have the form `domain-task` too
    ),
    Family(
        name="toy",
        named_tasks=(toy.TOY_REACH,),
        matches=toy.matches,
        make=toy.make,
        default_action_repeat=toy.default_action_repeat,
        default_episode_steps=toy.default_episode_steps,
    ),
    Family(
        name="gym",
        named_tasks=(),
        matches=gym.matches,
        make=gym.make,
        default_action_repeat=gym.default_action_repeat,
        default_episode_steps=gym.default_episode_steps,
        form="any Gymnasium environment that renders rgb_array as 'gym:ID' "
             "(e.g. 'gym:Pendulum-v1')",
        summary="any Gymnasium env as gym:ID",
    ),
)
"""Every task family, in the order `task_names()` and the help texts list them."""

_LOOKUP_ORDER = tuple(sorted(FAMILIES, key=lambda family: family.tried_last))


def family_of(task: str) -> Family:
    """The family whose form `task` has (raises ValueError if none has it)."""
    for family in _LOOKUP_ORDER:
        if family.matches(task):
            return family
    raise unknown_task(task, "expected 'domain-task', 'gym:ID' or a known name")


def task_names() -> list[str]:
    """Named tasks, for listing: the paper's six and `toy-reach`.

    Any dm_control suite task (`domain-task`) and any Gymnasium environment (`gym:ID`) is
    accepted as well.
    """
    return [task for family in FAMILIES for task in family.named_tasks]


def known_tasks() -> str:
    """The sentence of the unknown-task error that lists the named tasks and the forms."""
    forms = " and ".join(family.form for family in FAMILIES if family.form)
    return f"Known tasks: {', '.join(task_names())}; also {forms}."


def default_action_repeat(task: str) -> int:
    """Action repeat R of `task`: the paper's value for its six tasks (raises for unknown)."""
    return family_of(task).default_action_repeat(task)


def default_episode_steps(task: str) -> int:
    """Environment steps per episode of `task` (raises ValueError for unknown tasks)."""
    return family_of(task).default_episode_steps(task)


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
    family = family_of(task)
    repeat = family.default_action_repeat(task) if action_repeat is None else action_repeat
    steps = family.default_episode_steps(task) if episode_steps is None else episode_steps
    if repeat < 1 or steps < 1:
        raise ValueError(f"action_repeat and episode_steps must be >= 1, got {repeat} and "
                         f"{steps}")
    return family.make(task, repeat, steps, seed)
