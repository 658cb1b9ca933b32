"""A trained agent read back from a run folder, and noise-free episodes played with it.

`planet test`, `planet predict` and the live viewer start here. `load_run` reads the run's
`config.yaml` (task, environment, planner, bit depth) and a checkpoint (the run's latest,
or any file given), rebuilds the world model from the checkpoint's own config on the CPU
and moves it to the chosen device, so a run trained on a GPU plays on a CPU and back.
`play` then runs N episodes at once: the N environments are stepped together and all N
agents are planned for in one batched CEM call per step, with no exploration noise. A run
of several tasks plays one of them at a time (`tasks`, `play(..., task=)`), its actions
padded to the model's action size as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from planet_torch import checkpoint, runs
from planet_torch import config as config_lib
from planet_torch.acceleration import resolve_device
from planet_torch.agent import Agent
from planet_torch.assembly import agent_steps_per_episode, make_agent, make_envs
from planet_torch.checkpoint import CheckpointError
from planet_torch.config import Config
from planet_torch.evaluate import run_episodes
from planet_torch.replay import Episode
from planet_torch.video import DEFAULT_FPS
from planet_torch.world_model import WorldModel

StepHook = Callable[[np.ndarray, Agent], None]
"""Called after every planning step with the observations (N, 64, 64, 3) and the agent."""


@dataclass(frozen=True)
class TrainedRun:
    """A run folder's config with a checkpoint's world model, ready to act."""

    run_dir: Path
    """The run folder."""
    cfg: Config
    """The run's config.yaml: task, environment, planner and bit depth come from here."""
    model: WorldModel
    """The checkpoint's world model in eval mode, on the chosen device."""
    checkpoint: Path
    """The checkpoint file the model was read from."""
    counters: dict[str, int]
    """The checkpoint's progress: episodes, env_steps, updates, test_phases."""

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks the run trained on (`config.task_list`): one, or several."""
        return config_lib.task_list(self.cfg.task)

    def check_task(self, task: str) -> str:
        """task if the run trained on it; ValueError naming the run's tasks otherwise."""
        if task not in self.tasks:
            raise ValueError(f"{self.run_dir} was trained on {', '.join(self.tasks)}, not "
                             f"{task}; choose --task among those")
        return task

    @property
    def tag(self) -> str:
        """File-name tag of the checkpoint's progress, e.g. `ep000120` after 120 episodes."""
        return f"ep{int(self.counters.get('episodes', 0)):06d}"


def load_run(run_dir: Path, checkpoint_path: Path | None = None,
             device: str = "auto", precision: str | None = None,
             planner: Mapping[str, Any] | None = None) -> TrainedRun:
    """Read a run folder and its latest checkpoint (or `checkpoint_path`) onto `device`.

    `precision` (fp32 or bf16) replaces the run's precision for acting with it: the planner's
    imagined rollout runs in it (benchmarks/precision_learning.md: planning a trained model
    in bf16 instead of fp32 left its test returns unchanged). `planner` replaces planner
    settings, named as on the command line (`{"planner.candidates": 1000}`); the trained
    model does not depend on them.

    Raises `RunFolderError` when run_dir is not a run folder, and `CheckpointError` when the
    checkpoint is missing, corrupt, or from a run of another task or environment setting.
    """
    run_dir = runs.check_run_dir(run_dir)
    cfg = runs.load_config(run_dir)
    if precision is not None:
        cfg = replace(cfg, precision=precision)  # Config validates it
    if planner:
        if not all(key.startswith("planner.") for key in planner):
            raise ValueError(f"only planner settings may change, got {sorted(planner)}")
        cfg = config_lib.override(cfg, dict(planner))  # PlannerConfig validates them
        config_lib.validate(cfg)
    path = checkpoint.resolve(run_dir if checkpoint_path is None else Path(checkpoint_path))
    payload = checkpoint.load(path)
    trained_cfg, model = checkpoint.restore_model(payload, resolve_device(device))
    if (trained_cfg.task, trained_cfg.env) != (cfg.task, cfg.env):
        raise CheckpointError(
            f"checkpoint {path} was trained on {trained_cfg.task} ({trained_cfg.env}), but "
            f"{run_dir} is a run of {cfg.task} ({cfg.env}); pass a checkpoint of this run")
    counters: dict[str, Any] = payload.get("counters", {})
    return TrainedRun(run_dir, cfg, model.eval(), path, {k: int(v) for k, v in counters.items()})


def episode_rows(cfg: Config, task: str | None = None) -> int:
    """Frames of a full episode of `task` (default: the run's first): agent steps plus the
    reset frame.

    An episode that terminates early (some Gymnasium tasks) has fewer.
    """
    return agent_steps_per_episode(cfg, task) + 1


class Playthrough(NamedTuple):
    """Episodes played together, with the frame rate to show them at."""

    episodes: list[Episode]
    """One episode per seed, in the replay's row convention."""
    fps: float
    """Agent steps per second of simulated time, the natural video frame rate."""


def play(run: TrainedRun, seeds: Sequence[int], on_step: StepHook | None = None,
         should_stop: Callable[[], bool] | None = None, desc: str = "episodes",
         task: str | None = None) -> Playthrough:
    """One noise-free episode per seed of `task` (default: the run's first), all
    environments stepped and planned together.

    Planning randomness comes from a generator seeded with seeds[0], so a call repeats
    exactly. A progress bar counts agent steps; `should_stop()` turning true raises
    `evaluate.Interrupted`.
    """
    if not seeds:
        raise ValueError("need at least one seed (one episode)")
    cfg = run.cfg
    task = run.check_task(task or run.tasks[0])
    envs = make_envs(cfg, len(seeds), task=task, action_size=run.model.action_size)
    space = envs[0].action_space
    generator = torch.Generator(run.model.device).manual_seed(int(seeds[0]))
    agent = make_agent(cfg, run.model, torch.as_tensor(space.low), torch.as_tensor(space.high),
                       generator)
    agent.reset(len(envs))
    fps = envs[0].metadata.get("render_fps") or DEFAULT_FPS
    bar = tqdm(total=episode_rows(cfg, task) - 1, unit="step",
               desc=f"{desc} ({len(envs)} together)", dynamic_ncols=True)

    def policy(obs: np.ndarray) -> np.ndarray:
        action = agent.act(obs)
        if on_step is not None:
            on_step(obs, agent)
        bar.update()
        return action

    try:
        episodes = run_episodes(envs, policy, list(seeds), should_stop)
    finally:
        bar.close()
        for env in envs:
            env.close()
    return Playthrough(episodes, float(fps))
