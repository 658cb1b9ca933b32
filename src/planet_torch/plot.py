"""Figures written as files, headless: learning curves of runs, and prediction error.

`planet plot` reads each run's `metrics.jsonl` (train/return per training episode,
test/return per test phase, both against environment steps) and its `config.yaml` (the
task). A run of several tasks gives a curve per task, from `train/<task>/return` and
`test/<task>/return` (`read_runs`). Runs of the same task share a panel: each run is a
thin line, and with two or more runs their mean is a thick line over the steps all of them
reached, with one standard deviation shaded. For the paper's six tasks a dashed line marks
PlaNet's score in the paper's Table 1 (mean test return after 1000 episodes of 1000
environment steps, i.e. at 1e6 environment steps); a dotted line marks random play: the
mean return of each run's seed episodes (uniformly random actions), averaged over the runs.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, no display.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from planet_torch import config as config_lib
from planet_torch.runs import (
    METRICS_NAME,
    RunFolderError,
    check_run_dir,
    load_config,
    read_metrics,
    seed_episodes_of_task,
    task_metric,
)

PAPER_SCORES = {
    "cartpole-swingup": 821, "reacher-easy": 832, "cheetah-run": 662,
    "finger-spin": 700, "cup-catch": 930, "walker-walk": 951,
}
"""PlaNet's mean test return at 1000 episodes in the paper's Table 1."""
CURVES = {"train/return": "train", "test/return": "test"}
"""Metrics drawn, and their legend names."""
FIGURE_FORMATS = (".png", ".svg")
"""Every figure is written in these formats, side by side."""


class Curve(NamedTuple):
    """One metric of one run: environment steps and values, sorted by step."""

    steps: np.ndarray
    values: np.ndarray


class RunCurves(NamedTuple):
    """The curves of one run folder."""

    run_dir: Path
    task: str
    curves: dict[str, Curve]
    """Metric name (a key of CURVES) -> curve; metrics the run never logged are absent."""
    random_returns: np.ndarray
    """Returns of the run's seed episodes, played with uniformly random actions (or their
    mean alone, as a results file keeps it)."""


def read_run(run_dir: Path, task: str | None = None) -> RunCurves:
    """The return curves of one task of a run folder (default: its first task);
    RunFolderError if it has none."""
    run_dir = check_run_dir(run_dir, METRICS_NAME)
    cfg = load_config(run_dir)
    tasks = config_lib.task_list(cfg.task)
    task = task or tasks[0]
    records = read_metrics(run_dir)
    curves = {}
    for metric in CURVES:
        logged = task_metric(metric, task, tasks)
        points = sorted((r["env_steps"], r[logged]) for r in records if logged in r)
        if points:
            steps, values = np.asarray(points, dtype=np.float64).T
            curves[metric] = Curve(steps, values)
    if not curves:
        raise RunFolderError(f"{run_dir} has no returns logged yet "
                             f"({', '.join(task_metric(m, task, tasks) for m in CURVES)})")
    train = curves.get("train/return")
    seeded = (train.values[:seed_episodes_of_task(cfg, task)] if train is not None
              else np.zeros(0))
    return RunCurves(run_dir, task, curves, seeded)


def read_runs(run_dir: Path) -> list[RunCurves]:
    """`read_run` of each task of a run folder: one for a run of one task."""
    tasks = config_lib.task_list(load_config(check_run_dir(run_dir)).task)
    return [read_run(run_dir, task) for task in tasks]


def mean_and_spread(curves: Sequence[Curve], points: int = 200) -> tuple[Curve, np.ndarray]:
    """Mean and standard deviation of curves on a common grid of environment steps.

    The grid spans the steps that every curve covers (linear interpolation between logged
    points); returns (mean curve, std) with std of the same length as the grid.
    """
    start = max(c.steps[0] for c in curves)
    end = min(c.steps[-1] for c in curves)
    grid = np.linspace(start, end, points) if end > start else np.asarray([start])
    stacked = np.stack([np.interp(grid, c.steps, c.values) for c in curves])
    return Curve(grid, stacked.mean(axis=0)), stacked.std(axis=0)


def _draw_task(axes: Axes, task: str, runs: Sequence[RunCurves], panel: str = "") -> None:
    """One panel: every run's curves, their mean and spread, the paper's score; `panel`
    (a grid point) is added to the title."""
    for (metric, label), colour in zip(CURVES.items(), ("tab:blue", "tab:orange"),
                                       strict=True):
        curves = [r.curves[metric] for r in runs if metric in r.curves]
        if not curves:
            continue
        single = len(curves) == 1
        for curve in curves:
            axes.plot(curve.steps, curve.values, color=colour, linewidth=1.5 if single else 0.7,
                      alpha=1.0 if single else 0.35, label=label if single else None,
                      marker="." if len(curve.steps) < 20 else None)
        if not single:
            mean, std = mean_and_spread(curves)
            axes.plot(mean.steps, mean.values, color=colour, linewidth=2,
                      label=f"{label} (mean of {len(curves)} runs, ±1 std)")
            axes.fill_between(mean.steps, mean.values - std, mean.values + std, color=colour,
                              alpha=0.2, linewidth=0)
    if task in PAPER_SCORES:
        axes.axhline(PAPER_SCORES[task], color="black", linestyle="--", linewidth=1,
                     label=f"PlaNet paper ({PAPER_SCORES[task]})")
    random = [r.random_returns.mean() for r in runs if len(r.random_returns)]
    if random:
        axes.axhline(np.mean(random), color="grey", linestyle=":", linewidth=1.5,
                     label=f"random actions ({np.mean(random):.0f}, the seed episodes of "
                           f"{len(random)} run{'s' if len(random) > 1 else ''})")
    axes.set_title(f"{task}{', ' + panel if panel else ''} "
                   f"({len(runs)} run{'s' if len(runs) > 1 else ''})")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("return")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")


def figure_paths(output: Path) -> list[Path]:
    """`output` with each of FIGURE_FORMATS as suffix (`curves.png` -> png and svg)."""
    output = Path(output)
    if output.suffix not in ("", *FIGURE_FORMATS):
        raise ValueError(f"--output must end in {' or '.join(FIGURE_FORMATS)} (both are "
                         f"written), got {output}")
    return [output.with_suffix(suffix) for suffix in FIGURE_FORMATS]


def _save(figure: Figure, output: Path) -> list[Path]:
    paths = figure_paths(output)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        figure.savefig(path)
    return paths


def learning_curves(run_dirs: Sequence[Path], output: Path,
                    labels: Mapping[Path, str] | None = None) -> list[Path]:
    """Plot the runs' returns against environment steps, one panel per task (a run of
    several tasks appears in each of its tasks' panels).

    With `labels` (run folder -> text, e.g. a sweep's grid point), runs of one task with
    different labels get a panel each. Writes `output` as PNG and SVG and returns the paths
    written.
    """
    labels = labels or {}
    return curves_figure([(run, labels.get(Path(run_dir), "")) for run_dir in run_dirs
                          for run in read_runs(run_dir)], output)


def curves_figure(runs: Sequence[tuple[RunCurves, str]], output: Path) -> list[Path]:
    """Draw (curves, label) pairs, one panel per task and label; writes `output` as PNG and
    SVG and returns the paths written."""
    panels: dict[tuple[str, str], list[RunCurves]] = defaultdict(list)
    for run, label in runs:
        panels[run.task, label].append(run)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5.5 * columns, 4 * rows), layout="constrained")
    for index, ((task, label), runs) in enumerate(sorted(panels.items()), start=1):
        _draw_task(figure.add_subplot(rows, columns, index), task, runs, label)
    return _save(figure, output)


def prediction_error(mse: np.ndarray, output: Path, title: str) -> list[Path]:
    """Plot the MSE of each step ahead of open-loop prediction; writes PNG and SVG."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(np.arange(1, len(mse) + 1), mse, marker=".")
    axes.set_title(title)
    axes.set_xlabel("steps ahead (agent steps after the last context frame)")
    axes.set_ylabel("mean squared error per pixel")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    return _save(figure, output)
