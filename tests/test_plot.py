"""Learning curves and prediction-error figures (`planet_torch.plot`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planet_torch import config as config_lib
from planet_torch.plot import (
    Curve,
    figure_paths,
    learning_curves,
    mean_and_spread,
    prediction_error,
    read_run,
)
from planet_torch.runs import RunFolderError


def fake_run(folder: Path, task: str, records: list[dict[str, float]]) -> Path:
    """A run folder with a config and a metrics file, as `planet train` leaves them."""
    folder.mkdir(parents=True)
    config_lib.save(config_lib.Config(task=task), folder / "config.yaml")
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records)
                                          + '{"env_steps": 9')  # a torn last line
    return folder


def test_read_run_sorts_curves_by_step_and_skips_other_metrics(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "a", "cartpole-swingup", [
        {"env_steps": 200, "train/return": 2.0}, {"env_steps": 100, "train/return": 1.0},
        {"env_steps": 200, "model/loss": 5.0}, {"env_steps": 200, "test/return": 3.0}])
    curves = read_run(run)
    assert curves.task == "cartpole-swingup"
    assert curves.curves["train/return"].steps.tolist() == [100, 200]
    assert curves.curves["train/return"].values.tolist() == [1.0, 2.0]
    assert curves.curves["test/return"].values.tolist() == [3.0]


def test_read_run_refuses_a_run_without_returns(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "a", "cartpole-swingup", [{"env_steps": 1, "model/loss": 1.0}])
    with pytest.raises(RunFolderError, match="no returns"):
        read_run(run)


def test_mean_and_spread_interpolates_on_the_common_range() -> None:
    a = Curve(np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = Curve(np.array([5.0, 20.0]), np.array([15.0, 30.0]))  # b(x) = x + 10
    mean, std = mean_and_spread([a, b], points=3)
    assert mean.steps.tolist() == [5.0, 7.5, 10.0]
    assert mean.values == pytest.approx([10.0, 12.5, 15.0])
    assert std == pytest.approx([5.0, 5.0, 5.0])


def test_learning_curves_of_seeds_and_tasks(tmp_path: Path) -> None:
    runs = [fake_run(tmp_path / f"s{seed}", "cheetah-run",
                     [{"env_steps": s, "train/return": s * (seed + 1) / 10,
                       "test/return": s / 10} for s in range(100, 1100, 100)])
            for seed in range(3)]
    runs.append(fake_run(tmp_path / "toy", "toy-reach", [{"env_steps": 50, "test/return": 9}]))
    png, svg = learning_curves(runs, tmp_path / "out" / "curves")
    assert (png.name, svg.name) == ("curves.png", "curves.svg")
    assert png.stat().st_size > 1000 and "PlaNet paper (662)" in svg.read_text()


def test_figure_paths_accept_png_svg_or_no_suffix() -> None:
    assert figure_paths(Path("a/b.svg")) == [Path("a/b.png"), Path("a/b.svg")]
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        figure_paths(Path("b.jpg"))


def test_prediction_error_figure(tmp_path: Path) -> None:
    png, _ = prediction_error(np.linspace(0.001, 0.01, 45), tmp_path / "e.png", "title")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_labels_split_a_task_into_panels_titled_by_their_grid_point(tmp_path: Path,
                                                                    monkeypatch) -> None:
    from planet_torch import plot

    records = [{"env_steps": 100, "train/return": 1.0}, {"env_steps": 200, "test/return": 2.0}]
    runs = [fake_run(tmp_path / name, "cartpole-swingup", records) for name in "abc"]
    titles: list[list[str]] = []
    monkeypatch.setattr(plot, "_save", lambda figure, output: titles.append(
        [axes.get_title() for axes in figure.axes]) or [])
    learning_curves(runs, tmp_path / "curves.png")
    learning_curves(runs, tmp_path / "curves.png", {runs[0]: "planner.horizon=8",
                                                     runs[1]: "planner.horizon=12",
                                                     runs[2]: "planner.horizon=12"})
    assert titles == [["cartpole-swingup (3 runs)"],
                      ["cartpole-swingup, planner.horizon=12 (2 runs)",
                       "cartpole-swingup, planner.horizon=8 (1 run)"]]
