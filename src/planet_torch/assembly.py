"""The one place that builds a run's parts from its config: environments, model, planner, agent.

Training, `planet test`, `predict`, the live viewer, `planet bench` and the benchmarks all
build through these functions, so a config means the same agent everywhere:

    make_envs(cfg, n)                      the task's pixel environments (`envs`)
    make_task_envs(cfg, n)                 n of each of the run's tasks, actions padded
    make_world_model(cfg, A, device)       encoder, `world_model.DYNAMICS[cfg.model.kind]`,
                                           observation and reward models
    make_planner(cfg, low, high)           `PLANNERS[cfg.planner.kind]`
    make_agent(cfg, model, low, high, g)   belief filtering plus that planner

A new planner is one module with a class that takes `(PlannerConfig, low, high, precision,
compile)` and has the `agent.Planner` methods, plus one entry in `PLANNERS`; its name is
then a valid `--planner.kind`. A new latent dynamics model is one module with a
`latent.LatentDynamics` subclass, plus one entry in `world_model.DYNAMICS`; its name is then
a valid `--model.kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from planet_torch import config as config_lib
from planet_torch.agent import Agent, Planner
from planet_torch.config import Config, PlannerConfig
from planet_torch.envs import (
    PaddedActions,
    PixelEnv,
    default_action_repeat,
    default_episode_steps,
    make_env,
)
from planet_torch.planner import CEMPlanner, RandomShootingPlanner
from planet_torch.world_model import WorldModel, check_model_kind

PlannerFactory = Callable[[PlannerConfig, torch.Tensor, torch.Tensor, str, bool], Planner]
"""(planner config, action low, action high, precision, compile) -> a planner."""

PLANNERS: dict[str, PlannerFactory] = {"cem": CEMPlanner,
                                        "random_shooting": RandomShootingPlanner}
"""`planner.kind` -> the planner it builds: the paper's CEM, or its random-shooting ablation."""


def agent_steps_per_episode(cfg: Config, task: str | None = None) -> int:
    """Agent steps T of one full episode of `task` (default: the run's first task):
    ceil(environment steps / R).

    Raises ValueError for an unknown task."""
    task = task or config_lib.task_list(cfg.task)[0]
    repeat = cfg.env.action_repeat or default_action_repeat(task)
    return -(-(cfg.env.episode_steps or default_episode_steps(task)) // repeat)


def _check_planner_kind(cfg: Config) -> None:
    """Raise ValueError unless `planner.kind` names a planner of `PLANNERS`."""
    if cfg.planner.kind not in PLANNERS:
        raise ValueError(f"unknown planner.kind {cfg.planner.kind!r}; choose one of "
                         f"{', '.join(sorted(PLANNERS))}")


def check_config(cfg: Config) -> None:
    """Raise ValueError for a config that cannot be built or cannot train on its task (an
    unknown model kind, planner kind or task, a chunk longer than an episode:
    `config.check_episode_fit`), before any folder or environment is made."""
    check_model_kind(cfg.model.kind)
    _check_planner_kind(cfg)
    for task in config_lib.task_list(cfg.task):
        config_lib.check_episode_fit(cfg, agent_steps_per_episode(cfg, task), task)


def make_envs(cfg: Config, count: int, seed: int | None = None, task: str | None = None,
              action_size: int | None = None) -> list[PixelEnv]:
    """`count` environments of `task` (default: the run's first task) with the run's
    environment settings; the first is seeded with `seed` (the others are seeded per episode
    by whoever resets them). With an `action_size` above the task's, the actions are padded
    to it (`envs.PaddedActions`)."""
    task = task or config_lib.task_list(cfg.task)[0]
    envs = [make_env(task, seed=seed if i == 0 else None, **asdict(cfg.env))
            for i in range(count)]
    return envs if action_size is None else _padded(envs, action_size)


def _padded(envs: list[PixelEnv], action_size: int) -> list[PixelEnv]:
    """The environments with their actions padded to `action_size` where they are shorter."""
    return [env if env.action_space.shape[0] == action_size else PaddedActions(env, action_size)
            for env in envs]


def make_task_envs(cfg: Config, count: int, seed: int | None = None,
                   action_size: int | None = None) -> dict[str, list[PixelEnv]]:
    """`count` >= 1 environments of each of the run's tasks (`config.task_list`), their
    actions padded to `action_size`, by default the largest action size among the tasks, so
    that one agent acts in all of them (the official code's multi-task setting). A run of
    one task gets its environments unpadded."""
    envs = {task: make_envs(cfg, count, seed, task) for task in config_lib.task_list(cfg.task)}
    size = action_size or max(e[0].action_space.shape[0] for e in envs.values())
    return {task: _padded(task_envs, size) for task, task_envs in envs.items()}


def make_world_model(cfg: Config, action_size: int,
                     device: torch.device | str = "cpu") -> WorldModel:
    """The world model of the config's sizes for actions of `action_size`, on `device`."""
    return WorldModel(cfg.model, action_size).to(device)


def make_planner(cfg: Config, low: torch.Tensor, high: torch.Tensor) -> Planner:
    """The config's planner (`planner.kind`) for actions within [low, high], in the run's
    precision, compiled if the run compiles."""
    _check_planner_kind(cfg)
    return PLANNERS[cfg.planner.kind](cfg.planner, torch.as_tensor(low),
                                      torch.as_tensor(high), cfg.precision, cfg.compile)


def make_agent(cfg: Config, model: WorldModel, low: torch.Tensor, high: torch.Tensor,
               generator: torch.Generator | None = None, planner: Planner | None = None
               ) -> Agent:
    """An agent acting with `model` and the config's planner (or the one given), drawing
    its planning and noise randomness from `generator`."""
    return Agent(model, make_planner(cfg, low, high) if planner is None else planner,
                 generator)
