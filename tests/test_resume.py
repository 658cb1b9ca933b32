"""A resumed run continues exactly: what it does after the resume point, not only its weights.

Two debug runs on toy-reach (tiny model, 80-step episodes, 2 updates per episode, a test
phase every 2 episodes) from the same seed: one trained to 6 episodes in one go, one trained
to 4 and then resumed to 6. After the resume it collects episodes 5 and 6, and the updates
before episode 6 sample episode 5, which only the resumed session collected. Everything the
two runs wrote must then be equal: the weights, every episode file, the test returns and
metrics.jsonl (less the wall-clock `time/*` keys). The crash path follows: an episode on
disk that the checkpoint does not know of.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.agent import Agent
from planet_torch.evaluate import Interrupted
from planet_torch.replay import Replay, episode_files
from planet_torch.runs import new_run_dir
from planet_torch.train import (
    Counters,
    Trainer,
    finished,
    owes_test_phase,
    phase_due_after,
    run_finished,
)
from planet_torch.world_model import Updater


def debug(**changes: object) -> config_lib.Config:
    return config_lib.override(config_lib.PRESETS["debug"](),
                               {"task": "toy-reach", "train.test_every": 2, **changes})


def metrics_without_time(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")}
            for line in lines]


def episodes_on_disk(run: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every episode file of a run: name -> its arrays."""
    def read(path: Path) -> dict[str, np.ndarray]:
        with np.load(path) as arrays:
            return {key: arrays[key] for key in arrays.files}
    return {path.name: read(path) for path in episode_files(run / "episodes")}


