"""`planet sweep` on a real local Ray instance: a grid that finishes, a worker killed in the
middle of its run, a driver killed and resumed, a trial that fails for good; and its
one-line errors for bad input.

Each sweep runs as its own `planet sweep` process (as a user runs it), which starts and
stops its local Ray instance. The runs use the debug preset on `toy-reach` (no MuJoCo) and
cartpole-swingup.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import kill_group, run_group

from planet_torch import cli, sweep
from planet_torch.runs import EPISODES_DIR, load_config, read_metrics
from planet_torch.sweep import SweepSpec, Trial, parse_grid, parse_seeds, parse_tasks

if os.environ.get("CI"):  # CI installs the dev extra, which brings Ray: never skip there
    import ray  # noqa: F401
else:
    pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")

from planet_torch import sweep_runner
from planet_torch.train import run_finished

TIMEOUT = 900


def sweep_command(logdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "planet_torch.cli", "sweep", "--preset", "debug",
            "--logdir", str(logdir), *args]


def the_sweep(logdir: Path) -> Path:
    (found,) = [p for p in logdir.iterdir() if sweep.is_sweep_dir(p)]
    return found


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = TIMEOUT):
    """Poll `condition` until it returns something true; fail if the sweep ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"the sweep ended (exit {process.returncode}) before {what}: "
                        f"{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.5)
    kill_group(process)
    pytest.fail(f"timed out waiting for {what}")


