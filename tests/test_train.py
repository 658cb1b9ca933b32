"""End-to-end runs of `planet train` on the debug preset (tiny sizes, short episodes)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.logger import read_metrics
from planet_torch.replay import episode_files
from planet_torch.train import Trainer, TrainingDiverged, new_run_dir
from planet_torch.world_model import Updater


def _only_run(logdir: Path) -> Path:
    runs = [p for p in logdir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _debug(**changes):
    return config_lib.override(config_lib.PRESETS["debug"](), changes)


def test_debug_run_writes_everything(tmp_path):
    code = main(["train", "--preset", "debug", "--task", "cartpole-swingup",
                 "--logdir", str(tmp_path), "--train.episodes", "4"])
    assert code == 0
    run = _only_run(tmp_path)
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


def test_sigint_writes_a_checkpoint_and_resume_continues(tmp_path):
    """A real Ctrl-C (SIGINT) in the middle of a run, then `--resume`."""
    cmd = [sys.executable, "-m", "planet_torch.cli", "train", "--preset", "debug",
           "--logdir", str(tmp_path), "--train.episodes", "1000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = [p for p in tmp_path.iterdir() if p.is_dir()]
        if runs and len(episode_files(runs[0] / "episodes")) >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    run = _only_run(tmp_path)
    stopped = checkpoint.load(run)["counters"]
    on_disk = len(episode_files(run / "episodes"))
    assert stopped["episodes"] >= 4 and on_disk == stopped["episodes"]
    assert f"--resume {run}" in err.decode()
    target = stopped["episodes"] + 2
    assert main(["train", "--resume", str(run), "--train.episodes", str(target)]) == 0
    resumed = checkpoint.load(run)["counters"]
    assert resumed["episodes"] == target
    assert resumed["updates"] == stopped["updates"] + 2 * 2  # collect_interval 2
    assert resumed["env_steps"] == stopped["env_steps"] + 2 * 80
    assert len(episode_files(run / "episodes")) == target


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
    assert main(["train", "--resume", str(run)]) == 1
    assert "no checkpoint" in capsys.readouterr().err
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
    return _only_run(logdir)


@pytest.fixture
def resumable_run(finished_run, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.mark.parametrize("flag", [["--model.belief_size", "32"], ["--task", "cartpole-swingup"],
                                  ["--seed", "5"], ["--env.action_repeat", "2"],
                                  ["--objective.bit_depth", "8"], ["--logdir", "elsewhere"]])
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