def assert_same_episodes(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        for field, value in a[name].items():
            np.testing.assert_array_equal(value, b[name][field], err_msg=f"{name} {field}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """(whole, split): 6 episodes in one go, and 4 then resumed to 6."""
    root = tmp_path_factory.mktemp("resume")
    torch.set_num_threads(1)
    whole = new_run_dir(root, "whole", 0)
    Trainer(debug(**{"train.episodes": 6}), whole).run()
    split = new_run_dir(root, "split", 0)
    Trainer(debug(**{"train.episodes": 4}), split).run()
    Trainer(debug(**{"train.episodes": 6}), split, resume=True).run()
    return whole, split


def test_weights_and_counters_match(runs) -> None:
    whole, split = (checkpoint.load(run) for run in runs)
    assert split["counters"] == whole["counters"] == {
        "episodes": 6, "env_steps": 6 * 80, "updates": 4 * 2, "test_phases": 2}
    for name, value in whole["model"].items():
        assert torch.equal(split["model"][name], value), name


def test_episodes_collected_after_the_resume_match(runs) -> None:
    """Episodes 5 and 6 (files 000004-80, 000005-80) come from the planner after the resume."""
    whole, split = (episodes_on_disk(run) for run in runs)
    assert len(whole) == 6
    assert_same_episodes(whole, split)


def test_test_returns_and_metrics_match(runs) -> None:
    whole, split = (metrics_without_time(run) for run in runs)
    tests = [[r["test/return"] for r in rows if "test/return" in r] for rows in (whole, split)]
    assert len(tests[0]) == 2 and tests[0] == tests[1]
    assert whole == split


def test_an_episode_newer_than_the_checkpoint_is_kept(tmp_path) -> None:
    """The crash path: episode 5 reached the disk, the process died before the checkpoint
    that would have counted it. The resume keeps that episode's file untouched, counts it,
    continues with a new file after it, and its replay holds exactly the files on disk."""
    run = new_run_dir(tmp_path, "crash", 0)
    Trainer(debug(**{"train.episodes": 4}), run).run()
    older = tmp_path / "checkpoint-at-4.pt"
    shutil.copy(run / checkpoint.CHECKPOINT_NAME, older)
    Trainer(debug(**{"train.episodes": 5}), run, resume=True).run()
    before = episodes_on_disk(run)
    shutil.copy(older, run / checkpoint.CHECKPOINT_NAME)  # the checkpoint of episode 4 only

    trainer = Trainer(debug(**{"train.episodes": 6}), run, resume=True)
    assert (trainer.counters.episodes, trainer.counters.env_steps) == (5, 5 * 80)
    updates_before = trainer.counters.updates
    counters = trainer.run()
    assert (counters.episodes, counters.env_steps) == (6, 6 * 80)
    assert counters.updates == updates_before + 2  # one interval, never back
    after = episodes_on_disk(run)
    assert list(after) == [*before, "000005-80.npz"]
    assert_same_episodes(before, {name: after[name] for name in before})
    replay = Replay.load(run / "episodes", seed=0)
    assert replay.num_episodes == 6 and replay.num_steps == sum(
        episode["obs"].shape[0] - 1 for episode in after.values())  # rows less the reset row


@pytest.mark.parametrize("stop_after", [3, 4], ids=["inside-an-interval", "after-an-interval"])
def test_a_stopped_interval_is_finished_not_redone(tmp_path, monkeypatch, stop_after) -> None:
    """A Ctrl-C after update 3 (the first of the second interval, C = 2) or after update 4
    (that interval done, its episode cut short): the resume makes only the updates still
    owed, so the run ends with the updates of one never stopped, C per planned episode."""
    cfg = debug(**{"train.episodes": 5, "train.test_every": 0})
    real = Updater.__call__
    made = []

    def update_then_stop(self, batch, generator=None):
        result = real(self, batch, generator)
        made.append(1)
        if len(made) == stop_after:
            signal.raise_signal(signal.SIGINT)  # the run's handler turns it into a stop
        return result

    monkeypatch.setattr(Updater, "__call__", update_then_stop)
    run = new_run_dir(tmp_path, "stopped", 0)
    with pytest.raises(Interrupted):
        Trainer(cfg, run).run()
    stopped = checkpoint.load(run)["counters"]
    assert (stopped["episodes"], stopped["updates"]) == (3, stop_after)
    counters = Trainer(cfg, run, resume=True).run()
    planned = cfg.train.episodes - cfg.train.seed_episodes
    assert (counters.episodes, counters.updates) == (5, cfg.train.collect_interval * planned)


def test_a_stop_during_a_test_phase_ends_it_at_once_and_the_resume_plays_it(
        tmp_path, monkeypatch) -> None:
    """Ctrl-C in the test phase after the last episode (episode 4, a phase every 2 after 2
    seed episodes): the phase stops at the next step instead of playing on, the run is
    not finished although its episodes are, and the resume plays that phase and only it."""
    cfg = debug(**{"train.episodes": 4})
    real = Agent.act
    test_steps: list[int] = []

    def act_then_stop(self, obs, exploration_noise=0.0):
        if exploration_noise == 0.0:  # a test phase acts without noise
            test_steps.append(1)
            if len(test_steps) == 1:
                signal.raise_signal(signal.SIGINT)  # the run's handler turns it into a stop
        return real(self, obs, exploration_noise)

    monkeypatch.setattr(Agent, "act", act_then_stop)
    run = new_run_dir(tmp_path, "stopped", 0)
    with pytest.raises(Interrupted):
        Trainer(cfg, run).run()
    assert len(test_steps) == 1  # of 80 steps
    stopped = checkpoint.load(run)["counters"]
    assert (stopped["episodes"], stopped["test_phases"]) == (4, 0)
    assert not any("test/return" in m for m in metrics_without_time(run))
    assert not run_finished(run)

    counters = Trainer(cfg, run, resume=True).run()
    assert (counters.episodes, counters.updates, counters.test_phases) == (4, 4, 1)
    assert len(test_steps) == 1 + 80
    tests = [m for m in metrics_without_time(run) if "test/return" in m]
    assert [m["env_steps"] for m in tests] == [4 * 80]
    assert run_finished(run)


def test_which_episodes_a_test_phase_follows_and_when_one_is_owed() -> None:
    """Hand cases: S 5 seed episodes, a phase every 20, 60 episodes -> phases after 20, 40,
    60; S 20, a phase every 10 -> the first after episode 30 (20 is a seed episode)."""
    train = config_lib.TrainConfig(seed_episodes=5, test_every=20, episodes=60)
    assert [k for k in range(1, 61) if phase_due_after(train, k)] == [20, 40, 60]
    assert not any(phase_due_after(config_lib.TrainConfig(test_every=0), k)
                   for k in range(1, 61))
    late = config_lib.TrainConfig(seed_episodes=20, test_every=10, episodes=40)
    assert [k for k in range(1, 41) if phase_due_after(late, k)] == [30, 40]
    assert owes_test_phase(late, Counters(episodes=30, test_phases=0))
    assert not owes_test_phase(late, Counters(episodes=40, test_phases=0))  # missing two
    assert [owes_test_phase(train, Counters(episodes=60, test_phases=n)) for n in (1, 2, 3)] \
        == [False, True, False]
    assert not owes_test_phase(train, Counters(episodes=59, test_phases=2))
    assert finished(train, Counters(episodes=60, test_phases=3))
    assert not finished(train, Counters(episodes=60, test_phases=2))  # the last phase owed
    assert not finished(train, Counters(episodes=59, test_phases=2))


def test_a_run_killed_before_its_first_checkpoint_resumes_from_its_episodes(tmp_path,
                                                                            capsys) -> None:
    """No checkpoint, 3 episodes on disk: the resume rebuilds model and optimiser, takes the
    counters from the files, says so in one line, and keeps every episode file."""
    run = new_run_dir(tmp_path, "early", 0)
    Trainer(debug(**{"train.episodes": 3}), run).run()
    (run / checkpoint.CHECKPOINT_NAME).unlink()
    before = episodes_on_disk(run)
    capsys.readouterr()
    trainer = Trainer(debug(**{"train.episodes": 4}), run, resume=True)
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "no checkpoint" in warning[0] and "3 episode files" in warning[0]
    assert (trainer.counters.episodes, trainer.counters.env_steps,
            trainer.counters.updates) == (3, 3 * 80, 0)
    counters = trainer.run()
    assert (counters.episodes, counters.env_steps, counters.updates) == (4, 4 * 80, 2)
    after = episodes_on_disk(run)
    assert list(after) == [*before, "000003-80.npz"]
    assert_same_episodes(before, {name: after[name] for name in before})


def test_the_first_checkpoint_follows_the_seed_episodes(tmp_path, monkeypatch) -> None:
    """A checkpoint is written once the seed episodes are in, before any update."""
    cfg = debug(**{"train.episodes": 3, "train.checkpoint_every": 100})
    run = new_run_dir(tmp_path, "first", 0)
    seen: list[dict[str, int]] = []
    real = Trainer.save_checkpoint

    def record(self: Trainer) -> None:
        seen.append(vars(self.counters).copy())
        real(self)

    monkeypatch.setattr(Trainer, "save_checkpoint", record)
    Trainer(cfg, run).run()
    assert seen[0] == {"episodes": cfg.train.seed_episodes, "env_steps": 2 * 80, "updates": 0,
                       "test_phases": 0}


CUDA_GENERATOR_STATE_BYTES = 16
"""A CUDA generator's state (seed and offset, 8 bytes each); a CPU one's is 5056 bytes."""


def as_if_written_on_cuda(run: Path) -> None:
    """Rewrite a run's checkpoint as a CUDA run writes it: the planner's generator state of a
    CUDA generator, fused Adam, and device cuda in the saved config. (Its tensors are loaded
    with map_location="cpu" either way, which is what a CUDA checkpoint read here gets.)"""
    payload = checkpoint.load(run)
    payload["rng"]["generator"] = torch.arange(CUDA_GENERATOR_STATE_BYTES, dtype=torch.uint8)
    for group in payload["optimizer"]["param_groups"]:
        group["fused"] = True
    payload["config"]["device"] = "cuda"
    payload.pop("format")
    checkpoint.save(run / checkpoint.CHECKPOINT_NAME, payload)


def test_a_checkpoint_written_on_cuda_tests_predicts_and_resumes_on_cpu(tmp_path,
                                                                       capsys) -> None:
    from planet_torch.cli import main

    run = new_run_dir(tmp_path, "cuda", 0)
    Trainer(debug(**{"train.episodes": 3, "device": "cuda" if torch.cuda.is_available()
                     else "cpu"}), run).run()
    as_if_written_on_cuda(run)
    assert main(["test", str(run), "--episodes", "1", "--device", "cpu"]) == 0
    assert main(["predict", str(run), "--sequences", "1", "--context", "2", "--horizon", "3",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--device", "cpu",
                 "--train.episodes", "4"]) == 0
    err = capsys.readouterr().err
    assert "reseeded" in err
    resumed = checkpoint.load(run)
    assert resumed["counters"]["episodes"] == 4
    assert resumed["config"]["device"] == "cpu"
    assert all(group["fused"] is None or not group["fused"]
               for group in resumed["optimizer"]["param_groups"])
