"""`planet report`: runs summarised per task (and grid point) against the paper's Table 1.

For each run folder, and each of its tasks for a run of several (`summarise_tasks`), from
its `metrics.jsonl`:

    final test return   the mean noise-free test return of its last test phase
    best test return    the highest of its test phases
    episodes reached    training episodes done (seed episodes included)

Runs are grouped by task and, for a sweep with a grid, by grid point (`group_rows`). A group
gives the number of seeds with a test return, the episodes reached (fewest to most), the
mean and standard deviation over seeds of the final and the best test return (the
population standard deviation, numpy's default, as `planet plot` shades it), PlaNet's score
in the paper's Table 1 (mean test return after 1000 episodes) and the ratio of the mean
final test return to it. A run without a test phase yet counts as a run, not as a seed;
a failed trial of a sweep is listed with its one-line error.

Written as a printed table, and as Markdown, CSV and JSON (`write_report`). This module
imports neither torch nor Ray.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planet_torch import config as config_lib
from planet_torch import sweep
from planet_torch.plot import PAPER_SCORES
from planet_torch.runs import (
    CONFIG_NAME,
    METRICS_NAME,
    check_run_dir,
    load_config,
    read_metrics,
    seed_episodes_of_task,
    task_metric,
)

REPORT_NAME = "report"
"""Stem of the files `planet report` writes: report.md, report.csv, report.json."""


@dataclass
class RunSummary:
    """What one run folder reached."""

    run_dir: str
    task: str
    seed: int
    point: dict[str, Any] = field(default_factory=dict)
    """The run's grid values (empty outside a sweep with a grid)."""
    episodes: int = 0
    env_steps: int = 0
    test_curve: list[tuple[int, float]] = field(default_factory=list)
    """(environment steps, mean test return) of every test phase."""
    final_test_return: float | None = None
    best_test_return: float | None = None
    random_return: float | None = None
    """Mean return of the run's seed episodes (uniformly random actions)."""
    error: str | None = None
    """A failed trial's one-line error."""


def summarise_run(run_dir: Path, grid_keys: Sequence[str] = (),
                  task: str | None = None) -> RunSummary:
    """The summary of one task of a run folder (default: its first task); `grid_keys` are
    read from its config as its grid point."""
    run_dir = check_run_dir(run_dir)
    cfg = load_config(run_dir)
    tasks = config_lib.task_list(cfg.task)
    task = task or tasks[0]
    test_key = task_metric("test/return", task, tasks)
    train_key = task_metric("train/return", task, tasks)
    records = read_metrics(run_dir) if (run_dir / METRICS_NAME).is_file() else []
    tests = [(int(r["env_steps"]), float(r[test_key])) for r in records if test_key in r]
    trains = [float(r[train_key]) for r in records if train_key in r]
    seeded = trains[:seed_episodes_of_task(cfg, task)]
    return RunSummary(
        run_dir=str(run_dir), task=task, seed=cfg.seed,
        point={key: config_lib.field_value(cfg, key) for key in grid_keys},
        episodes=int(max((r.get("train/episodes", 0) for r in records), default=0)),
        env_steps=int(max((r["env_steps"] for r in records), default=0)),
        test_curve=tests,
        final_test_return=tests[-1][1] if tests else None,
        best_test_return=max(v for _, v in tests) if tests else None,
        random_return=float(np.mean(seeded)) if seeded else None,
        error=sweep.read_error(run_dir))


def summarise_tasks(run_dir: Path, grid_keys: Sequence[str] = ()) -> list[RunSummary]:
    """`summarise_run` of each task of a run folder: one for a run of one task."""
    tasks = config_lib.task_list(load_config(check_run_dir(run_dir)).task)
    return [summarise_run(run_dir, grid_keys, task) for task in tasks]


def summarise_sweep(sweep_dir: Path) -> list[RunSummary]:
    """A summary of every trial of a sweep folder, started or not, failed or not."""
    spec = sweep.load_spec(sweep_dir)
    summaries = []
    for trial in spec.trials():
        run_dir = Path(sweep_dir) / trial.name
        if (run_dir / CONFIG_NAME).is_file():
            summaries.extend(summarise_tasks(run_dir, list(spec.grid)))
        else:  # failed before its run began, or not started yet
            summaries.append(RunSummary(str(run_dir), trial.task, trial.seed, dict(trial.point),
                                        error=sweep.read_error(run_dir)))
    return summaries


def summarise(paths: Sequence[Path]) -> list[RunSummary]:
    """Summaries of sweep folders and run folders, in the order given."""
    summaries: list[RunSummary] = []
    for path in paths:
        if sweep.is_sweep_dir(path):
            summaries.extend(summarise_sweep(path))
        else:
            summaries.extend(summarise_tasks(path))
    return summaries


