"""End-to-end runs of `planet train` on the debug preset (tiny sizes, short episodes)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from processes import Planet, only_run

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.cli import build_parser, main
from planet_torch.replay import Replay, episode_files, parse_episode_name
from planet_torch.runs import new_run_dir, read_metrics
from planet_torch.train import Trainer, TrainingDiverged
from planet_torch.world_model import Updater


def _debug(**changes):
    return config_lib.override(config_lib.PRESETS["debug"](), changes)


def test_debug_run_writes_everything(tmp_path):
    code = main(["train", "--preset", "debug", "--task", "cartpole-swingup",
                 "--logdir", str(tmp_path), "--train.episodes", "4"])
    assert code == 0
    run = only_run(tmp_path)
    assert config_lib.load(run / "config.yaml").train.episodes == 4
    assert len(episode_files(run / "episodes")) == 4
    assert list(run.glob("events.out.tfevents.*"))
    names = {k for record in read_metrics(run) for k in record}
    assert {"train/return", "test/return", "model/image_nll", "model/kl", "model/grad_norm",
            "time/updates_per_second", "env_steps"} <= names
    payload = checkpoint.load(run)
    # debug episodes: 80 env steps at action repeat 8 = 10 agent steps
    assert payload["counters"] == {"episodes": 4, "env_steps": 320, "updates": 4,
                                   "test_phases": 1}


def test_run_folders_never_collide(tmp_path):
    first = new_run_dir(tmp_path, "cartpole-swingup", 0)
    second = new_run_dir(tmp_path, "cartpole-swingup", 0)
    assert first != second and first.is_dir() and second.is_dir()


def _toy(**changes: Any) -> config_lib.Config:
    """The debug preset on toy-reach with 10-step episodes and no test phases: ~0.1 s an
    episode."""
    return _debug(**{"task": "toy-reach", "env.episode_steps": 10, "train.test_every": 0,
                     **changes})


@pytest.mark.parametrize("env_steps, episodes", [(21, 3), (30, 3), (31, 4), (1000, 5)])
def test_the_env_steps_budget_stops_training_whichever_budget_ends_first(
        tmp_path: Path, one_thread: None, env_steps: int, episodes: int) -> None:
    """10 environment steps an episode and a budget of 5 episodes: 21 or 30 steps end the
    run after the third episode (the episode that reaches the budget is finished), 31 after
    the fourth, 1000 steps after the 5 episodes."""
    cfg = _toy(**{"train.episodes": 5, "train.env_steps": env_steps})
    run = new_run_dir(tmp_path, cfg.task, cfg.seed)
    counters = Trainer(cfg, run).run()
    assert (counters.episodes, counters.env_steps) == (episodes, 10 * episodes)
    assert counters.updates == 2 * (episodes - 2)  # 2 seed episodes, then 2 updates each
    assert len(episode_files(run / "episodes")) == episodes
    assert checkpoint.load(run)["counters"] == vars(counters)


def test_cli_env_steps_budget_and_none_on_resume(tmp_path: Path, one_thread: None) -> None:
    """`--train.env_steps 25` stops a run at 3 episodes of 10 steps; on `--resume`,
    `--train.env_steps none` lifts the step budget, and the episode budget ends the run."""
    flags = ["--preset", "debug", "--task", "toy-reach", "--env.episode_steps", "10",
             "--train.test_every", "0", "--train.episodes", "5"]
    assert main(["train", *flags, "--train.env_steps", "25", "--logdir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    assert config_lib.load(run / "config.yaml").train.env_steps == 25
    assert checkpoint.load(run)["counters"]["episodes"] == 3
    assert main(["train", "--resume", str(run), "--train.env_steps", "none"]) == 0
    assert config_lib.load(run / "config.yaml").train.env_steps is None
    counters = checkpoint.load(run)["counters"]
    assert (counters["episodes"], counters["env_steps"]) == (5, 50)


@pytest.mark.parametrize("text, value", [("none", None), ("None", None), ("NONE", None),
                                         ("0", 0), ("250000", 250_000)])
def test_optional_int_flags_parse_none_and_numbers(text: str, value: int | None) -> None:
    """An `int | None` field such as train.env_steps takes `none` in any case, or a number."""
    args = build_parser().parse_args(["train", "--train.env_steps", text])
    assert getattr(args, "train.env_steps") == value


def test_optional_int_flags_refuse_other_words(capsys: pytest.CaptureFixture[str]) -> None:
    """`--train.env_steps lots` is a usage error (exit code 2) naming the flag."""
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--train.env_steps", "lots"])
    assert exit_info.value.code == 2
    assert "--train.env_steps" in capsys.readouterr().err


def test_episodes_that_terminate_early_are_stored_and_counted_with_their_length(
        tmp_path: Path, one_thread: None, early_end_task: str) -> None:
    """A Gymnasium task that ends after 7 steps (long before its 1000-step limit): every
    episode, random or planned, stops there, its file holds 7 steps (8 rows) and the
    counters add 7 environment steps per episode."""
    cfg = _debug(**{"task": early_end_task, "train.episodes": 3, "train.test_every": 0})
    run = new_run_dir(tmp_path, cfg.task, cfg.seed)
    counters = Trainer(cfg, run).run()
    assert (counters.episodes, counters.env_steps, counters.updates) == (3, 21, 2)
    files = episode_files(run / "episodes")
    assert [parse_episode_name(p).steps for p in files] == [7, 7, 7]
    replay = Replay.load(run / "episodes", capacity=1000)
    assert [episode.length for episode in replay.episodes] == [8, 8, 8]
    returns = [r["train/return"] for r in read_metrics(run) if "train/return" in r]
    assert returns == [7.0, 7.0, 7.0]  # reward 1 per step, 7 steps


def _parameters(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run)["model"]


def test_same_seed_same_run_and_resume_is_exact(tmp_path):
    cfg = _debug(**{"train.episodes": 4})
    whole = new_run_dir(tmp_path, cfg.task, cfg.seed)
    Trainer(cfg, whole).run()
    again = new_run_dir(tmp_path, cfg.task, cfg.seed)
    Trainer(cfg, again).run()
    split = new_run_dir(tmp_path, cfg.task, cfg.seed)
    Trainer(_debug(**{"train.episodes": 3}), split).run()
    counters = Trainer(cfg, split, resume=True).run()
    assert counters.episodes == 4 and counters.updates == 4
    reference = _parameters(whole)
    for run in (again, split):
        for name, value in _parameters(run).items():
            assert torch.equal(value, reference[name]), (run.name, name)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_writes_a_checkpoint_and_resume_continues(
        tmp_path: Path, one_thread: None, signum: signal.Signals) -> None:
    """A real Ctrl-C (SIGINT), or the SIGTERM of a job scheduler, in the middle of a run:
    sent once 4 episodes are on disk (so the handler is in place), it ends the run with
    exit code 130 and a checkpoint of every episode on disk; `--resume` then continues."""
    planet = Planet(tmp_path, ["train", "--preset", "debug", "--logdir", str(tmp_path / "runs"),
                               "--train.episodes", "1000"])
    runs = tmp_path / "runs"

    def four_episodes() -> bool:
        folders = [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
        return bool(folders) and len(episode_files(folders[0] / "episodes")) >= 4

    planet.wait_for(four_episodes, "4 episode files")
    planet.proc.send_signal(signum)
    assert planet.wait() == 130, planet.stderr()[-2000:]
    run = only_run(runs)
    stopped = checkpoint.load(run)["counters"]
    on_disk = len(episode_files(run / "episodes"))
    assert stopped["episodes"] >= 4 and on_disk == stopped["episodes"]
    assert f"--resume {run}" in planet.stderr()
    target = stopped["episodes"] + 2
    assert main(["train", "--resume", str(run), "--train.episodes", str(target)]) == 0
    resumed = checkpoint.load(run)["counters"]
    assert resumed["episodes"] == target
    # C = 2 per planned episode (2 seed episodes), wherever the stop fell in an interval
    assert resumed["updates"] == 2 * (target - 2)
    assert resumed["env_steps"] == stopped["env_steps"] + 2 * 80
    assert len(episode_files(run / "episodes")) == target


STUCK_UPDATE = """\
import sys, time
from pathlib import Path
from planet_torch.world_model import Updater

