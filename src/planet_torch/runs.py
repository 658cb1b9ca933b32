"""The run folder: what a run writes where, how its episodes are seeded, and its config.

A run folder, made by `planet train` under the logdir as `<time>-<task>-s<seed>`, holds:

    config.yaml       the resolved config          checkpoint.pt   latest checkpoint
    episodes/         every collected episode      metrics.jsonl   scalars, one JSON a line
    events.out.tfevents.*   TensorBoard            videos/         (written by `planet test`)

Every tool that reads a run starts here: `check_run_dir` is the one test of "is this a run
folder" and `RunFolderError` its one error. The seed policy lives here too, so that training
episodes, test episodes and the tools that replay them agree:

    training episode k of a run with seed s:   s * 10_000 + k
    test episode i of test phase p:            1_000_003 * (s + 1) + p * N + i   (N per phase)

This module imports neither torch nor the environments: `planet plot` reads run folders
through it and stays light.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from planet_torch import config as config_lib
from planet_torch.config import Config

CONFIG_NAME = "config.yaml"
"""The run's resolved config."""
CHECKPOINT_NAME = "checkpoint.pt"
"""The latest checkpoint."""
EPISODES_DIR = "episodes"
"""Every collected episode, one file each."""
METRICS_NAME = "metrics.jsonl"
"""Scalars, one JSON object a line."""

TRAIN_SEED_STRIDE = 10_000
"""Training episode k of a run with seed s starts from environment seed s * stride + k."""
TEST_SEED_OFFSET = 1_000_003
"""Test episodes draw seeds far from training seeds so the two never share a start."""


class RunFolderError(ValueError):
    """A path is not a run folder made by `planet train`."""


def new_stamped_dir(logdir: Path, label: str) -> Path:
    """A fresh folder `<logdir>/<time>-<label>[-k]`, never an existing one."""
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    base = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{label}"
    for k in range(1000):
        path = logdir / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a new folder under {logdir}")


def new_run_dir(logdir: Path, task: str, seed: int) -> Path:
    """A fresh folder `<logdir>/<time>-<task>-s<seed>[-k]`, never an existing one (several
    tasks `a,b` as `a+b`)."""
    label = task.replace(':', '_').replace('/', '_').replace(',', '+')
    return new_stamped_dir(logdir, f"{label}-s{seed}")


def check_run_dir(run_dir: Path, *also: str) -> Path:
    """run_dir as a Path if it is a run folder (a folder with a config.yaml, and each file
    named in `also`); otherwise RunFolderError saying what to pass instead."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir} does not exist, so it is not a run folder; pass a "
                             "folder made by `planet train`")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a run folder; pass the folder made by "
                             "`planet train` (a checkpoint file goes with --checkpoint)")
    for name in (CONFIG_NAME, *also):
        if not (run_dir / name).is_file():
            raise RunFolderError(f"{run_dir} is not a run folder (no {name}); pass a "
                                 "folder made by `planet train`")
    return run_dir


def load_config(run_dir: Path) -> Config:
    """The saved config of a run folder (RunFolderError if it is not one)."""
    return config_lib.load(check_run_dir(run_dir) / CONFIG_NAME)


def resume_config(run_dir: Path, assignments: dict[str, Any]) -> Config:
    """The saved config of a run with the flags given on `--resume` applied.

    Raises RunFolderError for a folder that is not a run, and ValueError (naming the flag)
    for a change to a field the run's weights and episodes depend on
    (`config.FIXED_ON_RESUME`).
    """
    return config_lib.resume_override(load_config(run_dir), assignments)


def save_config(cfg: Config, run_dir: Path) -> None:
    """Write the run's config.yaml (atomically)."""
    config_lib.save(cfg, Path(run_dir) / CONFIG_NAME)


def seed_of_training_episode(run_seed: int, episode: int) -> int:
    """Environment seed of training episode `episode` (0-based, seed episodes included)."""
    return run_seed * TRAIN_SEED_STRIDE + episode


def seed_of_test_episode(run_seed: int, index: int = 0) -> int:
    """Environment seed of the run's test episode `index`, counted over all test phases
    (phase p of N episodes holds indices p * N .. p * N + N - 1); index 0 is where
    `planet test` starts by default."""
    return TEST_SEED_OFFSET * (run_seed + 1) + index


def planning_seed_after_device_change(run_seed: int, updates: int) -> int:
    """Seed of the planning and noise generator when a checkpoint's generator state was
    written on another device type and cannot be restored: fixed by the run and its progress."""
    return run_seed * TEST_SEED_OFFSET + updates


def task_metric(metric: str, task: str, tasks: tuple[str, ...]) -> str:
    """The name under which a run of `tasks` logs `metric` (`train/return`, `test/return`)
    of one of them: the name itself for a run of one task, `<section>/<task>/<rest>` (e.g.
    `test/cheetah-run/return`) for a run of several."""
    if len(tasks) == 1:
        return metric
    section, rest = metric.split("/", 1)
    return f"{section}/{task}/{rest}"


def task_of_episode(tasks: tuple[str, ...], index: int) -> str:
    """The task training episode `index` (from 0) of a run of `tasks` is played in: they
    take turns, episode k in task k mod n (the seed episodes too)."""
    return tasks[index % len(tasks)]


def seed_episodes_of_task(cfg: Config, task: str) -> int:
    """How many of the run's seed episodes were played in `task` (`task_of_episode`)."""
    tasks = config_lib.task_list(cfg.task)
    return sum(task_of_episode(tasks, k) == task for k in range(cfg.train.seed_episodes))


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The records of a metrics.jsonl file (or a run folder's), skipping a torn last line
    and any line that is not a record of `Logger.scalars` (a JSON object with env_steps)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "env_steps" in record:  # not a line of `scalars`
            records.append(record)
    return records
