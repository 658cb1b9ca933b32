"""A sweep: tasks x seeds x a grid of flags, as one folder of ordinary run folders.

`planet sweep` writes one folder, `<logdir>/<time>-sweep-<name>/`:

    sweep.yaml                         the sweep's own settings (`SweepSpec`)
    <task>-s<seed>[-<key>=<value>...]/  one run folder per trial, as `planet train` makes it
    ray/                               Ray Tune's state: trials, retries, restores

A trial is one point of the product tasks x seeds x grid. Its run folder's name is fixed by
that point (`Trial.name`), so a retried or resumed trial finds its own folder, checkpoint
and episodes again. A trial that failed for a reason a retry cannot fix leaves its one-line
error in `<run folder>/error.txt` (`ERROR_NAME`).

This module imports neither Ray nor torch: `planet report` reads sweep folders through it.
`sweep_runner` runs a sweep on Ray.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planet_torch import config as config_lib
from planet_torch.config import Config
from planet_torch.runs import new_stamped_dir

SPEC_NAME = "sweep.yaml"
"""The sweep's settings, in its folder."""
RAY_DIR = "ray"
"""Ray Tune's experiment state, in the sweep folder."""
ERROR_NAME = "error.txt"
"""A failed trial's one-line error, in its run folder."""
NOT_SWEPT = ("task", "seed", "logdir")
"""Config fields the sweep sets itself (--tasks, --seeds, the sweep folder)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from `0-4`, `0,2,5` or `0-2,7` (ranges inclusive); ValueError naming the form."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValueError(f"--seeds must look like 0-4 or 0,2,5, got {text!r}") from None
        if low < 0 or high < low:
            raise ValueError(f"--seeds range {part.strip()!r} is empty or negative; write "
                             "LOW-HIGH with 0 <= LOW <= HIGH")
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r} names a seed twice")
    return tuple(seeds)


def parse_tasks(text: str) -> tuple[str, ...]:
    """Tasks from `cartpole-swingup,cheetah-run`, each a trial of its own; `a+b` is one trial
    of one agent for tasks a and b (`planet train --task a,b`). ValueError for an empty or
    repeated list."""
    tasks = tuple(",".join(part.strip() for part in t.split("+")) for t in text.split(",")
                  if t.strip())
    if not tasks:
        raise ValueError("--tasks is empty; name at least one task (see planet tasks)")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"--tasks {text!r} names a task twice")
    return tasks


def parse_grid(specs: list[str], parse_value: Callable[[str, str], Any]
               ) -> dict[str, tuple[Any, ...]]:
    """`["planner.horizon=8,12", ...]` -> `{"planner.horizon": (8, 12), ...}`.

    `parse_value(key, text)` turns one value into the field's type and raises ValueError
    for an unknown field or a bad value.
    """
    grid: dict[str, tuple[Any, ...]] = {}
    for spec in specs:
        key, equals, values = spec.partition("=")
        key = key.strip()
        texts = [v.strip() for v in values.split(",")]
        if not equals or not key or not all(texts):
            raise ValueError(f"--grid must look like section.field=V1,V2 (e.g. "
                             f"planner.horizon=8,12), got {spec!r}")
        if key in NOT_SWEPT:
            raise ValueError(f"--grid cannot vary {key}; use --tasks and --seeds")
        if key in grid:
            raise ValueError(f"--grid names {key} twice; give all its values in one --grid")
        grid[key] = tuple(parse_value(key, text) for text in texts)
    return grid


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: a task, a seed and one value per grid field."""

    task: str
    seed: int
    point: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """The run folder's name: `<task>-s<seed>` plus `-<key>=<value>` per grid field
        (tasks `a,b` of one agent as `a+b`)."""
        parts = [f"{self.task}-s{self.seed}", *(f"{k}={v}" for k, v in self.point)]
        return "-".join(parts).replace("/", "_").replace(":", "_").replace(",", "+")


@dataclass(frozen=True)
class SweepSpec:
    """What `planet sweep` was asked to run; saved as `sweep.yaml`."""

    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str = "paper"
    assignments: dict[str, Any] = field(default_factory=dict)
    """Flags given to every run, `{"train.episodes": 10}`."""
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Grid fields and their values; every combination is run."""
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_failures: int = 3
    address: str | None = None
    """Ray cluster joined (`auto`, `HOST:PORT`); None starts a local instance."""
    command: str = ""

    def trials(self) -> list[Trial]:
        """Every trial, task-major: tasks x seeds x grid."""
        points = itertools.product(*([(key, v) for v in values]
                                     for key, values in self.grid.items()))
        return [Trial(task, seed, tuple(point)) for task, seed, point in
                itertools.product(self.tasks, self.seeds, list(points))]

    def run_config(self, trial: Trial, sweep_dir: Path) -> Config:
        """The config of a trial's run: the preset, the flags, its grid point, task and seed."""
        return config_lib.override(config_lib.PRESETS[self.preset](), {
            **self.assignments, **dict(trial.point), "task": trial.task, "seed": trial.seed,
            "logdir": str(sweep_dir)})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(tasks=list(self.tasks), seeds=list(self.seeds),
                    grid={k: list(v) for k, v in self.grid.items()})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        data = dict(data)
        data.update(tasks=tuple(data["tasks"]), seeds=tuple(data["seeds"]),
                    grid={k: tuple(v) for k, v in (data.get("grid") or {}).items()})
        return cls(**data)


def new_sweep_dir(logdir: Path, name: str) -> Path:
    """A fresh folder `<logdir>/<time>-sweep-<name>[-k]`, as an absolute path."""
    return new_stamped_dir(logdir, f"sweep-{name}").resolve()


def save_spec(spec: SweepSpec, sweep_dir: Path) -> None:
    """Write sweep.yaml atomically."""
    path = Path(sweep_dir) / SPEC_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    os.replace(tmp, path)


def is_sweep_dir(path: Path) -> bool:
    """Whether `path` is a folder made by `planet sweep`."""
    return (Path(path) / SPEC_NAME).is_file()


def load_spec(sweep_dir: Path) -> SweepSpec:
    """The settings of a sweep folder; ValueError if it is not one."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise ValueError(f"{sweep_dir} is not a sweep folder (no {SPEC_NAME}); pass a folder "
                         "made by `planet sweep`")
    return SweepSpec.from_dict(yaml.safe_load((sweep_dir / SPEC_NAME).read_text()))


def read_error(run_dir: Path) -> str | None:
    """The one-line error a failed trial left in its run folder, if any."""
    path = Path(run_dir) / ERROR_NAME
    return path.read_text().strip() if path.is_file() else None
