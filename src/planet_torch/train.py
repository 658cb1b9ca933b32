"""The training loop of paper algorithm 1, with run folders, checkpoints and resuming.

    collect S seed episodes with random actions
    repeat until the budget (episodes or environment steps) is spent:
        C times: sample B chunks of length L, one Adam step on the negative ELBO
        collect one episode with the planner plus Gaussian exploration noise
        every `test_every` episodes: noise-free test episodes, all environments together

With several tasks (`--task a,b` or `--task paper`) one model and planner act in all of
them: episode k is played in task k mod n (the seed episodes too), actions are padded to
the largest action size of the tasks (`envs.PaddedActions`), and a test phase plays
`test_episodes` of every task together, logged per task as `test/<task>/return`, their
mean over tasks as `test/return`.

The run folder's layout and the episode seeds are `runs`'s; the parts are built by
`assembly`. Every finished episode is on disk the moment it ends. A checkpoint is written
every `checkpoint_every` episodes and when the run is stopped (Ctrl-C, SIGTERM); `--resume`
rebuilds the replay from the episode files and continues the counters (an unreadable
episode file stops it before anything is written: it would be counted but not replayed),
and makes only the updates that a stop left owed in an interval, not a whole one again;
a test phase that a stop cut short is dropped and played again after the resume.

Speed (`--precision`, `--compile`, see `acceleration`): the update and the planner's rollout
run under the run's precision and, with `compile`, through torch.compile. While update k
runs, a worker thread samples batch k + 1 (`BatchLoader`). Nothing in an interval of C
updates waits for the device: the metrics stay device tensors until the interval ends and
are then read once.
"""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from planet_torch import __version__, checkpoint, runs
from planet_torch import config as config_lib
from planet_torch.acceleration import configure_backends, resolve_device
from planet_torch.agent import Planner
from planet_torch.assembly import check_config, make_agent, make_task_envs, make_world_model
from planet_torch.config import Config
from planet_torch.envs import PixelEnv
from planet_torch.evaluate import Interrupted, Policy, episode_return, random_policy, run_episodes
from planet_torch.logger import Logger
from planet_torch.predict import open_loop
from planet_torch.replay import Batch, Episode, Replay, episode_files, parse_episode_name
from planet_torch.world_model import TorchBatch, Updater, make_optimizer


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Counters:
    """Progress of a run; environment steps are agent steps times the action repeat."""

    episodes: int = 0
    env_steps: int = 0
    updates: int = 0
    test_phases: int = 0


def budget_left(train: config_lib.TrainConfig, counters: Counters) -> bool:
    """Whether a run with these counters has episodes and environment steps left to train."""
    steps_left = train.env_steps is None or counters.env_steps < train.env_steps
    return counters.episodes < train.episodes and steps_left


def phase_due_after(train: config_lib.TrainConfig, episode: int) -> bool:
    """Whether a test phase follows episode k: a planned one (k > S) with k a multiple of
    `test_every` (0: never)."""
    return bool(train.test_every) and episode > train.seed_episodes \
        and episode % train.test_every == 0


def owes_test_phase(train: config_lib.TrainConfig, counters: Counters) -> bool:
    """Whether the test phase after the last episode was stopped before it ended.

    Planned episodes k = S+1 .. E are each followed by a test phase when k is a multiple of
    `test_every`, so E // test_every - S // test_every phases are due; the last one is owed
    when exactly it is missing (a stop or a kill during it). Counters missing more (a run
    rebuilt from its episode files) are not made to test a fresh model."""
    if not phase_due_after(train, counters.episodes):
        return False
    due = counters.episodes // train.test_every - train.seed_episodes // train.test_every
    return counters.test_phases == due - 1


