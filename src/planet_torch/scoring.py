"""`planet test`: the score of a trained agent over noise-free test episodes.

The paper reports the mean return of 10 test episodes without exploration noise (Table 1:
5 seeds x 10 episodes). `score` plays the episodes together (see `trained.play`) from
distinct seeds and `TestResult` holds what a results file records: the per-episode
returns with their mean, standard deviation, minimum and maximum, the seeds, and which
checkpoint at which point of training produced them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planet_torch.evaluate import episode_return
from planet_torch.runs import seed_of_test_episode
from planet_torch.trained import Playthrough, StepHook, TrainedRun, play


@dataclass(frozen=True)
class TestResult:
    """Returns of noise-free test episodes of one checkpoint."""

    __test__ = False  # not a pytest test class, despite the name

    task: str
    """The task played (one of the run's tasks)."""
    checkpoint: str
    """Path of the checkpoint that acted."""
    counters: dict[str, int]
    """The checkpoint's progress: episodes, env_steps, updates, test_phases."""
    seeds: list[int]
    """Environment seed of each episode."""
    returns: list[float]
    """Undiscounted return of each episode."""
    precision: str = "fp32"
    """Precision the planner ran in (fp32 or bf16)."""
    planner: dict[str, Any] = field(default_factory=dict)
    """The planner's settings (`PlannerConfig` fields): the run's, or those `planet test`
    was given."""

    @property
    def mean(self) -> float:
        """Mean return."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Standard deviation of the returns (population, ddof 0)."""
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, Any]:
        """Every field plus mean, std, min and max, as JSON-ready values."""
        return {**asdict(self), "episodes": len(self.returns), "mean": self.mean,
                "std": self.std, "min": min(self.returns), "max": max(self.returns)}

    def summary(self) -> str:
        """One line: mean, std, min and max over the episodes."""
        return (f"{self.task}: return {self.mean:.1f} +- {self.std:.1f} "
                f"(min {min(self.returns):.1f}, max {max(self.returns):.1f}) over "
                f"{len(self.returns)} episodes, checkpoint after "
                f"{self.counters.get('episodes', 0)} episodes")


def default_seed(run: TrainedRun) -> int:
    """First test seed when none is given: far from every training episode's seed."""
    return seed_of_test_episode(run.cfg.seed)


def score(run: TrainedRun, episodes: int, seed: int | None = None,
          on_step: StepHook | None = None, should_stop: Callable[[], bool] | None = None,
          task: str | None = None) -> tuple[TestResult, Playthrough]:
    """Play `episodes` noise-free episodes of `task` (default: the run's first) from seeds
    seed, seed + 1, ...; returns both.

    `on_step` and `should_stop` are passed to `trained.play` (the live viewer uses them).
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    first = default_seed(run) if seed is None else seed
    seeds = list(range(first, first + episodes))
    task = task or run.tasks[0]
    desc = "test" if len(run.tasks) == 1 else f"test {task}"
    played = play(run, seeds, on_step, should_stop, desc=desc, task=task)
    result = TestResult(task, str(run.checkpoint), dict(run.counters), seeds,
                        [episode_return(e) for e in played.episodes], run.cfg.precision,
                        asdict(run.cfg.planner))
    return result, played


def write_result(result: TestResult, path: Path) -> Path:
    """Write the result as indented JSON to path; returns path."""
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return path
