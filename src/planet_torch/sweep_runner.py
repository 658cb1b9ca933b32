"""Run a sweep on Ray Tune: one Tune trial per run, retried and resumed from its run folder.

Ray Tune keeps track of the trials: it places each on a worker with the CPUs and GPUs it
asks for, retries a trial whose worker died (up to `max_failures` times) and restores the
whole sweep after the driver stopped (`Tuner.restore`). The trial itself (`run_trial`) keeps
no state in Ray: it finds its own run folder by name and, if the folder holds a config,
continues it exactly as `planet train --resume` does (its checkpoint, every finished
episode, its counters). A finished run is only read, never written again.

A failure that a retry cannot fix (a ValueError such as a flag the task rejects, or a loss
that is no longer finite) ends the trial normally, with its one-line error in the run
folder (`sweep.ERROR_NAME`) and in the result it reports: Tune then does not retry it, and
the other trials go on. Any other exception, or a dead worker, is a Tune error and retried.

Inside a worker the trainer runs in a thread that is not the main one, so it installs no
signal handlers; it draws no progress bar, and its printed output goes to `train.log` in
its run folder. The driver prints one live table of the trials instead (`TrialTable`).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from planet_torch import sweep
from planet_torch.logger import Logger
from planet_torch.runs import CONFIG_NAME, load_config, read_metrics
from planet_torch.sweep import SweepSpec, Trial

LOG_NAME = "train.log"
"""A trial's printed output, in its run folder."""
EXPERIMENT_NAME = "trials"
"""Tune's experiment folder under `<sweep>/ray/`."""

def trial_of(config: dict[str, Any], spec: SweepSpec) -> Trial:
    """The sweep trial of a Tune trial's config."""
    return Trial(config["task"], config["seed"], tuple((k, config[k]) for k in spec.grid))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _final_metrics(run_dir: Path) -> dict[str, Any]:
    """What a finished run reports when a resumed sweep meets it again."""
    records = read_metrics(run_dir)
    tests = [r["test/return"] for r in records if "test/return" in r]
    episodes = max((r.get("train/episodes", 0) for r in records), default=0)
    return {"episode": int(episodes), "eta_s": 0.0,
            **({"test_return": tests[-1]} if tests else {})}


class ReportingLogger(Logger):
    """The run's Logger, which also reports each episode and test phase to Tune:
    episode, environment steps, train return, latest test return and an ETA."""

    def __init__(self, run_dir: Path, episodes: int) -> None:
        super().__init__(run_dir)
        self.budget = episodes
        self.started = time.time()
        self.first: int | None = None
        self.latest: dict[str, Any] = {}

    def scalars(self, env_steps: int, values: Any) -> None:
        super().scalars(env_steps, values)
        if "train/episodes" in values:
            episode = int(values["train/episodes"])
            self.first = episode - 1 if self.first is None else self.first
            per_episode = (time.time() - self.started) / max(episode - self.first, 1)
            self.latest.update(episode=episode, env_steps=int(env_steps),
                               train_return=float(values["train/return"]),
                               eta_s=per_episode * max(self.budget - episode, 0))
        elif "test/return" in values:
            self.latest["test_return"] = float(values["test/return"])
        else:
            return
        tune.report(dict(self.latest))


def run_trial(config: dict[str, Any], sweep_dir: str) -> None:
    """Tune's trainable: train (or continue, or only read) one trial's run folder."""
    import torch

    from planet_torch.train import Trainer, TrainingDiverged, run_finished

    root = Path(sweep_dir)
    spec = sweep.load_spec(root)
    trial = trial_of(config, spec)
    run_dir = root / trial.name
    run_dir.mkdir(exist_ok=True)
    if run_finished(run_dir):  # a resumed sweep meets a finished run: read, never write
        tune.report(_final_metrics(run_dir))
        return
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, math.floor(cpus)))
    with (run_dir / LOG_NAME).open("a") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            resume = (run_dir / CONFIG_NAME).is_file()
            cfg = load_config(run_dir) if resume else spec.run_config(trial, root)
            logger = ReportingLogger(run_dir, cfg.train.episodes)
            Trainer(cfg, run_dir, resume, logger=logger).run(progress=False)
        except (ValueError, TrainingDiverged) as error:  # a retry would fail the same way
            message = _one_line(error)
            print(f"trial failed: {message}", flush=True)
            (run_dir / sweep.ERROR_NAME).write_text(message + "\n")
            tune.report({"error": message})