def stuck(self, batch, generator=None):
    Path(sys.argv[1]).touch()
    time.sleep(600)

Updater.__call__ = stuck
from planet_torch.cli import main
sys.exit(main(sys.argv[2:]))
"""
"""`planet train` whose first update never ends: a step that a first Ctrl-C waits for."""


def file_state(path: Path) -> tuple[int, int, bytes]:
    """Inode, modification time (ns) and bytes of a file: any rewrite changes one of them."""
    info = path.stat()
    return info.st_ino, info.st_mtime_ns, path.read_bytes()


def test_a_second_ctrl_c_aborts_at_once(tmp_path: Path) -> None:
    """While the run finishes its current step after a first Ctrl-C (here an update that
    would take 10 minutes), a second Ctrl-C ends the process at once, by KeyboardInterrupt,
    without the stop's checkpoint: the one written after the seed episodes is untouched."""
    marker = tmp_path / "updating"
    planet = Planet(tmp_path, [str(marker), "train", "--preset", "debug", "--task", "toy-reach",
                               "--env.episode_steps", "10", "--train.test_every", "0",
                               "--logdir", str(tmp_path / "runs")], code=STUCK_UPDATE)
    planet.wait_for(marker.exists, "first update")
    run = only_run(tmp_path / "runs")
    seeded = file_state(run / checkpoint.CHECKPOINT_NAME)
    assert checkpoint.load(run)["counters"]["updates"] == 0
    planet.proc.send_signal(signal.SIGINT)
    planet.wait_for(lambda: "Ctrl-C again to abort" in planet.stderr(),
                    "message of the first Ctrl-C")
    assert planet.proc.poll() is None  # the first one only asked the run to stop
    started = time.monotonic()
    planet.proc.send_signal(signal.SIGINT)
    code = planet.wait(timeout=60)
    assert time.monotonic() - started < 60
    err = planet.stderr()
    assert code == -signal.SIGINT, err[-2000:]  # Python's exit on an uncaught Ctrl-C
    assert "KeyboardInterrupt" in err and "--resume" not in err
    assert file_state(run / checkpoint.CHECKPOINT_NAME) == seeded
    assert len(episode_files(run / "episodes")) == 2  # the seed episodes, stored as they ended


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = _debug(**{"train.episodes": 6})
    run = new_run_dir(tmp_path, cfg.task, cfg.seed)
    real_update = Updater.__call__
    calls = []

    def poisoned(self, *args, **kwargs):
        calls.append(1)
        metrics = real_update(self, *args, **kwargs)
        if len(calls) > 2:  # the second interval's updates go bad
            metrics["model/loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(Updater, "__call__", poisoned)
    with pytest.raises(TrainingDiverged, match="not finite"):
        Trainer(cfg, run).run()
    assert checkpoint.load(run)["counters"]["updates"] == 2  # the last good one


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "--task", "nope-nope", "--logdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown task" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run folder for a run that never started
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 1
    assert "not a run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--no-such-flag", "1"])
    assert exit_info.value.code == 2
    assert main(["train", "--preset", "debug", "--planner.elites", "99",
                 "--logdir", str(tmp_path)]) == 1
    assert "elites" in capsys.readouterr().err


