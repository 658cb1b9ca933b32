"""Reliability: `planet train` killed or stopped at any moment resumes, and bad input is one line.

Every run here is the debug preset on toy-reach: 80-step episodes at action repeat 1, 2 seed
episodes, 2 updates before each planned episode, a checkpoint after every episode and a test
phase after the fourth, with a budget of 4 episodes. Checkpoints are written in this order:
after the seed episodes (1st), after episode 3 (2nd), after episode 4 (3rd) and once more
when the run ends (4th).

* SIGKILL of a real `planet train` process at six moments, each reached deterministically:
  `python -c WRAPPER` patches one function to write a marker file and block there, then
  calls `planet_torch.cli.main`; the test waits for the marker and kills the process.
  `planet train --resume` must then finish the budget with every episode finished before
  the kill byte-identical on disk, episode indices 0..3, checkpoint counters that never go
  back, `train/episodes` logged once per episode, `train/updates` never decreasing, and a
  replay (`Replay.load`) that holds exactly the episode files.
* SIGTERM and Ctrl-C (SIGINT) to a real process: exit code 130, a checkpoint of every
  episode on disk, and a resume to the budget.
* A table of bad inputs to every subcommand, run in-process: exactly one line on stderr, a
  non-zero exit, no traceback, and no file or folder changed (bytes and mtime). A few are
  repeated in real processes, where anything else printed on the way out would show.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import yaml
from processes import Planet, only_run
from tqdm import tqdm

from planet_torch import checkpoint
from planet_torch.cli import main
from planet_torch.config import CONFIG_VERSION
from planet_torch.replay import Replay, episode_files
from planet_torch.world_model import Updater

pytestmark = pytest.mark.usefixtures("one_thread")

BUDGET = 4
"""Episodes of every run here (the debug preset's own budget, given explicitly)."""

STEPS = 80
"""Agent steps (and environment steps, at R = 1) of a debug toy-reach episode."""

TRAIN = ["train", "--preset", "debug", "--task", "toy-reach", "--train.episodes", str(BUDGET)]

WRAPPER = r"""
import io, sys, time
from pathlib import Path

marker, moment, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def block():
    marker.write_text(moment)
    time.sleep(3600)  # until the test kills the process


if moment in ("before-first-episode-ends", "mid-episode"):
    from planet_torch.envs import ToyReachEnv

    stop_in = 1 if moment == "before-first-episode-ends" else 4  # this episode, 40 steps in
    count = {"episode": 0, "step": 0}
    real_reset, real_step = ToyReachEnv.reset, ToyReachEnv.step

    def reset(self, **kwargs):
        count["episode"] += 1
        count["step"] = 0
        return real_reset(self, **kwargs)

    def step(self, action):
        count["step"] += 1
        if count["episode"] == stop_in and count["step"] == 40:
            block()
        return real_step(self, action)

    ToyReachEnv.reset, ToyReachEnv.step = reset, step

if moment in ("update-interval", "nan-loss"):
    import torch
    from planet_torch.world_model import Updater

    real_update, updates = Updater.__call__, [0]

    def update(self, *args, **kwargs):
        updates[0] += 1
        if moment == "update-interval" and updates[0] == 2:  # the second of the first interval
            block()
        metrics = real_update(self, *args, **kwargs)
        if moment == "nan-loss":
            metrics["model/loss"] = torch.tensor(float("nan"))
        return metrics

    Updater.__call__ = update

if moment in ("checkpoint-write", "after-last-episode"):
    import torch
    from planet_torch import checkpoint

    real_save, saves = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        saves[0] += 1
        if moment == "checkpoint-write" and saves[0] == 2:  # the one after episode 3
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            Path(f).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            block()
        if moment == "after-last-episode" and saves[0] == 3:  # the one after episode 4
            block()
        return real_save(obj, f, *args, **kwargs)

    checkpoint.torch.save = save

if moment == "before-exit":
    from planet_torch.train import Trainer

    real_run = Trainer.run

    def run(self):
        counters = real_run(self)  # the final checkpoint is written
        block()
        return counters

    Trainer.run = run

from planet_torch.cli import main

sys.exit(main(argv))
"""
"""`python -c WRAPPER MARKER MOMENT ARGV...`: `planet ARGV` that writes MARKER and blocks at
MOMENT (or, for nan-loss, whose every update reports a NaN loss)."""

TQDM_BAR = re.compile(r"\|\s*\d+/\d+ \[")
"""A progress bar line of tqdm (`desc: 50%|#####     | 2/4 [00:01<00:01, ...]`)."""


def episode_bytes(run: Path) -> dict[str, bytes]:
    """Every episode file of a run, oldest first: name -> its bytes."""
    return {path.name: path.read_bytes() for path in episode_files(run / "episodes")}


def counters(run: Path) -> dict[str, int] | None:
    """The counters of a run's checkpoint, or None without one."""
    if not (run / checkpoint.CHECKPOINT_NAME).exists():
        return None
    return {k: int(v) for k, v in checkpoint.load(run)["counters"].items()}


def logged(run: Path, key: str) -> list[float]:
    """The values of one metric in metrics.jsonl, in the order logged (every line must parse)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r[key] for r in records if key in r]


def assert_resumed_to_the_budget(run: Path, before: dict[str, bytes],
                                 stopped: dict[str, int] | None) -> dict[str, int]:
    """The run after its resume: the budget reached, the episodes finished before the stop
    untouched, indices contiguous, counters never back, the metrics consistent, no temporary
    file left, and a replay that is exactly the files. Returns the final counters."""
    final = counters(run)
    assert final is not None
    assert (final["episodes"], final["env_steps"]) == (BUDGET, BUDGET * STEPS)
    after = episode_bytes(run)
    assert list(after) == [f"{i:06d}-{STEPS}.npz" for i in range(BUDGET)]
    for name, data in before.items():
        assert after[name] == data, f"{name} changed"
    if stopped is not None:
        for key, value in stopped.items():
            assert final[key] >= value, (key, stopped, final)
    assert logged(run, "train/episodes") == [float(i) for i in range(1, BUDGET + 1)]
    updates = logged(run, "train/updates")
    assert updates == sorted(updates), updates
    steps = logged(run, "env_steps")
    assert steps == sorted(steps), steps
    assert not [p.name for p in run.rglob("*.tmp")]
    replay = Replay.load(run / "episodes", seed=0)
    assert replay.num_episodes == BUDGET
    for episode, path in zip(replay.episodes, episode_files(run / "episodes"), strict=True):
        with np.load(path) as stored:
            for field in ("obs", "action", "reward"):
                np.testing.assert_array_equal(getattr(episode, field), stored[field],
                                              err_msg=f"{path.name} {field}")
    return final


class Kill(NamedTuple):
    """A moment to SIGKILL `planet train` at, and what is on disk then and at the end."""

    moment: str
    """Where WRAPPER blocks."""
    files: int
    """Episode files on disk at the kill."""
    checkpoint: tuple[int, int] | None
    """(episodes, updates) of the checkpoint on disk at the kill; None: no checkpoint yet."""
    updates: int
    """Updates in the final checkpoint. Updates that no checkpoint holds are lost, and the
    resume runs one interval (2 updates) before each episode still to collect, so a run can
    end with fewer than 2 per planned episode."""
    logged_updates: list[float]
    """`train/updates` lines of metrics.jsonl at the end, both sessions together."""


KILLS = [
    # 40 steps into the first seed episode: a config, an empty episodes folder, no checkpoint.
    Kill("before-first-episode-ends", 0, None, 4, [2, 4]),
    # the second update of the first interval: its updates were never logged.
    Kill("update-interval", 2, (2, 0), 4, [2, 4]),
    # 40 steps into episode 4: the interval before it was logged and is redone (4 twice).
    Kill("mid-episode", 3, (3, 2), 4, [2, 4, 4]),
    # half of the checkpoint after episode 3 written to .checkpoint.pt.tmp: the old one
    # (after the seed episodes) stays; the interval before episode 3 is lost and logged
    # again by the interval the resume runs before episode 4.
    Kill("checkpoint-write", 3, (2, 0), 2, [2, 2]),
    # episode 4 on disk, its checkpoint not begun: the resume only counts it; the interval
    # before it (logged as 4) is lost, the final checkpoint holds 2 updates.
    Kill("after-last-episode", BUDGET, (3, 2), 2, [2, 4]),
    # the final checkpoint written, the process not yet exited: the resume has nothing to do.
    Kill("before-exit", BUDGET, (BUDGET, 4), 4, [2, 4]),
]


@pytest.mark.parametrize("kill", KILLS, ids=[k.moment for k in KILLS])
def test_a_hard_kill_at_any_moment_resumes_to_the_budget_losing_no_episode(
        tmp_path: Path, kill: Kill) -> None:
    """SIGKILL (no handler runs) at `kill.moment`, then `planet train --resume`."""
    marker = tmp_path / "marker"
    planet = Planet(tmp_path / "io",
                    [str(marker), kill.moment, *TRAIN, "--logdir", str(tmp_path / "runs")],
                    WRAPPER)
    planet.wait_for(marker.exists, f"marker of {kill.moment}")
    planet.proc.send_signal(signal.SIGKILL)
    assert planet.wait() == -signal.SIGKILL
    run = only_run(tmp_path / "runs")
    before = episode_bytes(run)
    stopped = counters(run)
    assert len(before) == kill.files, (list(before), planet.stderr()[-2000:])
    assert (None if stopped is None
            else (stopped["episodes"], stopped["updates"])) == kill.checkpoint
    if kill.moment == "checkpoint-write":
        partial = run / f".{checkpoint.CHECKPOINT_NAME}.tmp"  # half of the new checkpoint
        assert partial.stat().st_size > 0
        with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
            checkpoint.load(partial)

    assert main(["train", "--resume", str(run)]) == 0
    final = assert_resumed_to_the_budget(run, before, stopped)
    assert final["updates"] == kill.updates
    assert logged(run, "train/updates") == kill.logged_updates


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_leaves_a_checkpoint_and_the_resume_reaches_the_budget(
        tmp_path: Path, signum: signal.Signals) -> None:
    """Sent once the first checkpoint exists (the handler is in place from the start of the
    run; the checkpoint follows the seed episodes), with a budget of 1000 episodes so that
    the run is still going: exit 130, a checkpoint that counts every episode on disk, the
    resume command in the last words; resumed with a budget of BUDGET episodes."""
    logdir = tmp_path / "runs"
    planet = Planet(tmp_path / "io", [*TRAIN[:-1], "1000", "--logdir", str(logdir)])

    def first_checkpoint() -> bool:
        runs = [p for p in logdir.iterdir() if p.is_dir()] if logdir.is_dir() else []
        return bool(runs) and (runs[0] / checkpoint.CHECKPOINT_NAME).exists()

    planet.wait_for(first_checkpoint, "first checkpoint")
    planet.proc.send_signal(signum)
    assert planet.wait() == 130, planet.stderr()[-3000:]
    run = only_run(logdir)
    err = planet.stderr()
    assert "stopping: finishing the current step" in err
    assert f"stopped; resume with: planet train --resume {run}" in err
    assert "Traceback" not in err
    before = episode_bytes(run)
    stopped = counters(run)
    assert stopped is not None and stopped["episodes"] == len(before)
    assert 2 <= len(before) < BUDGET, "the run went past the point it was to be stopped at"

    assert main(["train", "--resume", str(run), "--train.episodes", str(BUDGET)]) == 0
    final = assert_resumed_to_the_budget(run, before, stopped)
    # the interval cut short by the signal kept its updates and the resume made only those it
    # still owed: 2 per planned episode (2 seed episodes), as in a run never stopped
    assert final["updates"] == 2 * (BUDGET - 2)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-episode debug run on toy-reach without test phases, built once; tests
    use a copy."""
    logdir = tmp_path_factory.mktemp("finished")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*TRAIN[:-1], "3", "--train.test_every", "0", "--logdir", str(logdir)]) == 0
    finally:
        torch.set_num_threads(threads)
    return only_run(logdir)


