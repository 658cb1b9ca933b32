"""One agent for several tasks (`--task a,b` or `--task paper`): episodes take turns through
the tasks, actions are padded to the largest action size, test returns are logged per task,
and `planet test`, `plot` and `report` show each task separately. The runs here mix
toy-reach (2 action dimensions, R = 1) with cartpole-swingup (1 dimension, R = 8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from processes import only_run

from planet_torch import checkpoint, plot, report
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.envs import PAPER_TASKS, PaddedActions, make_env
from planet_torch.replay import episode_files, parse_episode_name
from planet_torch.runs import read_metrics

TASKS = ("toy-reach", "cartpole-swingup")
ROWS = {"toy-reach": 80 + 1, "cartpole-swingup": 80 // 8 + 1}
"""Rows of an episode of each at the debug preset's 80 environment steps per episode."""
REPEAT = {"toy-reach": 1, "cartpole-swingup": 8}


def test_task_lists() -> None:
    assert config_lib.task_list("cartpole-swingup") == ("cartpole-swingup",)
    assert config_lib.task_list("toy-reach, cup-catch") == ("toy-reach", "cup-catch")
    assert config_lib.task_list("paper") == tuple(PAPER_TASKS) and len(PAPER_TASKS) == 6
    for bad, reason in (("a,,b", "empty name"), ("a,b,a", "twice")):
        with pytest.raises(ValueError, match=reason):
            config_lib.task_list(bad)


def test_padded_actions_reach_the_task_unpadded() -> None:
    """The padded environment plays the same episode as the task with the padding cut off,
    whatever the padded dimensions hold."""
    plain = make_env("toy-reach", seed=3)
    padded = PaddedActions(make_env("toy-reach", seed=3), 4)
    assert padded.action_space.shape == (4,)
    np.testing.assert_array_equal(padded.action_space.low[2:], [-1, -1])
    assert (padded.action_repeat, padded.episode_steps) == (plain.action_repeat,
                                                            plain.episode_steps)
    np.testing.assert_array_equal(plain.reset(seed=5)[0], padded.reset(seed=5)[0])
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        a, b = plain.step(action[:2]), padded.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
    with pytest.raises(ValueError, match="shape"):
        padded.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="cannot pad 2"):
        PaddedActions(plain, 1)


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A debug run on both tasks: 2 seed episodes, then 2 planned ones, a test phase at 4
    (one test episode per task), then resumed for 2 more episodes."""
    logdir = tmp_path_factory.mktemp("multitask")
    common = ["--train.episodes", "4", "--train.seed_episodes", "2", "--train.test_every", "4",
              "--train.video_every", "0"]
    assert main(["train", "--preset", "debug", "--task", ",".join(TASKS), "--logdir",
                 str(logdir), *common]) == 0
    run = only_run(logdir)
    assert run.name.endswith("toy-reach+cartpole-swingup-s0")
    assert main(["train", "--resume", str(run), "--train.episodes", "6"]) == 0
    return run


def test_episodes_take_turns_with_padded_actions(multitask_run: Path) -> None:
    names = [parse_episode_name(p) for p in episode_files(multitask_run / "episodes")]
    tasks = [TASKS[n.index % 2] for n in names]
    assert [n.steps + 1 for n in names] == [ROWS[t] for t in tasks] and len(names) == 6
    for path in episode_files(multitask_run / "episodes"):
        assert np.load(path)["action"].shape[1] == 2  # toy-reach's size, the larger
    counters = checkpoint.load(multitask_run)["counters"]
    assert counters["env_steps"] == sum(n.steps * REPEAT[t] for n, t in zip(names, tasks,
                                                                             strict=True))
    records = read_metrics(multitask_run)
    for task in TASKS:
        assert len([r for r in records if f"train/{task}/return" in r]) == 3


def test_test_returns_are_logged_per_task(multitask_run: Path) -> None:
    (phase,) = [r for r in read_metrics(multitask_run) if "test/return" in r]
    per_task = [phase[f"test/{task}/return"] for task in TASKS]
    assert phase["test/return"] == pytest.approx(np.mean(per_task))


def test_planet_test_scores_each_task(multitask_run: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(multitask_run), "--episodes", "1", "--output",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for task in TASKS:
        result = json.loads((tmp_path / f"test-ep000006-{task}.json").read_text())
        assert result["task"] == task and result["episodes"] == 1
        assert f"{task}: return" in out
    assert main(["test", str(multitask_run), "--episodes", "1", "--task", "cheetah-run",
                 "--output", str(tmp_path)]) == 1
    assert "was trained on toy-reach, cartpole-swingup, not cheetah-run" in \
        capsys.readouterr().err
    assert main(["predict", str(multitask_run), "--task", "cartpole-swingup", "--sequences",
                 "1", "--context", "3", "--horizon", "4", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "open_loop-ep000006-cartpole-swingup_error.csv").is_file()


def test_plot_and_report_show_each_task(multitask_run: Path, tmp_path: Path) -> None:
    curves = plot.read_runs(multitask_run)
    assert [c.task for c in curves] == list(TASKS)
    records = read_metrics(multitask_run)
    for c in curves:
        expected = [r[f"test/{c.task}/return"] for r in records if f"test/{c.task}/return" in r]
        np.testing.assert_allclose(c.curves["test/return"].values, expected)
        assert len(c.random_returns) == 1  # one of the two seed episodes was this task's
    assert len(plot.learning_curves([multitask_run], tmp_path / "c.png")) == 2
    summaries = report.summarise([multitask_run])
    assert [s.task for s in summaries] == list(TASKS)
    for s, c in zip(summaries, curves, strict=True):
        assert s.final_test_return == pytest.approx(c.curves["test/return"].values[-1])
        assert s.random_return == pytest.approx(c.random_returns[0])
    rows = report.group_rows(summaries)
    assert sorted(r.task for r in rows) == sorted(TASKS)
