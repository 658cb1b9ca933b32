"""benchmarks/paper_ablations.py: every variant is a valid cpu-preset run, each is handed to
learning.py with its own flags and folders, its sweep command is one `planet sweep` that
parses, and the table reads every seed (of single- and two-task runs) from results files."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from planet_torch import cli
from planet_torch import config as config_lib
from planet_torch.sweep import parse_tasks

ROOT = Path(__file__).resolve().parents[1]


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("paper_ablations", ROOT / "benchmarks" /
                                                  "paper_ablations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ablations = load_script()


@pytest.mark.parametrize("variant", ablations.VARIANTS, ids=lambda v: v.name)
def test_each_variant_is_a_valid_cpu_preset_run(variant: Any) -> None:
    parser = cli.build_parser()
    for task in variant.tasks:
        args = parser.parse_args(["train", "--preset", "cpu", "--task", task, *variant.flags])
        cfg = config_lib.override(config_lib.PRESETS["cpu"](), cli._assignments(args))
        assert cfg.task == task
        changed = {k for k, v in cli._assignments(args).items() if v is not None} - {"task"}
        assert len(changed) == len(variant.flags) // 2  # every flag reached the config


def test_variant_names_are_unique_and_the_baseline_is_the_preset() -> None:
    names = [v.name for v in ablations.VARIANTS]
    assert len(set(names)) == len(names)
    assert ablations.BY_NAME["rssm"].flags == ()


def test_sweep_command_parses_and_keeps_a_two_task_agent_one_trial() -> None:
    for variant in ablations.VARIANTS:
        words = shlex.split(ablations.sweep_command(variant, (0, 1, 2), "cpu"))
        assert words[:2] == ["planet", "sweep"]
        args = cli.build_parser().parse_args(words[1:])
        assert (args.preset, args.seeds, args.name) == ("cpu", "0,1,2", variant.name)
        assert parse_tasks(args.tasks) == variant.tasks  # one trial per listed entry
        cfg = config_lib.override(config_lib.PRESETS["cpu"](), cli._assignments(args))
        assert cfg.objective.free_nats == 3  # the paper's, which the table's runs were made with
    two = ablations.BY_NAME["two-tasks"]
    assert "--tasks cartpole-swingup+reacher-easy" in ablations.sweep_command(two, (0,), "cpu")


def test_run_variant_hands_its_flags_and_folders_to_learning(tmp_path: Path,
                                                             monkeypatch) -> None:
    seen: list[list[str]] = []

    class Learning:
        @staticmethod
        def main(args: list[str]) -> int:
            seen.append(args)
            return 0

    monkeypatch.setattr(ablations, "load_learning", lambda: Learning)
    variant = ablations.BY_NAME["ssm"]
    ablations.run_variant(variant, (0, 2), "cpu", tmp_path / "runs", tmp_path / "results",
                          ("--train.episodes", "3"))
    (args,) = seen
    assert args[:args.index("--")] == [
        "--preset", "cpu", "--tasks", "cartpole-swingup", "--seeds", "0", "2", "--runs",
        str(tmp_path / "runs" / "ssm"), "--output", str(tmp_path / "results" / "ssm.json")]
    assert args[args.index("--") + 1:] == ["--objective.free_nats", "3", "--model.kind", "ssm",
                                           "--train.episodes", "3"]


def entry(task: str, seed: int, final: float | None, finished: bool = True,
          tasks: dict[str, float] | None = None) -> dict[str, Any]:
    found = {"task": task, "seed": seed, "finished": finished, "final_test_return": final}
    if tasks:
        found["tasks"] = {name: {"final_test_return": value} for name, value in tasks.items()}
    return found


def write(results: Path, name: str, entries: list[dict[str, Any]]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps({"runs": entries}))


def table_row(text: str, name: str, section: str = "## cartpole-swingup") -> list[str]:
    body = text[text.index(section):]
    line = next(line for line in body.splitlines() if f"`{name}`" in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_table_gives_every_seed_median_range_and_difference(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write(results, "rssm", [entry("cartpole-swingup", 0, 400.0),
                            entry("cartpole-swingup", 1, 300.0),
                            entry("cartpole-swingup", 2, 500.0),
                            entry("reacher-easy", 0, 90.0)])
    write(results, "ssm", [entry("cartpole-swingup", 0, 200.0),
                           entry("cartpole-swingup", 1, 260.0),
                           entry("cartpole-swingup", 2, 999.0, finished=False)])
    write(results, "glorot", [entry("cartpole-swingup", 7, 380.0)])  # a seed rssm lacks
    write(results, "two-tasks", [entry("cartpole-swingup,reacher-easy", 0, 150.0, tasks={
        "cartpole-swingup": 250.0, "reacher-easy": 50.0})])
    text = ablations.table(results)

    rssm = table_row(text, "rssm")  # seeds in order; the baseline has no difference
    assert rssm[3:8] == ["400, 300, 500", "3 / 3", "400", "300 to 500", ""]
    ssm = table_row(text, "ssm")  # the unfinished seed is not counted
    # against the preset's seeds 0 and 1 (median 350), not all three (400)
    assert ssm[3:8] == ["200, 260", "2 / 3", "230", "200 to 260", "-120"]
    assert table_row(text, "drnn")[3:5] == ["not measured yet", "0 / 3"]
    assert table_row(text, "glorot")[3:8] == ["380", "1 / 3", "380", "380 to 380", ""]

    two = text[text.index("## One agent for two tasks"):]
    reacher = [line for line in two.splitlines() if line.startswith("| reacher-easy")]
    assert [line.split("|")[3].strip() for line in reacher] == ["90", "50"]
    cartpole = next(line for line in two.splitlines()
                    if line.startswith("| cartpole-swingup") and "two-tasks" in line)
    assert cartpole.split("|")[-2].strip() == "-150"  # 250 against the preset's seed 0, 400


def test_a_run_of_some_seeds_still_counts_rows_against_the_grid(tmp_path: Path) -> None:
    """`--seeds 1` resumes one seed; the table it redraws still counts every row out of the
    grid's three seeds (it read "3 / 1" before)."""
    results, output = tmp_path / "results", tmp_path / "table.md"
    write(results, "rssm", [entry("cartpole-swingup", seed, 400.0) for seed in (0, 1, 2)])
    assert ablations.main(["--table", "--seeds", "1", "--results", str(results),
                           "--output", str(output)]) == 0
    text = output.read_text()
    assert table_row(text, "rssm")[4] == "3 / 3"
    assert table_row(text, "ssm")[4] == "0 / 3"
