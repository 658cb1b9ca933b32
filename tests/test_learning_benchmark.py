"""benchmarks/learning.py on a tiny budget: its JSON has every field, it skips what is done
and resumes what is not, and it draws the figure."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("learning", ROOT / "benchmarks" /
                                                  "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_writes_every_field_skips_and_resumes(tmp_path: Path) -> None:
    learning = load_benchmark()
    output = tmp_path / "learning-debug-noise0.1.json"  # a dot in the stem, as flags give
    args = ["--preset", "debug", "--tasks", "toy-reach", "--seeds", "0", "--runs",
            str(tmp_path / "runs"), "--output", str(output), "--", "--train.episodes", "4"]
    assert learning.main(args) == 0
    (entry,) = json.loads(output.read_text())["runs"]
    assert {"task", "seed", "run_dir", "episodes", "episode_budget", "finished", "env_steps",
            "test_curve", "final_test_return", "best_test_return", "random_return", "wall_s",
            "sessions"} <= set(entry)
    assert (entry["task"], entry["seed"], entry["episodes"], entry["finished"]) == (
        "toy-reach", 0, 4, True)
    assert entry["test_curve"] and entry["final_test_return"] == entry["test_curve"][-1][
        "return"] and entry["best_test_return"] >= entry["final_test_return"]
    (session,) = entry["sessions"]
    assert session["command"].startswith("planet train --preset debug --task toy-reach")
    assert session["commit"] and session["exit_code"] == 0 and entry["wall_s"] > 0
    assert (tmp_path / "learning-debug-noise0.1.png").is_file()
    assert (tmp_path / "learning-debug-noise0.1.svg").is_file()

    run = ROOT / entry["run_dir"]
    assert learning.main(args) == 0  # finished: skipped, no new session
    assert len(json.loads(output.read_text())["runs"][0]["sessions"]) == 1

    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"]["episodes"] = 5  # as if stopped at 4 of 5 episodes
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert learning.main(args) == 0
    (entry,) = json.loads(output.read_text())["runs"]
    assert entry["episodes"] == 5 and len(entry["sessions"]) == 2
    assert entry["sessions"][1]["command"] == f"planet train --resume {run}"


def test_finished_entry_without_its_run_folder_is_kept(tmp_path: Path, capsys) -> None:
    """A fresh checkout has the results file but not the ignored run folders: a finished
    entry is neither trained again nor changed, and the figure is left as it was."""
    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    args = ["--preset", "debug", "--tasks", "toy-reach", "--seeds", "0", "--runs",
            str(tmp_path / "runs"), "--output", str(output), "--", "--train.episodes", "4"]
    assert learning.main(args) == 0
    before = output.read_text()
    figure = output.with_suffix(".png")
    drawn = figure.stat().st_mtime_ns
    (entry,) = json.loads(before)["runs"]
    shutil.rmtree(ROOT / entry["run_dir"])
    capsys.readouterr()
    assert learning.main(args) == 0
    said = capsys.readouterr().out
    assert "its entry is kept as it is" in said and "the figure is left as it is" in said
    assert json.loads(output.read_text())["runs"] == json.loads(before)["runs"]
    assert figure.stat().st_mtime_ns == drawn
    assert not (tmp_path / "runs" / "debug" / "toy-reach-s0").exists() or not any(
        (tmp_path / "runs" / "debug" / "toy-reach-s0").iterdir())

    assert learning.main(["--output", str(output), "--figure"]) == 0  # asked: drawn from it
    assert "test curves only" in capsys.readouterr().out
    assert figure.stat().st_mtime_ns != drawn
    assert json.loads(output.read_text())["runs"] == json.loads(before)["runs"]
    with pytest.raises(SystemExit, match="does not exist; give the results file"):
        learning.main(["--output", str(tmp_path / "none.json"), "--figure"])


def test_a_new_run_beside_an_entry_without_its_folder_draws_from_the_results_file(
        tmp_path: Path, monkeypatch) -> None:
    """Seed 0 trained in another checkout (its folder gone), seed 1 here: the figure shows
    both seeds' test curves, as the results file keeps them, and the random line."""
    from planet_torch import plot

    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    args = ["--preset", "debug", "--tasks", "toy-reach", "--runs", str(tmp_path / "runs"),
            "--output", str(output), "--", "--train.episodes", "4"]
    assert learning.main([*args[:4], "--seeds", "0", *args[4:]]) == 0
    shutil.rmtree(ROOT / json.loads(output.read_text())["runs"][0]["run_dir"])
    panels = []
    monkeypatch.setattr(plot, "_save", lambda figure, path: panels.extend(
        (axes.get_title(), [line.get_label() for line in axes.get_lines()],
         [line.get_ydata() for line in axes.get_lines()]) for axes in figure.axes) or [])
    assert learning.main([*args[:4], "--seeds", "1", *args[4:]]) == 0
    entries = json.loads(output.read_text())["runs"]
    assert [e["seed"] for e in entries] == [0, 1]
    ((title, labels, ydata),) = panels
    assert title == "toy-reach (2 runs)"
    assert not any("train" in label for label in labels)
    for entry in entries:  # each seed's test curve, as recorded
        curve = [p["return"] for p in entry["test_curve"]]
        assert any(len(y) == len(curve) and list(y) == curve for y in ydata), (curve, ydata)
    (random,) = [label for label in labels if label.startswith("random actions")]
    mean = sum(e["random_return"] for e in entries) / 2
    assert random == f"random actions ({mean:.0f}, the seed episodes of 2 runs)"