def test_resume_with_a_bad_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config_lib.save(_debug(), run / "config.yaml")
    (run / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["train", "--resume", str(run)]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 3-episode debug run on toy-reach, copied fresh by `resumable_run`."""
    logdir = tmp_path_factory.mktemp("finished")
    assert main(["train", "--preset", "debug", "--task", "toy-reach", "--logdir", str(logdir),
                 "--train.episodes", "3", "--train.test_every", "0"]) == 0
    return only_run(logdir)


@pytest.fixture
def resumable_run(finished_run, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.mark.parametrize("flag", [["--model.belief_size", "32"], ["--task", "cartpole-swingup"],
                                  ["--seed", "5"], ["--env.action_repeat", "2"],
                                  ["--model.bit_depth", "8"], ["--logdir", "elsewhere"]])
def test_resume_refuses_a_flag_that_does_not_fit_and_writes_nothing(resumable_run, capsys,
                                                                    flag):
    """A mistyped flag on resume used to rewrite config.yaml first and ruin the run."""
    before = {p: p.read_bytes() for p in resumable_run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(resumable_run), *flag, "--train.episodes", "4"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag[0] in err and "--resume" in err, err
    assert {p: p.read_bytes() for p in resumable_run.rglob("*") if p.is_file()} == before
    assert main(["train", "--resume", str(resumable_run), "--train.episodes", "4"]) == 0
    assert checkpoint.load(resumable_run)["counters"]["episodes"] == 4


def test_resume_applies_the_flags_that_may_change(resumable_run):
    """Precision, compile, device, planner, optimiser and budget flags take effect and are
    saved; a fixed field given its saved value is accepted."""
    assert main(["train", "--resume", str(resumable_run), "--train.episodes", "4",
                 "--precision", "bf16", "--device", "cpu", "--planner.candidates", "20",
                 "--optim.learning_rate", "0.0005", "--task", "toy-reach", "--seed", "0"]) == 0
    saved = config_lib.load(resumable_run / "config.yaml")
    assert (saved.precision, saved.device, saved.planner.candidates, saved.train.episodes,
            saved.optim.learning_rate) == ("bf16", "cpu", 20, 4, 0.0005)
    assert checkpoint.load(resumable_run)["config"]["precision"] == "bf16"


def test_resume_refuses_a_preset(resumable_run, capsys):
    assert main(["train", "--resume", str(resumable_run), "--preset", "debug"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset" in err


def test_a_checkpoint_that_does_not_fit_its_config_is_one_line(resumable_run, capsys):
    """A config.yaml edited by hand to other sizes: one line, not a list of mismatches."""
    cfg = config_lib.load(resumable_run / "config.yaml")
    config_lib.save(config_lib.override(cfg, {"model.belief_size": 32}),
                    resumable_run / "config.yaml")
    assert main(["train", "--resume", str(resumable_run), "--train.episodes", "4"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit" in err, err


@pytest.mark.parametrize("collection", ["random", "planner"])
def test_random_collection_never_plans_while_collecting_but_updates_and_tests(
        tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch,
        collection: str) -> None:
    """The debug preset (2 seed episodes, then 2 more with 2 updates each and a test phase
    after the fourth): with `train.collection random` the planner is called only in the test
    phase, never while a training episode is collected; with `planner` (the check can fail)
    it plans every collected step."""
    cfg = _debug(**{"train.collection": collection})
    trainer = Trainer(cfg, new_run_dir(tmp_path, cfg.task, cfg.seed))
    phase = ["seed"]
    calls: dict[str, int] = {}

    def during(name: str, method: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            outer, phase[0] = phase[0], name
            try:
                return method(*args, **kwargs)
            finally:
                phase[0] = outer
        return wrapped

    plan = trainer.planner.plan

    def counting_plan(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls[phase[0]] = calls.get(phase[0], 0) + 1
        return plan(*args, **kwargs)

    monkeypatch.setattr(trainer.planner, "plan", counting_plan)
    monkeypatch.setattr(trainer, "_train_interval", during("update", trainer._train_interval))
    monkeypatch.setattr(trainer, "_test", during("test", trainer._test))
    monkeypatch.setattr(trainer, "_play", during("collect", trainer._play))
    counters = trainer.run()
    assert vars(counters) == {"episodes": 4, "env_steps": 320, "updates": 4, "test_phases": 1}
    steps = 10  # 80 environment steps at action repeat 8
    assert calls.get("test") == steps  # one test episode, planned
    assert set(calls) <= {"collect", "test"}
    # seed episodes are random either way; the two after them plan only with `planner`
    assert calls.get("collect", 0) == {"random": 0, "planner": 2 * steps}[collection]
    names = {k for record in read_metrics(trainer.run_dir) for k in record}
    assert {"model/loss", "test/return", "train/return"} <= names
