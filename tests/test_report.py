"""`planet report` on hand-written run folders and a sweep folder: known numbers out."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from planet_torch import cli, sweep
from planet_torch import config as config_lib
from planet_torch.report import group_rows, summarise, summarise_run
from planet_torch.sweep import SweepSpec, Trial


def fake_run(folder: Path, cfg: config_lib.Config, tests: list[float], episodes: int,
             seed_returns: tuple[float, ...] = (10.0, 20.0)) -> Path:
    """A run folder whose metrics hold the given seed-episode and test returns."""
    folder.mkdir(parents=True)
    config_lib.save(cfg, folder / "config.yaml")
    records = [{"env_steps": 1000 * (i + 1), "train/return": r, "train/episodes": i + 1}
               for i, r in enumerate(seed_returns)]
    records += [{"env_steps": 1000 * episodes, "train/return": 0.0, "train/episodes": episodes}]
    records += [{"env_steps": 5000 * (i + 1), "test/return": r} for i, r in enumerate(tests)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def config(task: str, seed: int, **changes) -> config_lib.Config:
    base = config_lib.override(config_lib.Config(), {"task": task, "seed": seed})
    return config_lib.override(base, changes)


def test_one_run_gives_its_last_and_best_test_phase(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", config("cartpole-swingup", 3, **{"train.seed_episodes": 2}),
                   [100.0, 400.0, 300.0], episodes=60)
    s = summarise_run(run)
    assert (s.task, s.seed, s.episodes, s.env_steps) == ("cartpole-swingup", 3, 60, 60000)
    assert (s.final_test_return, s.best_test_return, s.random_return) == (300.0, 400.0, 15.0)
    assert s.test_curve == [(5000, 100.0), (10000, 400.0), (15000, 300.0)]


def test_groups_by_task_with_mean_std_over_seeds_and_the_paper_ratio(tmp_path: Path) -> None:
    runs = [fake_run(tmp_path / f"c{seed}", config("cartpole-swingup", seed), tests, 100)
            for seed, tests in enumerate([[200.0, 400.0], [500.0, 600.0], [700.0, 500.0]])]
    runs.append(fake_run(tmp_path / "t0", config("toy-reach", 0), [30.0], 24))
    (cart, toy) = group_rows(summarise(runs))
    assert (cart.task, cart.runs, cart.seeds, cart.failed) == ("cartpole-swingup", 3, 3, 0)
    assert cart.final_mean == pytest.approx(500.0)  # (400 + 600 + 500) / 3
    assert cart.final_std == pytest.approx((20000 / 3) ** 0.5)  # population std
    assert cart.best_mean == pytest.approx((400 + 600 + 700) / 3)
    assert cart.paper == 821 and cart.ratio == pytest.approx(500 / 821)
    assert (toy.paper, toy.ratio, toy.final_mean, toy.final_std) == (None, None, 30.0, 0.0)


def test_a_sweep_groups_by_grid_point_and_lists_failed_and_unstarted_trials(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "sw"
    root.mkdir()
    spec = SweepSpec("sw", ("cartpole-swingup",), (0, 1), grid={"planner.horizon": (8, 12)})
    sweep.save_spec(spec, root)
    returns = {(0, 8): 100.0, (1, 8): 300.0, (0, 12): 250.0}
    for (seed, horizon), value in returns.items():
        trial = Trial("cartpole-swingup", seed, (("planner.horizon", horizon),))
        fake_run(root / trial.name, spec.run_config(trial, root), [value], 50)
    failed = root / Trial("cartpole-swingup", 1, (("planner.horizon", 12),)).name
    failed.mkdir()
    (failed / sweep.ERROR_NAME).write_text("train.chunk_length 60 is longer than an episode\n")

    assert cli.main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert "failed: cartpole-swingup-s1-planner.horizon=12: train.chunk_length 60" in out
    document = json.loads((root / "report.json").read_text())
    h8, h12 = document["groups"]
    assert (h8["point"], h8["seeds"], h8["final_mean"], h8["final_std"]) == (
        {"planner.horizon": 8}, 2, 200.0, 100.0)
    assert (h12["point"], h12["runs"], h12["seeds"], h12["failed"], h12["final_mean"]) == (
        {"planner.horizon": 12}, 2, 1, 1, 250.0)
    rows = list(csv.reader((root / "report.csv").open()))
    assert rows[0][:2] == ["task", "planner.horizon"] and rows[1][:2] == ["cartpole-swingup",
                                                                           "8"]
    markdown = (root / "report.md").read_text()
    assert "| cartpole-swingup | 8 | 2/2 | 0 | 50 | 200.0 ± 100.0 |" in markdown
    assert "train.chunk_length 60 is longer" in markdown
    assert (root / "learning_curves.png").is_file() and (root / "learning_curves.svg").is_file()


def test_a_path_that_is_neither_a_sweep_nor_a_run_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path / "nothing")]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "does not exist, so it is not a run folder" in err and err.count("\n") == 1


def test_report_and_the_sweep_folder_import_neither_torch_nor_ray() -> None:
    code = ("import sys; import planet_torch.report, planet_torch.sweep; "
            "print(sorted({'torch', 'ray'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