def start_sweep(logdir: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """A `planet sweep` process in the background, leading a process group of its own (its
    local Ray instance in it), and its sweep folder once it exists."""
    process = subprocess.Popen(sweep_command(logdir, *args), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        root = wait_for(lambda: next((p for p in logdir.iterdir() if sweep.is_sweep_dir(p)),
                                     None), "the sweep folder", process)
    except BaseException:
        kill_group(process)
        raise
    return process, root


def episode_files(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((run_dir / EPISODES_DIR).glob("*.npz"))}


def file_times(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
            for p in run_dir.rglob("*") if p.is_file()}


def test_a_grid_of_two_tasks_and_two_seeds_finishes_with_valid_run_folders(
        tmp_path: Path) -> None:
    result = run_group(sweep_command(tmp_path, "--tasks", "toy-reach,cartpole-swingup",
                                     "--seeds", "0-1", "--name", "grid"), timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    root = the_sweep(tmp_path)
    assert root.name.endswith("-sweep-grid")
    assert "task" in result.stdout and "DONE" in result.stdout  # the live table
    assert "Configuration for experiment" not in result.stdout  # Tune's own tables are off
    names = sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file())
    assert names == ["cartpole-swingup-s0", "cartpole-swingup-s1", "toy-reach-s0",
                     "toy-reach-s1"]
    for name in names:
        run = root / name
        cfg = load_config(run)
        assert (cfg.task, cfg.seed) == (name.rsplit("-s", 1)[0], int(name.rsplit("-s", 1)[1]))
        assert run_finished(run)
        assert len(list((run / EPISODES_DIR).glob("*.npz"))) == cfg.train.episodes
        assert any(run.glob("events.out.tfevents.*"))
        assert any("test/return" in r for r in read_metrics(run))
    assert not list(root.rglob("ray/**/events.out.tfevents.*"))  # TensorBoard: runs only once
    report = json.loads((root / "report.json").read_text())
    assert [g["seeds"] for g in report["groups"]] == [2, 2]
    # Every run folder works with planet test as one made by planet train.
    assert cli.main(["test", str(root / "toy-reach-s1"), "--episodes", "1",
                     "--output", str(tmp_path / "tested")]) == 0


KILL_TRIAL_EPISODES = 16
"""Episodes of the trial whose worker is killed after its third, enough that the kill lands
while the trial runs (a finished trial's worker idles on, and killing it tests nothing)."""


def test_a_killed_worker_is_retried_from_its_own_run_folder(tmp_path: Path) -> None:
    process, root = start_sweep(tmp_path, "--tasks", "toy-reach", "--seeds", "0",
                                "--train.episodes", str(KILL_TRIAL_EPISODES),
                                "--max-failures", "2")
    try:
        run = root / "toy-reach-s0"
        result_file = root / "ray" / "trials" / "toy-reach-s0" / "result.json"

        def worker_pid() -> int | None:
            """The process that holds the trial's train.log open: its worker. (Tune's
            result.json names the pid too, but it may reach the disk only at the end.)"""
            if len(episode_files(run)) < 3:
                return None
            log = str((run / "train.log").resolve())
            for fds in Path("/proc").glob("[0-9]*/fd"):
                with contextlib.suppress(OSError):
                    if any(os.readlink(fd) == log for fd in fds.iterdir()):
                        return int(fds.parent.name)
            return None

        pid = wait_for(worker_pid, "three episodes", process)
        before = episode_files(run)
        # A finished trial's worker idles on: killing it then would test nothing.
        assert not run_finished(run), "the trial ended before its worker could be killed"
        os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        kill_group(process)
    assert process.returncode == 0, output
    assert "retried" in output  # the table shows the retry
    after = episode_files(run)
    assert {k: after[k] for k in before} == before  # no finished episode redone or lost
    assert len(after) == KILL_TRIAL_EPISODES and run_finished(run)
    episodes = [int(r["train/episodes"]) for r in read_metrics(run) if "train/episodes" in r]
    assert episodes == sorted(set(episodes))  # counters continued
    assert episodes[-1] == KILL_TRIAL_EPISODES
    pids = {json.loads(line)["pid"] for line in result_file.read_text().splitlines()}
    assert pid in pids and len(pids) == 2  # the trial went on in a new worker


def test_a_killed_driver_resumes_without_touching_finished_trials(tmp_path: Path) -> None:
    process, root = start_sweep(tmp_path, "--tasks", "toy-reach", "--seeds", "0-2",
                                "--train.episodes", "6", "--cpus-per-run", "2")
    try:
        runs = [root / f"toy-reach-s{seed}" for seed in range(3)]
        finished = wait_for(lambda: [r for r in runs if run_finished(r)], "a finished trial",
                            process)
        times = {run: file_times(run) for run in finished}
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        kill_group(process)
    assert not all(run_finished(r) for r in runs)  # killed in the middle of the sweep
    result = run_group([sys.executable, "-m", "planet_torch.cli", "sweep", "--resume",
                        str(root)], timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(run_finished(r) for r in runs)
    for run, before in times.items():
        assert file_times(run) == before, f"{run.name} was touched by the resumed sweep"


def test_a_trial_that_cannot_run_fails_alone_with_its_one_line_error(tmp_path: Path) -> None:
    # The debug preset's episodes have 80 agent steps: chunks of 100 cannot be drawn.
    result = run_group(sweep_command(tmp_path, "--tasks", "toy-reach", "--seeds", "0",
                                     "--grid", "train.chunk_length=5,100"), timeout=TIMEOUT)
    assert result.returncode == cli.EXIT_FAILURE, result.stdout + result.stderr
    root = the_sweep(tmp_path)
    good = root / "toy-reach-s0-train.chunk_length=5"
    bad = root / "toy-reach-s0-train.chunk_length=100"
    assert run_finished(good)
    error = sweep.read_error(bad)
    assert error is not None and "chunk_length" in error and "\n" not in error
    assert "FAILED" in result.stdout and error in result.stdout  # in the table
    assert error in (root / "report.md").read_text()  # and in the report
    # A failure a retry cannot fix is not retried (one attempt in Tune's results).
    lines = (root / "ray" / "trials" / bad.name / "result.json").read_text().splitlines()
    assert len({json.loads(line)["pid"] for line in lines}) == 1


@pytest.mark.parametrize(("args", "expected"), [
    (["--tasks", "nope-task"], "unknown task 'nope-task'"),
    (["--tasks", "toy-reach", "--grid", "planner.horizon"], "--grid must look like"),
    (["--tasks", "toy-reach", "--grid", "planner.nope=1,2"], "unknown config field"),
    (["--tasks", "toy-reach", "--grid", "planner.horizon=8,x"], "bad value 'x'"),
    (["--tasks", "toy-reach", "--seeds", "3-1"], "is empty"),
    (["--tasks", "toy-reach", "--address", "127.0.0.1:9"], "cannot reach a Ray cluster"),
    (["--seeds", "0-1"], "--tasks is required"),
])
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], expected: str) -> None:
    assert cli.main(["sweep", "--logdir", str(tmp_path), *args]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing was made


def test_an_unknown_flag_is_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["sweep", "--tasks", "toy-reach", "--train.nope", "3"])
    assert stop.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "unrecognized arguments: --train.nope" in err and err.count("\n") == 1


def test_without_ray_the_sweep_names_the_extra() -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from planet_torch import cli\n"
            "sys.exit(cli.main(['sweep', '--tasks', 'toy-reach']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == cli.EXIT_FAILURE
    assert result.stderr.strip() == ("planet sweep: error: planet sweep needs Ray Tune: pip "
                                     "install 'planet-torch[sweep]' (or 'ray[tune]')")


def test_seeds_tasks_and_grid_parse() -> None:
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,5") == (0, 2, 5) and parse_seeds("0-1,7") == (0, 1, 7)
    for bad in ("", "a", "2-1", "0,0", "-1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
    assert parse_tasks("a-b, c-d") == ("a-b", "c-d")
    assert parse_tasks("a-b+c-d,e") == ("a-b,c-d", "e")  # one agent for a-b and c-d
    assert Trial("a-b,c-d", 0, ()).name == "a-b+c-d-s0"
    with pytest.raises(ValueError, match="empty"):
        parse_tasks(" , ")
    grid = parse_grid(["planner.horizon=8,12", "train.batch_size=16"], cli._field_value)
    assert grid == {"planner.horizon": (8, 12), "train.batch_size": (16,)}
    with pytest.raises(ValueError, match="use --tasks and --seeds"):
        parse_grid(["seed=1,2"], cli._field_value)


def test_trials_are_the_product_with_names_fixed_by_their_point(tmp_path: Path) -> None:
    spec = SweepSpec("s", ("toy-reach", "gym:Pendulum-v1"), (0, 1), preset="debug",
                     assignments={"train.episodes": 3},
                     grid={"planner.horizon": (2, 3), "train.batch_size": (4,)})
    trials = spec.trials()
    assert len(trials) == 2 * 2 * 2
    assert trials[0] == Trial("toy-reach", 0, (("planner.horizon", 2),
                                               ("train.batch_size", 4)))
    assert trials[0].name == "toy-reach-s0-planner.horizon=2-train.batch_size=4"
    assert trials[-1].name == "gym_Pendulum-v1-s1-planner.horizon=3-train.batch_size=4"
    cfg = spec.run_config(trials[-1], tmp_path)
    assert (cfg.task, cfg.seed, cfg.planner.horizon, cfg.train.batch_size,
            cfg.train.episodes, cfg.logdir) == ("gym:Pendulum-v1", 1, 3, 4, 3, str(tmp_path))
    sweep.save_spec(spec, tmp_path)
    assert sweep.load_spec(tmp_path) == spec


@pytest.mark.parametrize(("resources", "trials", "asked", "expected"), [
    ({"CPU": 2}, 4, (None, None), (1.0, 0.0)),       # 2 cores: two runs of one thread
    ({"CPU": 16}, 4, (None, None), (4.0, 0.0)),      # 16 cores, 4 runs: 4 threads each
    ({"CPU": 16}, 1, (None, None), (16.0, 0.0)),
    ({"CPU": 16, "GPU": 2}, 8, (None, None), (8.0, 1.0)),  # a GPU each, CPUs shared by 2
    ({"CPU": 16, "GPU": 1}, 8, (None, 0.25), (4.0, 0.25)),  # four runs packed on one GPU
    ({"CPU": 2}, 4, (2.0, None), (2.0, 0.0)),
])
def test_resources_per_run_never_oversubscribe(resources, trials, asked, expected) -> None:
    spec = SweepSpec("s", ("toy-reach",), tuple(range(trials)))
    filled = sweep_runner.resolve_resources(spec, *asked, resources)
    assert (filled.cpus_per_run, filled.gpus_per_run) == expected


def test_resources_beyond_the_cluster_are_refused() -> None:
    spec = SweepSpec("s", ("toy-reach",), (0,))
    with pytest.raises(ValueError, match="more GPUs than the Ray cluster has"):
        sweep_runner.resolve_resources(spec, None, 1.0, {"CPU": 2})
    with pytest.raises(ValueError, match="more CPUs"):
        sweep_runner.resolve_resources(spec, 4.0, None, {"CPU": 2})


def test_a_trainer_outside_the_main_thread_installs_no_signal_handlers() -> None:
    import threading

    from planet_torch.train import stop_requests

    seen: list[object] = []

    def worker() -> None:
        try:
            with stop_requests() as flag:
                seen.append(flag[0])
        except ValueError as error:  # "signal only works in main thread"
            seen.append(error)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False] and signal.getsignal(signal.SIGTERM) is before