def test_an_entry_of_two_tasks_gives_a_test_curve_per_task_and_no_random_line() -> None:
    learning = load_benchmark()
    curve = [{"env_steps": 40, "return": 1.5}, {"env_steps": 80, "return": 2.5}]
    entry = {"task": "a,b", "run_dir": "runs/x", "random_return": 3.0,
             "test_curve": curve, "tasks": {"a": {"test_curve": curve}, "b": {"test_curve": []}}}
    (only,) = learning.entry_curves(entry)
    assert only.task == "a" and len(only.random_returns) == 0
    assert only.curves["test/return"].steps.tolist() == [40, 80]
    assert only.curves["test/return"].values.tolist() == [1.5, 2.5]
    single_task = {key: value for key, value in entry.items() if key != "tasks"}
    (single,) = learning.entry_curves({**single_task, "task": "a"})
    assert single.random_returns.tolist() == [3.0]


def test_a_run_of_two_tasks_gets_each_tasks_test_results(tmp_path: Path) -> None:
    """One agent for two tasks is one entry whose `tasks` holds each task's curve; the
    entry's own curve is their mean, as `test/return` is."""
    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    assert learning.main(["--preset", "debug", "--tasks", "toy-reach,cartpole-swingup",
                          "--seeds", "0", "--runs", str(tmp_path / "runs"), "--output",
                          str(output), "--", "--train.episodes", "4"]) == 0
    (entry,) = json.loads(output.read_text())["runs"]
    assert entry["task"] == "toy-reach,cartpole-swingup" and entry["finished"]
    tasks = entry["tasks"]
    assert list(tasks) == ["toy-reach", "cartpole-swingup"]
    for phase, mean in enumerate(entry["test_curve"]):
        points = [tasks[name]["test_curve"][phase] for name in tasks]
        assert all(p["env_steps"] == mean["env_steps"] for p in points)
        assert abs(sum(p["return"] for p in points) / 2 - mean["return"]) <= 0.01
    for found in tasks.values():
        assert found["final_test_return"] == found["test_curve"][-1]["return"]
        assert found["best_test_return"] >= found["final_test_return"]


def test_two_seeds_side_by_side_keep_both_entries(tmp_path: Path, monkeypatch) -> None:
    """Two learning.py processes on one results file (seeds run side by side): the one that
    writes last keeps the entry the other wrote while it trained."""
    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    args = ["--preset", "debug", "--tasks", "toy-reach", "--seeds", "1", "--runs",
            str(tmp_path / "runs"), "--output", str(output), "--", "--train.episodes", "4"]
    other = {"task": "toy-reach", "seed": 0, "run_dir": "elsewhere", "finished": True,
             "test_curve": [{"env_steps": 40, "return": 1.0}], "random_return": 0.5}
    train_one = learning.train_one

    def train_while_the_other_writes(*a, **k):
        session = train_one(*a, **k)
        learning.write_json(output, {"runs": [other]})  # the other process finishes first
        return session

    monkeypatch.setattr(learning, "train_one", train_while_the_other_writes)
    assert learning.main(args) == 0
    runs = json.loads(output.read_text())["runs"]
    assert [(e["task"], e["seed"]) for e in runs] == [("toy-reach", 0), ("toy-reach", 1)]
    assert runs[0] == other and runs[1]["finished"]


def test_a_stopped_session_is_recorded_and_counted(tmp_path: Path, monkeypatch) -> None:
    """A run stopped part way (the child exits non-zero, as on SIGTERM) leaves its session
    in the results file, so the wall time of the finished run counts it too."""
    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    args = ["--preset", "debug", "--tasks", "toy-reach", "--seeds", "0", "--runs",
            str(tmp_path / "runs"), "--output", str(output), "--", "--train.episodes", "4"]
    run_child = learning.subprocess.run

    def stopped(command, **kwargs):
        done = run_child(command, **kwargs)
        if "planet_torch.cli" not in command:
            return done
        return learning.subprocess.CompletedProcess(command, 130)

    monkeypatch.setattr(learning.subprocess, "run", stopped)
    with pytest.raises(SystemExit, match="exited with 130; rerun this script to resume"):
        learning.main(args)
    (entry,) = json.loads(output.read_text())["runs"]
    (session,) = entry["sessions"]
    assert session["exit_code"] == 130 and entry["wall_s"] == session["wall_s"] > 0
    monkeypatch.setattr(learning.subprocess, "run", run_child)
    assert learning.main(args) == 0  # the run was done: kept, with the stopped session
    (entry,) = json.loads(output.read_text())["runs"]
    assert entry["sessions"] == [session] and entry["finished"]


def test_a_run_that_never_began_says_so_and_writes_nothing(tmp_path: Path) -> None:
    """`planet train` refusing its flags makes no run folder: one line, no results file."""
    learning = load_benchmark()
    output = tmp_path / "learning-debug.json"
    with pytest.raises(SystemExit, match="exited with 1 before it began"):
        learning.main(["--preset", "debug", "--tasks", "toy-reach", "--seeds", "0", "--runs",
                       str(tmp_path / "runs"), "--output", str(output), "--",
                       "--train.episodes", "0"])
    assert not output.exists()