@dataclass
class Row:
    """The table's line of one trial."""

    trial: Trial
    budget: int
    """The run's episode budget."""
    state: str = "PENDING"
    episode: int = 0
    test_return: float | None = None
    eta_s: float | None = None
    error: str | None = None
    failures: int = 0


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes}m{int(seconds % 60):02d}s"


@dataclass
class TrialTable:
    """The live table of trials: task, seed, grid point, episode, test return, ETA, state.

    Fed by Tune's callback hooks (`TableCallback`); printed when something changed, at
    most every `interval` seconds, and once at the end."""

    spec: SweepSpec
    interval: float = 10.0
    rows: dict[str, Row] = field(default_factory=dict)
    printed: float = 0.0
    changed: bool = True

    def __post_init__(self) -> None:
        self.rows = {t.name: Row(t, self.spec.run_config(t, Path(".")).train.episodes)
                     for t in self.spec.trials()}

    def row(self, config: dict[str, Any]) -> Row:
        """The row of the Tune trial with this config."""
        return self.rows[trial_of(config, self.spec).name]

    def update(self, config: dict[str, Any], **values: Any) -> None:
        row = self.row(config)
        for key, value in values.items():
            setattr(row, key, value)
        self.changed = True

    def lines(self) -> list[str]:
        keys = list(self.spec.grid)
        cells = [["task", "seed", *keys, "episode", "test return", "ETA", "state"]]
        for row in self.rows.values():
            cells.append([row.trial.task, str(row.trial.seed),
                          *(str(v) for _, v in row.trial.point), f"{row.episode}/{row.budget}",
                          "–" if row.test_return is None else f"{row.test_return:.1f}",
                          _eta(row.eta_s if row.state == "RUNNING" else None),
                          row.state + (f" ({row.failures} retried)" if row.failures else "")])
        widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in cells]
        lines += [f"  {row.trial.name}: {row.error}" for row in self.rows.values()
                  if row.error]
        return lines

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or (self.changed and now - self.printed >= self.interval):
            counts: dict[str, int] = {}
            for row in self.rows.values():
                counts[row.state] = counts.get(row.state, 0) + 1
            summary = ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
            print(f"\n[{time.strftime('%H:%M:%S')}] {len(self.rows)} trials: {summary}")
            print("\n".join(self.lines()), flush=True)
            self.printed, self.changed = now, False


class TableCallback(tune.Callback):
    """Feeds Tune's trial events into a `TrialTable` and prints it."""

    def __init__(self, table: TrialTable) -> None:
        self.table = table

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.table.update(trial.config, state="RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "error" in result:
            self.table.update(trial.config, state="FAILED", error=result["error"])
            return
        values = {k: result[k] for k in ("episode", "test_return", "eta_s") if k in result}
        self.table.update(trial.config, state="RUNNING", **values)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.table.update(trial.config, state="ERROR", failures=trial.num_failures,
                          error=_error_line(trial))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.table.update(trial.config, state="RETRYING", failures=trial.num_failures,
                          error=None)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.table.row(trial.config).state != "FAILED":
            self.table.update(trial.config, state="DONE", error=None)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.table.show()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.table.show(force=True)


def _error_line(trial: Any) -> str:
    """The last line of a Tune trial's error (a dead worker, an exception)."""
    text = getattr(trial, "error_message", None) or ""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:200] if lines else "the trial's worker failed"


def check_address(address: str) -> None:
    """Raise ValueError in one line if HOST:PORT does not answer (`auto` is left to Ray)."""
    if address == "auto":
        return
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as error:
        raise ValueError(f"cannot reach a Ray cluster at {address} ({error.strerror or error}); "
                         "start one with `ray start --head` there, or leave out --address "
                         "to run on this machine") from None