def edit_config(run: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load((run / "config.yaml").read_text())
    edit(data)
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def future_checkpoint(run: Path, tmp: Path) -> None:
    """tmp/future.pt: the run's checkpoint with the config of a later planet-torch."""
    payload = torch.load(run / checkpoint.CHECKPOINT_NAME, weights_only=True)
    payload["config"]["version"] = 99
    torch.save(payload, tmp / "future.pt")


def poison_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every update reports a NaN loss."""
    real = Updater.__call__

    def poisoned(self: Updater, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        metrics = real(self, *args, **kwargs)
        metrics["model/loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(Updater, "__call__", poisoned)


Setup = Callable[[Path, Path], None]
"""Prepares a case: (the copy of the finished run, the test's folder)."""


class Bad(NamedTuple):
    """One bad input: its command line, the exit code and what the line must say."""

    name: str
    argv: list[str]
    """`{run}`: a copy of the finished run; `{tmp}`: the test's folder; `{file}`: a regular
    file there, under which no folder can be made, even by root."""
    code: int
    """1 for an error of the command, 2 for a usage error found by argparse."""
    says: str
    """Text that the one line must contain."""
    setup: Setup | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    new_run: bool = False
    """The command creates a run folder under {tmp}/runs before it fails (only a NaN loss)."""


def _ckpt(run: Path) -> Path:
    return run / checkpoint.CHECKPOINT_NAME


def _episode(run: Path, index: int) -> Path:
    return episode_files(run / "episodes")[index]


NEW = ["--logdir", "{tmp}/runs"]
DEBUG = ["train", "--preset", "debug", "--task", "toy-reach", *NEW]
BAD = [
    # train: tasks
    Bad("train: unknown task", ["train", "--task", "nope", *NEW], 1, "unknown task 'nope'"),
    Bad("train: empty task", ["train", "--task", "", *NEW], 1, "unknown task ''"),
    Bad("train: dm_control domain without that task", ["train", "--task", "cartpole-nope", *NEW],
        1, "dm_control's suite has no task cartpole/nope"),
    Bad("train: unknown Gymnasium id", ["train", "--task", "gym:NoSuch-v0", *NEW], 1,
        "Gymnasium has no environment 'NoSuch-v0'"),
    Bad("train: Gymnasium namespace not installed", ["train", "--task", "gym:ALE/Pong-v5", *NEW],
        1, "Gymnasium has no environment 'ALE/Pong-v5'"),
    # train: flags out of range or mistyped
    Bad("train: batch size 0", [*DEBUG, "--train.batch_size", "0"], 1,
        "train.batch_size must be an integer >= 1, got 0"),
    Bad("train: batch size not a number", [*DEBUG, "--train.batch_size", "x"], 2,
        "argument --train.batch_size: invalid int value: 'x'"),
    Bad("train: bit depth 9", [*DEBUG, "--model.bit_depth", "9"], 1,
        "model.bit_depth must be an integer in 1..8, got 9"),
    Bad("train: more elites than candidates", [*DEBUG, "--planner.elites", "99"], 1,
        "planner.elites must be in 1..planner.candidates (16), got 99"),
    Bad("train: chunk longer than an episode", [*DEBUG, "--train.chunk_length", "500"], 1,
        "train.chunk_length must be at most 81"),
    Bad("train: budget below the seed episodes", [*DEBUG, "--train.episodes", "1"], 1,
        "train.episodes must be >= train.seed_episodes (2), got 1"),
    Bad("train: negative learning rate", [*DEBUG, "--optim.learning_rate", "-1"], 1,
        "optim.learning_rate must be > 0, got -1.0"),
    Bad("train: NaN learning rate", [*DEBUG, "--optim.learning_rate", "nan"], 1,
        "optim.learning_rate must be > 0, got nan"),
    Bad("train: precision fp16", [*DEBUG, "--precision", "fp16"], 1,
        "precision must be fp32 or bf16, got 'fp16'"),
    Bad("train: compile maybe", [*DEBUG, "--compile", "maybe"], 2,
        "argument --compile: expected true or false, got 'maybe'"),
    Bad("train: env steps not a number", [*DEBUG, "--train.env_steps", "lots"], 2,
        "argument --train.env_steps: expected an integer or none, got 'lots'"),
    Bad("train: negative seed", [*DEBUG, "--seed", "-1"], 1,
        "seed must be an integer >= 0, got -1"),
    Bad("train: unknown flag", [*DEBUG, "--no-such-flag", "1"], 2,
        "unrecognized arguments: --no-such-flag 1"),
    Bad("train: unknown preset", ["train", "--preset", "huge"], 2,
        "argument --preset: invalid choice: 'huge'"),
    Bad("train: logdir under a file", ["train", "--preset", "debug", "--task", "toy-reach",
                                       "--logdir", "{file}/runs"], 1, "Not a directory"),
    Bad("train: NaN loss", DEBUG, 1, "loss is not finite after update 2", patch=poison_updates,
        new_run=True),
    # train --resume: the folder, the flags
    Bad("resume: missing folder", ["train", "--resume", "{tmp}/missing"], 1,
        "missing does not exist"),
    Bad("resume: a folder that is no run", ["train", "--resume", "{tmp}"], 1,
        "is not a run folder (no config.yaml)"),
    Bad("resume: a file", ["train", "--resume", "{file}"], 1,
        "a_file is a file, not a run folder"),
    Bad("resume: with a preset", ["train", "--resume", "{run}", "--preset", "debug"], 1,
        "--preset cannot be used with --resume"),
    Bad("resume: a fixed field changed", ["train", "--resume", "{run}", "--model.depth", "4"],
        1, "--model.depth 4 cannot be used with --resume"),
    Bad("resume: budget below the seed episodes",
        ["train", "--resume", "{run}", "--train.episodes", "1"], 1,
        "train.episodes must be >= train.seed_episodes (2), got 1"),
    # train --resume: the checkpoint
    Bad("resume: corrupt checkpoint", ["train", "--resume", "{run}"], 1,
        "is corrupt or not a checkpoint: UnpicklingError",
        lambda run, tmp: _ckpt(run).write_bytes(b"not a checkpoint")),
    Bad("resume: truncated checkpoint", ["train", "--resume", "{run}"], 1,
        "is corrupt or not a checkpoint", lambda run, tmp: truncate(_ckpt(run))),
    Bad("resume: empty checkpoint", ["train", "--resume", "{run}"], 1,
        "is corrupt or not a checkpoint: EOFError", lambda run, tmp: _ckpt(run).write_bytes(b"")),
    Bad("resume: a torch file that is no checkpoint", ["train", "--resume", "{run}"], 1,
        "has format None, expected 1",
        lambda run, tmp: torch.save({"weights": torch.zeros(2)}, _ckpt(run))),
    Bad("resume: checkpoint unlike config.yaml", ["train", "--resume", "{run}"], 1,
        "does not fit its config.yaml",
        lambda run, tmp: edit_config(run, lambda c: c["model"].update(belief_size=32))),
    # train --resume: the episodes
    Bad("resume: corrupt episode file", ["train", "--resume", "{run}"], 1,
        "unreadable episode file",
        lambda run, tmp: _episode(run, 1).write_bytes(b"not an npz file")),
    Bad("resume: truncated episode file", ["train", "--resume", "{run}"], 1,
        "000002-80.npz: BadZipFile", lambda run, tmp: truncate(_episode(run, 2))),
    # train --resume: config.yaml
    Bad("resume: config from a future version", ["train", "--resume", "{run}"], 1,
        f"config version 99 is not supported by this planet-torch (expects {CONFIG_VERSION})",
        lambda run, tmp: edit_config(run, lambda c: c.update(version=99))),
    Bad("resume: config.yaml not YAML", ["train", "--resume", "{run}"], 1,
        "cannot read config", lambda run, tmp: (run / "config.yaml").write_text("task: [")),
    Bad("resume: config.yaml a list", ["train", "--resume", "{run}"], 1, "is not a mapping",
        lambda run, tmp: (run / "config.yaml").write_text("- a\n- b\n")),
    Bad("resume: config section not a mapping", ["train", "--resume", "{run}"], 1,
        "config section model must be a mapping of its fields, got 5",
        lambda run, tmp: edit_config(run, lambda c: c.update(model=5))),
    Bad("resume: config field of the wrong type", ["train", "--resume", "{run}"], 1,
        "config field train.batch_size must be int, got 2.5",
        lambda run, tmp: edit_config(run, lambda c: c["train"].update(batch_size=2.5))),
    Bad("resume: config field unknown", ["train", "--resume", "{run}"], 1,
        "unknown config field(s) train.speed",
        lambda run, tmp: edit_config(run, lambda c: c["train"].update(speed=3))),
    # test
    Bad("test: missing run", ["test", "{tmp}/missing"], 1, "missing does not exist"),
    Bad("test: run without a checkpoint", ["test", "{run}"], 1, "no checkpoint at",
        lambda run, tmp: _ckpt(run).unlink()),
    Bad("test: corrupt checkpoint", ["test", "{run}"], 1, "is corrupt or not a checkpoint",
        lambda run, tmp: _ckpt(run).write_bytes(b"\x00" * 64)),
    Bad("test: truncated checkpoint", ["test", "{run}"], 1, "is corrupt or not a checkpoint",
        lambda run, tmp: truncate(_ckpt(run))),
    Bad("test: --checkpoint that is no checkpoint", ["test", "{run}", "--checkpoint",
                                                     "{run}/config.yaml"], 1,
        "config.yaml is corrupt or not a checkpoint"),
    Bad("test: --checkpoint from a future version", ["test", "{run}", "--checkpoint",
                                                     "{tmp}/future.pt"], 1,
        "config version 99 is not supported", future_checkpoint),
    Bad("test: config from a future version", ["test", "{run}"], 1, "config version 99",
        lambda run, tmp: edit_config(run, lambda c: c.update(version=99))),
    Bad("test: config.yaml not text", ["test", "{run}"], 1, "cannot read config",
        lambda run, tmp: (run / "config.yaml").write_bytes(b"\xff\xfe\x00")),
    Bad("test: 0 episodes", ["test", "{run}", "--episodes", "0"], 2,
        "argument --episodes: expected a positive integer, got 0"),
    Bad("test: unknown device", ["test", "{run}", "--device", "gpu"], 1,
        "unknown device 'gpu'"),
    Bad("test: output under a file", ["test", "{run}", "--output", "{file}/out"], 1,
        "cannot write to"),
    # predict
    Bad("predict: horizon 0", ["predict", "{run}", "--horizon", "0"], 2,
        "argument --horizon: expected a positive integer, got 0"),
    Bad("predict: seed not a number", ["predict", "{run}", "--seed", "x"], 2,
        "argument --seed: invalid int value: 'x'"),
    Bad("predict: more context than an episode", ["predict", "{run}", "--context", "500"], 1,
        "too few for 500 context frames"),
    Bad("predict: output under a file", ["predict", "{run}", "--output", "{file}/out"], 1,
        "cannot write to"),
    # plot
    Bad("plot: no run given", ["plot"], 2, "the following arguments are required: RUN_DIR"),
    Bad("plot: missing run", ["plot", "{tmp}/missing", "--output", "{tmp}/curves.png"], 1,
        "missing does not exist"),
    Bad("plot: wrong suffix", ["plot", "{run}", "--output", "{tmp}/curves.pdf"], 1,
        "--output must end in .png or .svg"),
    Bad("plot: output under a file", ["plot", "{run}", "--output", "{file}/curves.png"], 1,
        "cannot write to"),
    Bad("plot: metrics.jsonl of garbage", ["plot", "{run}"], 1, "has no returns logged yet",
        lambda run, tmp: (run / "metrics.jsonl").write_text("garbage\n")),
    Bad("plot: metrics.jsonl of JSON that is no record", ["plot", "{run}"], 1,
        "has no returns logged yet",
        lambda run, tmp: (run / "metrics.jsonl").write_text('5\n{"train/return": 1.0}\n')),
    Bad("plot: config from a future version", ["plot", "{run}"], 1, "config version 99",
        lambda run, tmp: edit_config(run, lambda c: c.update(version=99))),
    # bench
    Bad("bench: batch 0", ["bench", "--batch", "0"], 2,
        "argument --batch: expected a positive integer, got 0"),
    Bad("bench: unpaired sizes", ["bench", "--batch", "1", "2", "--length", "3", "4", "5"], 1,
        "--batch and --length need as many values as each other"),
    Bad("bench: unknown device", ["bench", "--device", "tpu"], 1, "unknown device 'tpu'"),
    Bad("bench: negative warmup", ["bench", "--quick", "--warmup", "-1"], 1,
        "warmup >= 0, got 2 and -1"),
    Bad("bench: json under a file", ["bench", "--quick", "--json", "{file}/bench.json"], 1,
        "cannot write to"),
    Bad("bench: unknown task", ["bench", "--quick", "--task", "nope", "--batch", "1",
                                "--length", "2", "--agents", "1", "--repeats", "1",
                                "--warmup", "0"], 1, "unknown task 'nope'"),
    # tasks, and no or an unknown subcommand
    Bad("tasks: an argument", ["tasks", "extra"], 2, "unrecognized arguments: extra"),
    Bad("no subcommand", [], 2, "the following arguments are required: COMMAND"),
    Bad("unknown subcommand", ["fly"], 2, "argument COMMAND: invalid choice: 'fly'"),
]


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder under root: path -> (bytes, or None for a folder; mtime)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None,
                                       p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def changes(before: dict[str, tuple[bytes | None, int]],
            after: dict[str, tuple[bytes | None, int]]) -> list[str]:
    """What differs between two snapshots, one entry per path: added, removed or changed."""
    return ([f"added {k}" for k in sorted(set(after) - set(before))]
            + [f"removed {k}" for k in sorted(set(before) - set(after))]
            + [f"{'bytes' if before[k][0] != after[k][0] else 'mtime'} of {k}"
               for k in sorted(set(before) & set(after)) if before[k] != after[k]])


class QuietBar(tqdm):
    """tqdm without its bar: only what the program writes itself reaches stderr."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "disable": True})


def run_main(argv: list[str]) -> int:
    """`planet ARGV` in-process; argparse's SystemExit becomes its code."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize("bad", BAD, ids=[b.name for b in BAD])
def test_bad_input_is_one_line_with_a_nonzero_exit_and_changes_nothing(
        bad: Bad, finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One line `planet[ CMD]: error: ...` on stderr, exit code 1 (2 from argparse), no
    traceback, and every file and folder under the test's folder (a copy of the finished
    run among them) keeps its bytes and mtime; no run folder is made for a run that fails
    before it starts."""
    monkeypatch.setattr("planet_torch.train.tqdm", QuietBar)
    monkeypatch.setattr("planet_torch.trained.tqdm", QuietBar)
    monkeypatch.delenv("PLANET_DEBUG", raising=False)
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file\n")
    if bad.setup is not None:
        bad.setup(run, tmp_path)
    if bad.patch is not None:
        bad.patch(monkeypatch)
    argv = [arg.format(run=run, tmp=tmp_path, file=blocker) for arg in bad.argv]
    before = snapshot(tmp_path)
    capsys.readouterr()

    code = run_main(argv)

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == bad.code, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    command = f"planet {argv[0]}" if argv and bad.code == 1 else "planet"
    assert lines[0].startswith(command) and ": error: " in lines[0], lines[0]
    assert bad.says in lines[0], lines[0]
    after = snapshot(tmp_path)
    if bad.new_run:  # the run started: its folder holds the last good checkpoint
        made = only_run(tmp_path / "runs")
        assert counters(made) == {"episodes": 2, "env_steps": 2 * STEPS, "updates": 0,
                                  "test_phases": 0}
        after = {k: v for k, v in after.items() if not k.startswith("runs")}
    assert not changes(before, after)


LEAVES_A_FOLDER = [
    Bad("train: no CUDA", [*DEBUG, "--device", "cuda"], 1, "CUDA is not available"),
    Bad("train: unknown device", [*DEBUG, "--device", "tpu"], 1, "unknown device 'tpu'"),
    Bad("train: discrete actions", ["train", "--preset", "debug", "--task", "gym:CartPole-v1",
                                    *NEW], 1, "needs a Box action space"),
    Bad("plot: missing run, default output", ["plot", "{tmp}/missing"], 1,
        "missing does not exist"),
]
"""Bad input found late: the Trainer checks the device and the action space once `cmd_train`
has made the run folder (which it then removes), and `cmd_plot`'s default output lies in
RUN_DIR, which it must read before it makes the output's folder."""


@pytest.mark.parametrize("bad", LEAVES_A_FOLDER, ids=[b.name for b in LEAVES_A_FOLDER])
def test_bad_input_refused_after_a_folder_is_made_is_one_line(
        bad: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One line and exit code 1 like the others, no traceback."""
    if bad.name == "train: no CUDA" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    argv = [arg.format(tmp=tmp_path) for arg in bad.argv]
    capsys.readouterr()
    assert run_main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and bad.says in err and "Traceback" not in err, err
    assert err.startswith(f"planet {argv[0]}: error: "), err


@pytest.mark.parametrize("bad", LEAVES_A_FOLDER, ids=[b.name for b in LEAVES_A_FOLDER])
def test_bad_input_refused_after_a_folder_is_made_leaves_nothing(
        bad: Bad, tmp_path: Path) -> None:
    """Nothing should be left of a command that never started."""
    if bad.name == "train: no CUDA" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert run_main([arg.format(tmp=tmp_path) for arg in bad.argv]) == 1
    assert not list(tmp_path.iterdir())


def test_a_nan_loss_on_resume_keeps_the_checkpoint_episodes_and_metrics(
        finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first interval of the resumed session diverges: one line, exit 1, and the
    checkpoint, the episode files and metrics.jsonl keep their bytes and mtime. (The session
    did start: it saved the budget given in config.yaml and opened a TensorBoard file.)"""
    monkeypatch.setattr("planet_torch.train.tqdm", QuietBar)
    poison_updates(monkeypatch)
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    kept = ["checkpoint.pt", "metrics.jsonl", *(f"episodes/{n}" for n in episode_bytes(run))]
    before = snapshot(run)
    capsys.readouterr()
    assert run_main(["train", "--resume", str(run), "--train.episodes", str(BUDGET)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("planet train: error: loss is not finite after update 4"), err
    after = snapshot(run)
    assert not changes({k: before[k] for k in kept}, {k: after[k] for k in kept})


@pytest.mark.parametrize("name", ["resume: corrupt episode file", "train: NaN loss"])
def test_bad_input_in_a_real_process_prints_one_line_besides_the_progress_bar(
        name: str, finished_run: Path, tmp_path: Path) -> None:
    """The same checks in a real `planet` process, where a traceback from a thread or at
    interpreter exit would also show: one line on stderr, not counting tqdm's bar."""
    bad = next(b for b in BAD if b.name == name)
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    if bad.setup is not None:
        bad.setup(run, tmp_path)
    argv = [arg.format(run=run, tmp=tmp_path, file=tmp_path / "a_file") for arg in bad.argv]
    before = snapshot(run)
    if bad.patch is not None:  # through the wrapper, which poisons the loss
        planet = Planet(tmp_path / "io", [str(tmp_path / "marker"), "nan-loss", *argv], WRAPPER)
    else:
        planet = Planet(tmp_path / "io", argv)
    assert planet.wait() == bad.code
    err = planet.stderr()
    lines = [line for line in err.splitlines() if line.strip() and not TQDM_BAR.search(line)]
    assert "Traceback" not in err
    assert len(lines) == 1 and bad.says in lines[0], err
    assert not changes(before, snapshot(run))