def finished(train: config_lib.TrainConfig, counters: Counters) -> bool:
    """Whether counters have spent the budget of `train` and owe no test phase.

    A run that went through writes its checkpoint last, after the final test phase; one
    stopped during that phase has a checkpoint with the budget spent and the phase owed
    (`owes_test_phase`), so it is not finished."""
    return not budget_left(train, counters) and not owes_test_phase(train, counters)


def run_finished(run_dir: Path) -> bool:
    """Whether a run folder's latest checkpoint is `finished` by the config of that folder.
    Reads only."""
    if not (Path(run_dir) / runs.CHECKPOINT_NAME).is_file():
        return False
    counters = Counters(**checkpoint.load(run_dir)["counters"])
    return finished(runs.load_config(run_dir).train, counters)


def to_device(batch: Batch, device: torch.device) -> TorchBatch:
    """A replay batch as tensors on the device: pinned and copied without blocking on CUDA.

    On CUDA the copies are queued on the current stream; the host does not wait for them.
    """
    cuda = device.type == "cuda"

    def move(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor.pin_memory().to(device, non_blocking=True) if cuda else tensor

    return TorchBatch(move(batch.obs), move(batch.action), move(batch.reward))


class BatchLoader:
    """Replay batches on the training device, each one sampled while the previous update runs.

    A one-worker thread samples batch k + 1 while the caller runs update k; on CUDA it also
    pins the batch and queues its copy on a side stream, and the caller's stream waits for
    that copy on an event, so neither the host nor the device blocks. The worker samples in
    order and never beyond the batches asked for, so the replay's random stream is exactly
    that of sampling each batch just before its update: runs stay reproducible and resumable.
    """

    def __init__(self, replay: Replay, batch_size: int, length: int,
                 device: torch.device) -> None:
        self.replay = replay
        self.batch_size = batch_size
        self.length = length
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def _load(self) -> tuple[TorchBatch, torch.cuda.Event | None]:
        """Runs in the worker: sample, then (CUDA) pin and copy on the side stream."""
        batch = self.replay.sample(self.batch_size, self.length)
        if self.stream is None:
            return to_device(batch, self.device), None
        with torch.cuda.stream(self.stream):
            moved = to_device(batch, self.device)
            copied = torch.cuda.Event()
            copied.record(self.stream)
        return moved, copied

    def _ready(self, batch: TorchBatch, copied: torch.cuda.Event | None) -> TorchBatch:
        """Make the caller's stream wait for the copy, and tell the allocator it uses it."""
        if copied is not None:
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(copied)
            for tensor in batch:
                tensor.record_stream(stream)
        return batch

    def batches(self, count: int) -> Iterator[TorchBatch]:
        """`count` batches, the next one loading while the caller uses the current one.

        Closing the iterator early (an exception in the caller) waits for the batch in flight.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay") as worker:
            pending = worker.submit(self._load)
            for k in range(count):
                loaded = pending.result()
                if k + 1 < count:
                    pending = worker.submit(self._load)
                yield self._ready(*loaded)


@contextmanager
def stop_requests() -> Iterator[list[bool]]:
    """While active, Ctrl-C or SIGTERM set a flag instead of killing the process.

    A second Ctrl-C interrupts at once (the default behaviour is restored after the first).
    Python takes signal handlers only in the main thread; elsewhere (a Ray worker's trial
    thread) nothing is installed and the flag stays False: whoever runs the thread stops it.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        tqdm.write("stopping: finishing the current step and writing a checkpoint "
                   "(Ctrl-C again to abort at once)", file=sys.stderr)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Trainer:
    """Owns the environments, model, replay and logs of one run folder.

    The parts are built from the config (`assembly`); a caller that runs many trainers in
    one process (a sweep worker, a benchmark) may hand in its own `logger` (anything with
    Logger's `scalars`, `video` and `close`) or `planner` (an `agent.Planner` for the task's
    action bounds).
    """

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, *,
                 logger: Logger | None = None, planner: Planner | None = None) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = resolve_device(cfg.device)
        configure_backends(self.device)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.tasks = config_lib.task_list(cfg.task)
        self.envs = {task: envs[0] for task, envs in make_task_envs(cfg, 1, cfg.seed).items()}
        space = next(iter(self.envs.values())).action_space
        tests = (make_task_envs(cfg, cfg.train.test_episodes, action_size=space.shape[0])
                 if cfg.train.test_every else {})
        self.test_envs = [env for envs in tests.values() for env in envs]
        self.test_tasks = [task for task, envs in tests.items() for _ in envs]
        self.model = make_world_model(cfg, space.shape[0], self.device)
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.updater = Updater(self.model, self.optimizer, cfg.objective, cfg.optim.grad_clip,
                               cfg.precision, cfg.compile)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.agent = make_agent(cfg, self.model, torch.as_tensor(space.low),
                                torch.as_tensor(space.high), self.generator, planner)
        self.planner = self.agent.planner
        self.counters = Counters()
        episodes_dir = self.run_dir / runs.EPISODES_DIR
        if resume:
            has_checkpoint = (self.run_dir / runs.CHECKPOINT_NAME).is_file()
            payload = checkpoint.load(self.run_dir) if has_checkpoint else None
            # A run stopped before its first episode ended has no episode folder yet.
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("error", "skipping unreadable episode file")
                    self.replay = (
                        Replay.load(episodes_dir, cfg.train.replay_capacity, seed=cfg.seed)
                        if episodes_dir.is_dir() else
                        Replay(episodes_dir, cfg.train.replay_capacity, seed=cfg.seed))
            except UserWarning as unreadable:  # counted by its name, but not in the replay
                reason = " ".join(str(unreadable).split()).removeprefix("skipping ").rstrip(".")
                raise ValueError(f"cannot resume {self.run_dir}: {reason}; move that file out "
                                 f"of {episodes_dir} to resume without it") from unreadable
            if payload is not None:
                self._restore(payload)
            else:
                self._count_episode_files()
                tqdm.write(f"warning: {self.run_dir} has no checkpoint; resuming from its "
                           f"{self.counters.episodes} episode files with a fresh model and "
                           "optimiser (episode and step counters from the files, updates from "
                           "0)", file=sys.stderr)
            runs.save_config(cfg, self.run_dir)  # flags given with --resume
        else:
            runs.save_config(cfg, self.run_dir)
            self.replay = Replay(episodes_dir, cfg.train.replay_capacity, seed=cfg.seed)
        self.loader = BatchLoader(self.replay, cfg.train.batch_size, cfg.train.chunk_length,
                                  self.device)
        self.logger = Logger(self.run_dir) if logger is None else logger

    # ----------------------------------------------------------------- checkpoints
    def _payload(self) -> dict[str, Any]:
        return {
            "planet_torch": __version__,
            "config": config_lib.to_dict(self.cfg),
            "action_size": self.model.action_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": vars(self.counters).copy(),
            "rng": {
                "torch": torch.get_rng_state(),
                "generator": self.generator.get_state(),
                "replay": self.replay.rng.bit_generator.state,
                "python": list(random.getstate()[1]),
            },
        }

    def save_checkpoint(self) -> None:
        """Write the latest checkpoint atomically into the run folder."""
        checkpoint.save(self.run_dir / runs.CHECKPOINT_NAME, self._payload())

    def _restore(self, payload: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as error:  # sizes differ: name the first mismatch, in one line
            detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()),
                          str(error))
            raise checkpoint.CheckpointError(
                f"the checkpoint in {self.run_dir} does not fit its {runs.CONFIG_NAME}: "
                f"{detail}") from error
        self.optimizer.load_state_dict(payload["optimizer"])
        for group in self.optimizer.param_groups:  # fused Adam is this device's choice
            group["fused"] = self.optimizer.defaults["fused"]
        self.counters = Counters(**payload["counters"])
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"])
        try:
            self.generator.set_state(rng["generator"])
        except RuntimeError:  # written by a generator of another device type (CUDA vs CPU)
            self.generator.manual_seed(
                runs.planning_seed_after_device_change(self.cfg.seed, self.counters.updates))
            tqdm.write(f"warning: the checkpoint's planning and noise random state is for "
                       f"another device than {self.device}; reseeded from the run's seed and "
                       "update count (the run continues, not bit for bit as on the old device)",
                       file=sys.stderr)
        self.replay.rng.bit_generator.state = rng["replay"]
        random.setstate((3, tuple(rng["python"]), None))
        self._count_episode_files()

    def _count_episode_files(self) -> None:
        """Count episodes finished after the checkpoint (or without one): they are on disk."""
        names = [parse_episode_name(p) for p in episode_files(self.run_dir / runs.EPISODES_DIR)]
        self.counters.episodes = max(self.counters.episodes, len(names))
        steps = sum(n.steps * self.envs[runs.task_of_episode(self.tasks, n.index)].action_repeat
                    for n in names)
        self.counters.env_steps = max(self.counters.env_steps, steps)

    # ----------------------------------------------------------------- loop
    def _budget_left(self) -> bool:
        return budget_left(self.cfg.train, self.counters)

    def _collect(self, episode: Episode, started: float, task: str) -> float:
        self.replay.add(episode)
        self.counters.episodes += 1
        self.counters.env_steps += (episode.length - 1) * self.envs[task].action_repeat
        ret = episode_return(episode)
        per_task = {f"train/{task}/return": ret} if len(self.tasks) > 1 else {}
        self.logger.scalars(self.counters.env_steps, {
            "train/return": ret, **per_task, "train/episodes": self.counters.episodes,
            "time/episode_seconds": time.time() - started})
        return ret

    def _updates_owed(self) -> int:
        """Updates still owed before the next planned episode: C, or after a stop inside an
        interval (or during the episode after it) what that interval did not yet make, so a
        stopped and resumed run makes as many updates as one that ran through. Counters
        that do not fit C intervals (C changed, or a checkpoint older than the episodes on
        disk) get a whole interval."""
        t = self.cfg.train
        planned = self.counters.episodes - t.seed_episodes
        owed = t.collect_interval * (planned + 1) - self.counters.updates
        return owed if 0 <= owed <= t.collect_interval else t.collect_interval

    def _train_interval(self, stop: list[bool]) -> None:
        count = self._updates_owed()
        if count == 0:
            return
        started = time.time()
        history: list[dict[str, torch.Tensor]] = []
        batches = self.loader.batches(count)
        try:
            for batch in batches:
                if stop[0]:
                    raise Interrupted
                history.append(self.updater(batch, self.generator))
                self.counters.updates += 1
        finally:
            batches.close()  # waits for a batch still being sampled
        # Metrics are read from the device once per interval (one copy), not once per update.
        keys = list(history[0])
        means = dict(zip(keys, torch.stack([torch.stack([h[k] for h in history]).mean()
                                            for k in keys]).tolist(), strict=True))
        if not all(math.isfinite(v) for v in means.values()):
            raise TrainingDiverged(f"loss is not finite after update {self.counters.updates} "
                                   f"({means}); the last good checkpoint is kept")
        elapsed = time.time() - started
        self.logger.scalars(self.counters.env_steps, {
            **means, "train/updates": self.counters.updates,
            "time/updates_per_second": len(history) / max(elapsed, 1e-9)})

    def _test(self, should_stop: Callable[[], bool]) -> float:
        """A test phase: `test_episodes` noise-free episodes of every task, played together.
        A stop drops it whole; the resume plays it again from the same episode seeds."""
        cfg = self.cfg
        first = self.counters.test_phases * len(self.test_envs)
        seeds = [runs.seed_of_test_episode(cfg.seed, first + i)
                 for i in range(len(self.test_envs))]
        self.agent.reset(len(self.test_envs))
        episodes = run_episodes(self.test_envs, self.agent.act, seeds, should_stop)
        returns = np.asarray([episode_return(e) for e in episodes])
        tasks = np.asarray(self.test_tasks)
        per_task = {task: returns[tasks == task] for task in self.tasks}
        mean = float(np.mean([r.mean() for r in per_task.values()]))
        self.counters.test_phases += 1
        scalars = {"test/return": mean, "test/return_std": float(np.std(returns))}
        if len(self.tasks) > 1:
            for task, values in per_task.items():
                scalars |= {f"test/{task}/return": float(values.mean()),
                            f"test/{task}/return_std": float(values.std())}
        self.logger.scalars(self.counters.env_steps, scalars)
        if cfg.train.video_every and self.counters.test_phases % cfg.train.video_every == 0:
            self._log_prediction_video(episodes[0])
        return mean

    def _log_prediction_video(self, episode: Episode) -> None:
        """Open-loop prediction on a test episode: 5 context frames, then up to 45 predicted."""
        length = min(episode.length, 50)
        context = min(5, length - 1)
        prediction = open_loop(self.model, episode.obs[None, :length],
                               episode.action[None, :length], context, self.generator)
        self.logger.video(self.counters.env_steps, "test/open_loop_prediction",
                          prediction.grid())

    def _play(self, policy: Callable[[PixelEnv], Policy], should_stop: Callable[[], bool]
              ) -> float:
        """One training episode from the run's next episode seed, in the next task's turn,
        with `policy(env)`'s actions, stored; returns its return."""
        started = time.time()
        seed = runs.seed_of_training_episode(self.cfg.seed, self.counters.episodes)
        task = runs.task_of_episode(self.tasks, self.counters.episodes)
        env = self.envs[task]
        episode = run_episodes([env], policy(env), [seed], should_stop)[0]
        return self._collect(episode, started, task)

    def run(self, progress: bool = True) -> Counters:
        """Train until the budget is spent or a stop is requested; returns the counters.

        `progress=False` draws no progress bar (a sweep's trials, which report to Ray)."""
        t = self.cfg.train
        bar = tqdm(total=t.episodes, initial=self.counters.episodes, unit="episode",
                   desc=self.cfg.task, dynamic_ncols=True, disable=not progress)
        try:
            with stop_requests() as stop:
                def stopping() -> bool:
                    return stop[0]
                seeded = False
                def uniform(env: PixelEnv) -> Policy:
                    return random_policy([env])
                while self.counters.episodes < t.seed_episodes and self._budget_left():
                    ret = self._play(uniform, stopping)
                    bar.set_postfix(train_return=f"{ret:.1f}")
                    bar.update()
                    seeded = True
                if seeded:  # the first checkpoint: the seed episodes are never redone
                    self.save_checkpoint()
                if owes_test_phase(t, self.counters):
                    bar.set_postfix(test_return=f"{self._test(stopping):.1f}")
                planned = partial(self.agent.act, exploration_noise=t.exploration_noise)

                def explore(env: PixelEnv) -> Policy:
                    return uniform(env) if t.collection == "random" else planned
                while self._budget_left():
                    self._train_interval(stop)
                    self.agent.reset(1)
                    postfix = {"train_return": f"{self._play(explore, stopping):.1f}"}
                    if phase_due_after(t, self.counters.episodes):
                        postfix["test_return"] = f"{self._test(stopping):.1f}"
                    bar.set_postfix(postfix)
                    bar.update()
                    if self.counters.episodes % t.checkpoint_every == 0:
                        self.save_checkpoint()
                    if stop[0]:
                        raise Interrupted
        except Interrupted:
            self.save_checkpoint()
            tqdm.write(f"stopped; resume with: planet train --resume {self.run_dir}",
                       file=sys.stderr)
            raise
        finally:
            bar.close()
            self.logger.close()
        self.save_checkpoint()
        return self.counters
