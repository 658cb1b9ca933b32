"""`planet bench`: what PlaNet's costly pieces take on this machine, and peak memory.

    update   one training update (`world_model.Updater`: encoder on all B*L images, the
             RSSM loop over L, decoder, negative ELBO, backward, clipping, Adam) per (B, L)
    plan     one CEM call (`CEMPlanner.plan`) for N agents planned together
    env      one agent step of a task with rendering (R environment steps, one 64x64
             frame), with random actions; reported as environment steps per second
    replay   one `Replay.sample(B, L)` from random uint8 episodes
    episode  (with `episode`) one training episode of the task: C updates at the first
             (B, L), then one planned episode with rendering, in a short `Trainer` run

Each is called `warmup` times (their times kept apart: the first includes compiling or
graph capture), then timed; the median is the figure to quote (min and max show the
spread), and the process CPU time of each timed call is kept too. On CUDA the device is
synchronised before each clock reading, so a time covers the queued GPU work. Memory is
the peak resident set of the process so far on CPU, and the peak of memory allocated by
torch during the measurement on CUDA.
Model and planner sizes are the paper's (`--quick`: the debug preset's tiny ones). The
update and the planner run at the chosen precision, compiled with `compile`; on CUDA the
planner replays a captured CUDA graph, as in training.

The scripts in benchmarks/ time through the same `measure` and build the same pieces
(`make_model`, `make_updater`, `plan_step`, `random_replay`), and print `RESULT` lines
(`result_line`, `print_results`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from planet_torch import __version__
from planet_torch.acceleration import configure_backends, resolve_device
from planet_torch.assembly import make_planner, make_world_model
from planet_torch.config import (
    PRESETS,
    Config,
    EnvConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    PlannerConfig,
    TrainConfig,
)
from planet_torch.envs import make_env
from planet_torch.latent import LatentState
from planet_torch.replay import Episode, Replay
from planet_torch.runs import new_run_dir, read_metrics
from planet_torch.train import Trainer
from planet_torch.world_model import TorchBatch, Updater, WorldModel, make_optimizer

MIB = 2**20


@dataclass(frozen=True)
class BenchSettings:
    """What to measure and at which sizes."""

    device: torch.device
    """Where the model runs."""
    sizes: tuple[tuple[int, int], ...] = ((50, 50), (16, 16))
    """(B, L) of each timed update and replay sample (paper: B = 50, L = 50)."""
    agents: tuple[int, ...] = (1, 10)
    """Numbers of agents N planned together, one timing each."""
    repeats: int = 3
    """Timed calls of each update and planning call (`for_device`: 10 on CUDA)."""
    warmup: int = 1
    """Untimed calls before the timed ones."""
    task: str = "cartpole-swingup"
    """Task whose environment steps are timed."""
    env_steps: int = 100
    """Timed agent steps of the task."""
    replay_repeats: int = 50
    """Timed replay samples (each takes milliseconds)."""
    replay_episodes: int = 10
    """Random episodes in the sampled replay ..."""
    replay_episode_steps: int = 500
    """... of this many agent steps each."""
    action_size: int = 6
    """A of the model in the update and planning timings (cheetah-run and walker-walk: 6)."""
    precision: str = "fp32"
    """Precision of the update and the planner (`fp32`, or `bf16` autocast, see acceleration)."""
    compile: bool = False
    """torch.compile the update's forward and backward and the planner's rollout."""
    episode: bool = False
    """Also time whole training episodes of `task` (paper sizes: minutes each on a CPU)."""
    collect_interval: int = 100
    """Updates C per training episode in the episode timing (the paper's 100)."""
    episode_steps: int | None = None
    """Environment steps per episode in the episode timing (None: the task's full 1000)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """World model sizes."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """CEM sizes."""

    @classmethod
    def quick(cls, device: torch.device) -> BenchSettings:
        """Tiny sizes (the debug preset's model and planner): every timing in seconds."""
        debug: Config = PRESETS["debug"]()
        return cls(device, sizes=((4, 8), (2, 4)), agents=(1, 10), repeats=2, env_steps=10,
                   replay_repeats=5, replay_episodes=3, replay_episode_steps=20,
                   collect_interval=debug.train.collect_interval,
                   episode_steps=debug.env.episode_steps, model=debug.model,
                   planner=debug.planner)

    @classmethod
    def for_device(cls, device: torch.device, quick: bool = False, repeats: int | None = None
                   ) -> BenchSettings:
        """`planet bench`'s starting point: the paper's sizes (quick: the tiny ones) with
        `repeats` timed calls; None takes 3 on a CPU, CUDA_REPEATS on CUDA, 2 with quick."""
        s = cls.quick(device) if quick else cls(device)
        if repeats is None and not quick and device.type == "cuda":
            repeats = CUDA_REPEATS
        return s if repeats is None else dataclasses.replace(s, repeats=repeats)


CUDA_REPEATS = 10
"""Default timed calls on CUDA, where a call takes milliseconds."""


@dataclass
class Measurement:
    """Timings of one benchmark at one size."""

    name: str
    """update, plan, env or replay."""
    size: str
    """The sizes it ran at, e.g. `B=50 L=50`."""
    seconds: list[float]
    """Each timed call's wall-clock seconds."""
    peak_memory_mib: float
    """Peak resident memory of the process (CPU) or peak torch allocation (CUDA)."""
    work: float = 0.0
    """Units of work per call for a rate (environment steps for `env`), 0 for none."""
    unit: str = ""
    """Name of those units per second, e.g. `env steps/s`."""
    cpu_seconds: list[float] = field(default_factory=list)
    """Each timed call's process CPU seconds (all threads), a check on wall times taken
    while other processes share the cores."""
    warmup_seconds: list[float] = field(default_factory=list)
    """Each warm-up call's wall-clock seconds (the first includes compiling, graph capture)."""

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        """Mean seconds per call."""
        return statistics.mean(self.seconds)

    @property
    def cpu_median(self) -> float:
        """Median process CPU seconds per call."""
        return statistics.median(self.cpu_seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus median, min, max and the rate (if any)."""
        rate = self.work / self.median if self.work else None
        return {**asdict(self), "median_s": self.median, "min_s": min(self.seconds),
                "max_s": max(self.seconds), "rate": rate}


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that a clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory of this process: allocated GPU memory on CUDA, else resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / MIB
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


class Call(NamedTuple):
    """One call of a measured function, as `measure` hands it to `on_call`."""

    index: int
    """0 for the first call, warm-up calls included."""
    warmup: bool
    """Whether it was a warm-up call (not among the timed ones)."""
    seconds: float
    """Wall-clock seconds."""
    cpu_seconds: float
    """Process CPU seconds, all threads."""
    result: Any
    """What the function returned."""


def measure(name: str, size: str, fn: Callable[[], Any], repeats: int, warmup: int,
            device: torch.device, work: float = 0.0, unit: str = "",
            on_call: Callable[[Call], None] | None = None) -> Measurement:
    """Call fn `warmup` times, then `repeats` timed times; clocks read after a device sync.

    Warm-up calls are timed too, apart (`Measurement.warmup_seconds`). `on_call`, if given,
    sees each call after its clocks are read (to print progress or keep a result).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    warmup_seconds, seconds, cpu_seconds = [], [], []
    for index in range(warmup + repeats):
        synchronize(device)
        cpu_start, start = time.process_time(), time.perf_counter()  # wall clock innermost
        result = fn()
        synchronize(device)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if index < warmup:
            warmup_seconds.append(elapsed)
        else:
            seconds.append(elapsed)
            cpu_seconds.append(cpu)
        if on_call is not None:
            on_call(Call(index, index < warmup, elapsed, cpu, result))
    return Measurement(name, size, seconds, peak_memory_mib(device), work, unit, cpu_seconds,
                       warmup_seconds)


def random_batch(batch_size: int, length: int, action_size: int, device: torch.device,
                 generator: torch.Generator) -> TorchBatch:
    """uint8 frames (B, L, 64, 64, 3), actions in [-1, 1] (B, L, A), rewards (B, L), drawn
    on the CPU from `generator` (a CPU generator) and moved to the device."""
    shape = (batch_size, length)
    obs = torch.randint(0, 256, (*shape, 64, 64, 3), dtype=torch.uint8, generator=generator)
    action = torch.rand((*shape, action_size), generator=generator) * 2 - 1
    reward = torch.rand(shape, generator=generator)
    return TorchBatch(obs.to(device), action.to(device), reward.to(device))


def planning_states(model: WorldModel, num_agents: int, generator: torch.Generator
                    ) -> LatentState:
    """N distinct states: three imagined steps from the zero state under random actions,
    drawn on the CPU from `generator` (a CPU generator)."""
    device = model.device
    state = model.dynamics.initial_state(num_agents, device)
    with torch.inference_mode():
        for _ in range(3):
            action = torch.rand(num_agents, model.action_size, generator=generator) * 2 - 1
            noise = torch.randn(num_agents, model.dynamics.state_size, generator=generator)
            state = model.dynamics.img_step(state, action.to(device), noise.to(device))
    return state


def _variant(s: BenchSettings) -> str:
    """Precision, and whether compiled, for a size label."""
    return s.precision + (" compiled" if s.compile else "")


def settings_config(s: BenchSettings) -> Config:
    """The run config whose model, planner, precision and compile setting s times, for the
    `assembly` factories."""
    return Config(device=str(s.device), precision=s.precision, compile=s.compile,
                  model=s.model, planner=s.planner)


def make_model(s: BenchSettings, seed: int = 0) -> WorldModel:
    """A fresh world model of s's sizes on s's device, its weights drawn from `seed` (the
    global random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_world_model(settings_config(s), s.action_size, s.device)


def make_updater(s: BenchSettings, seed: int = 0) -> Updater:
    """The `Updater` training builds, at s's precision and compile setting, on a fresh
    `make_model(s, seed)` with the default optimiser and objective."""
    model = make_model(s, seed)
    optim = OptimConfig()
    return Updater(model, make_optimizer(model, optim), ObjectiveConfig(), optim.grad_clip,
                   s.precision, s.compile)


def bench_update(s: BenchSettings, batch_size: int, length: int, seed: int = 0,
                 on_call: Callable[[Call], None] | None = None) -> Measurement:
    """One training update of the world model on a random (B, L) batch, as training runs it
    (an `Updater` kept across calls, so a compiled step compiles once, during warm-up).
    Each call returns the update's metrics (device tensors), for `on_call`."""
    generator = torch.Generator(s.device).manual_seed(seed)
    updater = make_updater(s, seed)
    batch = random_batch(batch_size, length, s.action_size, s.device,
                         torch.Generator().manual_seed(seed))
    return measure("update", f"B={batch_size} L={length} {_variant(s)}",
                   lambda: updater(batch, generator), s.repeats, s.warmup, s.device,
                   on_call=on_call)


def plan_step(s: BenchSettings, num_agents: int, seed: int = 0) -> Callable[[], torch.Tensor]:
    """One CEM planning call for N agents, each from its own (random) state, with a fresh
    `make_model(s, seed)`; the call returns the actions (N, A)."""
    generator = torch.Generator(s.device).manual_seed(seed)
    model = make_model(s, seed).eval()
    planner = make_planner(settings_config(s), -torch.ones(s.action_size),
                           torch.ones(s.action_size))
    state = planning_states(model, num_agents, torch.Generator().manual_seed(seed))
    return lambda: planner.plan(model, state, generator=generator)


def bench_plan(s: BenchSettings, num_agents: int, seed: int = 0,
               on_call: Callable[[Call], None] | None = None) -> Measurement:
    """One CEM planning call for N agents, each from its own (random) state."""
    c = s.planner
    return measure("plan", f"N={num_agents} J={c.candidates} H={c.horizon} I={c.iterations} "
                           f"{_variant(s)}",
                   plan_step(s, num_agents, seed), s.repeats, s.warmup, s.device,
                   on_call=on_call)


def bench_env(s: BenchSettings) -> Measurement:
    """Agent steps of the task with random actions, each rendering one 64x64 frame."""
    env = make_env(s.task, seed=0)
    env.reset(seed=0)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    repeat = env.action_repeat  # type: ignore[attr-defined]
    try:
        return measure("env", f"{s.task} R={repeat}", step, s.env_steps, s.warmup,
                       torch.device("cpu"), work=repeat, unit="env steps/s")
    finally:
        env.close()


def random_replay(episodes: int, steps: int, action_size: int, seed: int = 0,
                  size: int = 64) -> Replay:
    """A replay holding `episodes` random episodes of `steps` agent steps (steps + 1 rows,
    the first a reset row of zero action and reward): uint8 size x size x 3 frames, actions
    in [-1, 1], rewards in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows = steps + 1
    replay = Replay(capacity=episodes * steps, seed=seed)
    for _ in range(episodes):
        obs = rng.integers(0, 256, (rows, size, size, 3), dtype=np.uint8)
        action = rng.uniform(-1, 1, (rows, action_size)).astype(np.float32)
        reward = rng.uniform(0, 1, rows).astype(np.float32)
        action[0], reward[0] = 0, 0
        replay.add(Episode(obs, action, reward))
    return replay


def bench_replay(s: BenchSettings, batch_size: int, length: int) -> Measurement:
    """`Replay.sample(B, L)` from random uint8 episodes."""
    rows = s.replay_episode_steps + 1
    replay = random_replay(s.replay_episodes, s.replay_episode_steps, s.action_size)
    return measure("replay",
                   f"B={batch_size} L={length} of {s.replay_episodes}x{rows} rows",
                   lambda: replay.sample(batch_size, length), s.replay_repeats, s.warmup,
                   torch.device("cpu"))


class EpisodeTime(NamedTuple):
    """Wall-clock seconds of one training episode, in its two parts."""

    updates: float
    """The C updates before the episode."""
    collect: float
    """Playing the episode: filtering, planning, environment steps and rendering."""


def training_episode_times(cfg: Config) -> list[EpisodeTime]:
    """Run `Trainer` on cfg in a temporary folder; the times of its trained episodes.

    Read from the run's metrics: interval k's updates took C / `time/updates_per_second`,
    and the episode collected after them `time/episode_seconds`. cfg should switch tests
    off (`train.test_every = 0`), so that no test phase falls inside the times.
    """
    with tempfile.TemporaryDirectory(prefix="planet-bench-") as logdir:
        run_dir = new_run_dir(Path(logdir), cfg.task, cfg.seed)
        Trainer(cfg, run_dir).run()
        records = read_metrics(run_dir)
    rates = [r["time/updates_per_second"] for r in records if "time/updates_per_second" in r]
    collected = [r["time/episode_seconds"] for r in records if "time/episode_seconds" in r]
    trained = collected[cfg.train.seed_episodes:]
    return [EpisodeTime(cfg.train.collect_interval / rate, seconds)
            for rate, seconds in zip(rates, trained, strict=True)]


def episode_config(s: BenchSettings) -> Config:
    """The short run behind the episode timing: 1 random seed episode, then `warmup` and
    `repeats` trained ones, at the first (B, L), with no tests and no periodic checkpoints."""
    batch_size, length = s.sizes[0]
    episodes = 1 + s.warmup + s.repeats
    return Config(
        task=s.task, device=str(s.device), precision=s.precision, compile=s.compile,
        env=EnvConfig(episode_steps=s.episode_steps), model=s.model, planner=s.planner,
        train=TrainConfig(seed_episodes=1, collect_interval=s.collect_interval,
                          batch_size=batch_size, chunk_length=length, episodes=episodes,
                          test_every=0, checkpoint_every=episodes))


def bench_episode(s: BenchSettings) -> Measurement:
    """Training episodes of the task: C updates plus one planned episode with rendering.

    The warm-up episodes (compiling, graph capture) are run but not reported.
    """
    cfg = episode_config(s)
    if s.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(s.device)
    times = training_episode_times(cfg)[s.warmup:]
    t = cfg.train
    return Measurement("episode", f"{s.task} C={t.collect_interval} B={t.batch_size} "
                                  f"L={t.chunk_length} {_variant(s)}",
                       [sum(time) for time in times], peak_memory_mib(s.device))


def run(s: BenchSettings) -> Iterator[Measurement]:
    """Every measurement in turn: updates, planning calls, environment, replay, episodes.

    The device's backends are set up as for training first (on CUDA: TF32 matrix products
    and cuDNN autotuning, `acceleration.configure_backends`).
    """
    configure_backends(s.device)
    for batch_size, length in s.sizes:
        yield bench_update(s, batch_size, length)
    for num_agents in s.agents:
        yield bench_plan(s, num_agents)
    yield bench_env(s)
    for batch_size, length in s.sizes:
        yield bench_replay(s, batch_size, length)
    if s.episode:
        yield bench_episode(s)


def load_average() -> float | None:
    """Runnable processes averaged over the last minute (None where the OS has no such)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine(device: torch.device) -> dict[str, Any]:
    """CPU model and cores, memory, load, accelerator, and software versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, Any] = {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                            1) if hasattr(os, "sysconf") else None,
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "planet_torch": __version__, "device": str(device),
        # Other work on the machine slows every timing: the load says how busy it was
        # when the benchmark started.
        "load_average_1m": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def result_line(benchmark: str, **fields: Any) -> str:
    """`RESULT benchmark key=value ...`: one result on one line, easy to grep and to append
    to a file; values are written as given (format numbers before)."""
    return " ".join(["RESULT", benchmark, *(f"{key}={value}" for key, value in fields.items())])


def print_results(lines: Sequence[str], output: Path | None = None) -> None:
    """Print result lines and, if `output` is given, append them to that file."""
    for line in lines:
        print(line, flush=True)
    if output is not None:
        with output.open("a") as file:
            file.write("".join(line + "\n" for line in lines))


def _duration(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds >= 1 else f"{seconds * 1e3:.2f} ms"


TABLE_HEADER = (f"{'benchmark':<8} {'size':<34} {'median':>10} {'min':>10} {'max':>10} "
                f"{'rate':>22} {'peak MiB':>9}")
"""Column titles of `table_row`."""


def table_row(m: Measurement) -> str:
    """One measurement as a row under TABLE_HEADER."""
    rate = f"{m.work / m.median:,.0f} {m.unit}" if m.work else ""
    return (f"{m.name:<8} {m.size:<34} {_duration(m.median):>10} "
            f"{_duration(min(m.seconds)):>10} {_duration(max(m.seconds)):>10} {rate:>22} "
            f"{m.peak_memory_mib:>9.0f}")


def source_commit() -> str:
    """The commit of the checkout this package runs from, with `+dirty` when tracked files
    have uncommitted changes; `unknown` for an installed copy outside a git checkout."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  check=False, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def report(s: BenchSettings, measurements: Sequence[Measurement], command: str,
           machine_info: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a benchmark run: when, where, how, and the results.

    `machine_info` is `machine()` read before the timings, so that its load average is the
    other work's; the load at the end (the benchmark's own threads included) is added.
    """
    settings = asdict(s)
    settings["device"] = str(s.device)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "commit": source_commit(),
        "machine": machine_info,
        "load_average_1m_at_end": load_average(),
        "settings": settings,
        "results": [m.to_dict() for m in measurements],
        "peak_memory_mib": max(m.peak_memory_mib for m in measurements),
    }


class RunEstimate(NamedTuple):
    """What a whole training run of a config should take on this machine, from one quick
    measurement of each costly piece."""

    seconds: float
    """Updates, planning calls and environment steps of the whole run, summed."""
    update_s: float
    """One update at the config's (B, L), scaled from a batch of at most ESTIMATE_CHUNKS."""
    plan_s: float
    """One planning call for one agent."""
    updates: int
    plans: int


ESTIMATE_CHUNKS = 5
"""Chunks timed for the estimate; an update's cost grows in proportion to B."""


def estimate_run(cfg: Config, action_size: int, agent_steps: int, env_step_s: float = 0.0
                 ) -> RunEstimate:
    """Estimate a run's duration: one update of a fresh model on a small batch (scaled to B)
    and one planning call, each timed after one warm-up call, times the run's counts; test
    phases plan for every test episode at once, counted as one call per test episode. The
    global random state is left as it was.

    updates = (episodes - seed episodes) x C; plans = (episodes - seed) x T + test phases x
    test episodes x T, with T agent steps per episode.
    """
    device = resolve_device(cfg.device)
    t = cfg.train
    chunks = min(t.batch_size, ESTIMATE_CHUNKS)
    with torch.random.fork_rng(devices=[]):
        model = make_world_model(cfg, action_size, device)
        updater = Updater(model, make_optimizer(model, cfg.optim), cfg.objective,
                          cfg.optim.grad_clip, cfg.precision, False)
        batch = random_batch(chunks, t.chunk_length, action_size, device,
                             torch.Generator().manual_seed(0))
        generator = torch.Generator(device).manual_seed(0)
        update_s = measure("update", "", lambda: updater(batch, generator), 1, 1,
                           device).median * t.batch_size / chunks
        planner = make_planner(dataclasses.replace(cfg, compile=False), -torch.ones(action_size),
                               torch.ones(action_size))
        state = planning_states(model.eval(), 1, torch.Generator().manual_seed(0))
        plan_s = measure("plan", "", lambda: planner.plan(model, state, generator=generator),
                         1, 1, device).median
    trained = max(t.episodes - t.seed_episodes, 0)
    tests = t.episodes // t.test_every if t.test_every else 0
    updates = trained * t.collect_interval
    plans = (trained + tests * t.test_episodes) * agent_steps
    env_steps = (t.episodes + tests * t.test_episodes) * agent_steps
    seconds = updates * update_s + plans * plan_s + env_steps * env_step_s
    return RunEstimate(seconds, update_s, plan_s, updates, plans)