@dataclass
class GroupRow:
    """The runs of one task at one grid point."""

    task: str
    point: dict[str, Any]
    runs: int
    seeds: int
    """Runs with at least one test phase."""
    failed: int
    episodes_min: int
    episodes_max: int
    final_mean: float | None
    final_std: float | None
    best_mean: float | None
    best_std: float | None
    paper: float | None
    """PlaNet's score in the paper's Table 1, for its six tasks."""
    ratio: float | None
    """final_mean / paper."""


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def group_rows(summaries: Sequence[RunSummary]) -> list[GroupRow]:
    """One row per (task, grid point), in the order they first appear."""
    groups: dict[tuple[str, str], list[RunSummary]] = {}
    for s in summaries:
        groups.setdefault((s.task, json.dumps(s.point, sort_keys=True)), []).append(s)
    rows = []
    for (task, _), members in groups.items():
        tested = [s for s in members if s.final_test_return is not None and s.error is None]
        final_mean, final_std = _mean_std([s.final_test_return for s in tested])
        best_mean, best_std = _mean_std([s.best_test_return for s in tested])
        paper = PAPER_SCORES.get(task)
        rows.append(GroupRow(
            task=task, point=members[0].point, runs=len(members), seeds=len(tested),
            failed=sum(s.error is not None for s in members),
            episodes_min=min(s.episodes for s in members),
            episodes_max=max(s.episodes for s in members),
            final_mean=final_mean, final_std=final_std, best_mean=best_mean, best_std=best_std,
            paper=paper, ratio=None if paper is None or final_mean is None
            else final_mean / paper))
    return rows


def _pm(mean: float | None, std: float | None) -> str:
    return "–" if mean is None else f"{mean:.1f} ± {std:.1f}"


def table(rows: Sequence[GroupRow]) -> list[list[str]]:
    """The report as text cells, header first."""
    keys = list(dict.fromkeys(k for row in rows for k in row.point))
    header = ["task", *keys, "seeds", "failed", "episodes", "final test return",
              "best test return", "paper", "final / paper"]
    cells = [header]
    for row in rows:
        episodes = (str(row.episodes_min) if row.episodes_min == row.episodes_max
                    else f"{row.episodes_min}-{row.episodes_max}")
        cells.append([row.task, *(str(row.point.get(k, "")) for k in keys),
                      f"{row.seeds}/{row.runs}", str(row.failed), episodes,
                      _pm(row.final_mean, row.final_std), _pm(row.best_mean, row.best_std),
                      "–" if row.paper is None else f"{row.paper:.0f}",
                      "–" if row.ratio is None else f"{row.ratio:.2f}"])
    return cells


def text_table(cells: Sequence[Sequence[str]]) -> str:
    """Cells as aligned plain-text columns."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def errors(summaries: Sequence[RunSummary]) -> list[str]:
    """`<run folder name>: <error>` for every failed run."""
    return [f"{Path(s.run_dir).name}: {s.error}" for s in summaries if s.error is not None]


def markdown(rows: Sequence[GroupRow], summaries: Sequence[RunSummary]) -> str:
    """The report as a Markdown document: the table, then the failed runs."""
    cells = table(rows)
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    lines += ["", "Final test return: the mean noise-free test return of each run's last "
              "test phase; mean ± standard deviation over seeds. Paper: PlaNet's score after "
              "1000 episodes in the paper's Table 1."]
    failed = errors(summaries)
    if failed:
        lines += ["", "Failed runs:", "", *(f"- {line}" for line in failed)]
    return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(rows: Sequence[GroupRow], summaries: Sequence[RunSummary], folder: Path
                 ) -> list[Path]:
    """Write report.md, report.csv and report.json into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{REPORT_NAME}{suffix}" for suffix in (".md", ".csv", ".json")]
    paths[0].write_text(markdown(rows, summaries))
    with paths[1].open("w", newline="") as handle:
        writer = csv.writer(handle)
        keys = list(dict.fromkeys(k for row in rows for k in row.point))
        fields = [f.name for f in GroupRow.__dataclass_fields__.values() if f.name != "point"]
        writer.writerow(["task", *keys, *fields[1:]])
        for row in rows:
            values = asdict(row)
            writer.writerow([row.task, *(row.point.get(k, "") for k in keys),
                             *("" if values[f] is None else values[f] for f in fields[1:])])
    document = {"groups": [asdict(row) for row in rows],
                "runs": [{k: _finite(v) for k, v in asdict(s).items()} for s in summaries]}
    paths[2].write_text(json.dumps(document, indent=1) + "\n")
    return paths