def start_ray(address: str | None) -> None:
    """Join the cluster at `address`, or start a local Ray instance sized to this machine."""
    quiet = {"log_to_driver": False, "logging_level": "ERROR", "include_dashboard": False}
    if address is None:
        try:
            ray.init(**quiet)
        except Exception as error:  # Ray raises a bare Exception when its processes are slow
            raise RuntimeError(f"the local Ray instance did not start: {_one_line(error)}; "
                               "try again on a less loaded machine") from None
        return
    check_address(address)
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as error:
        raise ValueError(f"cannot join a Ray cluster at {address}: {_one_line(error)}; "
                         "start one with `ray start --head`") from None


def resolve_resources(spec: SweepSpec, cpus_per_run: float | None, gpus_per_run: float | None,
                      resources: dict[str, float]) -> SweepSpec:
    """The spec with CPUs and GPUs per run filled in for the cluster's `resources`.

    Defaults: one GPU per run where GPUs exist. CPUs: the cluster's CPUs shared evenly among
    the runs that can run at once (at most one per CPU, and per GPU share), so runs never
    oversubscribe the cores; a trial's torch uses as many threads as it has CPUs."""
    cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
    if gpus_per_run is None:
        gpus_per_run = 1.0 if gpus >= 1 else 0.0
    if gpus_per_run > gpus:
        raise ValueError(f"--gpus-per-run {gpus_per_run:g} asks for more GPUs than the Ray "
                         f"cluster has ({gpus:g}); use --gpus-per-run 0 to run on CPUs")
    if cpus_per_run is None:
        trials = len(spec.trials())
        at_once = min(trials, int(cpus), int(gpus // gpus_per_run) if gpus_per_run else trials)
        cpus_per_run = float(max(1, int(cpus // max(at_once, 1))))
    if cpus_per_run > cpus:
        raise ValueError(f"--cpus-per-run {cpus_per_run:g} asks for more CPUs than the Ray "
                         f"cluster has ({cpus:g})")
    return replace(spec, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)


def run(spec: SweepSpec, sweep_dir: Path, resume: bool = False) -> None:
    """Run (or, with `resume`, continue) the sweep in `sweep_dir` on the Ray already started.

    Tune's restore brings back the trials and this table; a sweep whose Tune state was never
    written (stopped within its first seconds) starts its trials again, which then continue
    their run folders."""
    # Tune writes its own TensorBoard and CSV files per trial unless told not to; the run
    # folders hold ours, and `tensorboard --logdir SWEEP_DIR` should show each run once.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Tune's own tables off (verbose=0): ours is printed
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep_dir=str(sweep_dir)),
        {"cpu": spec.cpus_per_run, "gpu": spec.gpus_per_run})
    experiment = Path(sweep_dir) / sweep.RAY_DIR / EXPERIMENT_NAME
    if resume and tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        param_space = {"task": tune.grid_search(list(spec.tasks)),
                       "seed": tune.grid_search(list(spec.seeds)),
                       **{k: tune.grid_search(list(v)) for k, v in spec.grid.items()}}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=EXPERIMENT_NAME, storage_path=str(Path(sweep_dir) / sweep.RAY_DIR),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                verbose=0, callbacks=[TableCallback(TrialTable(spec)), JsonLoggerCallback()]))
    tuner.fit()


def _trial_name(trial: Any) -> str:
    """Tune's name and folder of a trial: its run folder's name."""
    config = trial.config
    grid = [k for k in config if k not in ("task", "seed")]
    return Trial(config["task"], config["seed"], tuple((k, config[k]) for k in grid)).name


def cluster_resources() -> dict[str, float]:
    """CPUs and GPUs of the Ray cluster this process is connected to."""
    return {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}


def stop_ray() -> None:
    """Disconnect from Ray (and stop the local instance this process started)."""
    ray.shutdown()


def default_name(spec: SweepSpec) -> str:
    """A sweep's name when --name is not given: its task, or `N-tasks`."""
    name = spec.tasks[0] if len(spec.tasks) == 1 else f"{len(spec.tasks)}-tasks"
    return name.replace("/", "_").replace(":", "_")


def unfinished(spec: SweepSpec, sweep_dir: Path) -> list[Trial]:
    """Trials whose run has budget left and that did not fail for good."""
    from planet_torch.train import run_finished

    return [trial for trial in spec.trials()
            if not run_finished(Path(sweep_dir) / trial.name)
            and sweep.read_error(Path(sweep_dir) / trial.name) is None]
