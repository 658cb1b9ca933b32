"""The numbers a run logs, not only their names: interval means, episode returns and
counters in metrics.jsonl, and the same values in the TensorBoard events file.

One short debug run on toy-reach whose `Updater` is replaced by a stand-in that returns known
metrics (update n reports model/loss = n + 0.25 and so on): each interval's line must then
hold the mean of exactly its C updates' values. The run's TensorBoard events are read back
with tensorboard's own EventAccumulator and compared with metrics.jsonl, scalar by scalar.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from planet_torch import config as config_lib
from planet_torch.replay import Replay, episode_files
from planet_torch.runs import new_run_dir, read_metrics
from planet_torch.train import Trainer
from planet_torch.world_model import Updater

COLLECT_INTERVAL = 3
"""Updates C per interval in the run below."""


def known_metrics(n: int) -> dict[str, float]:
    """What the stand-in updater reports at its n-th call (n = 1, 2, ...)."""
    return {"model/loss": n + 0.25, "model/kl": 0.5 * n * n, "model/grad_norm": 10.0 - n}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished run: 2 seed episodes, 4 training episodes of 10 steps with C = 3 stand-in
    updates each, and a test phase after episodes 4 and 6 (with a prediction video)."""
    calls: list[int] = []

    def stand_in(self: Updater, batch: object, generator: object = None
                 ) -> dict[str, torch.Tensor]:
        calls.append(1)
        return {k: torch.tensor(v) for k, v in known_metrics(len(calls)).items()}

    cfg = config_lib.override(config_lib.PRESETS["debug"](), {
        "task": "toy-reach", "env.episode_steps": 10, "train.episodes": 6,
        "train.collect_interval": COLLECT_INTERVAL, "train.test_every": 2})
    folder = new_run_dir(tmp_path_factory.mktemp("metrics"), cfg.task, cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # other work on the two cores slows two threads ~10x
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Updater, "__call__", stand_in)
            Trainer(cfg, folder).run()
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 4 * COLLECT_INTERVAL
    yield folder


def test_interval_lines_hold_the_mean_of_their_updates(run: Path) -> None:
    """Interval k (updates 3k-2 .. 3k) logs the mean of those 3 updates' metrics, at the
    environment steps before its episode, with the update count so far."""
    intervals = [r for r in read_metrics(run) if "train/updates" in r]
    assert [r["train/updates"] for r in intervals] == [3, 6, 9, 12]
    assert [r["env_steps"] for r in intervals] == [20, 30, 40, 50]
    for k, record in enumerate(intervals):
        updates = [known_metrics(n) for n in range(3 * k + 1, 3 * k + 4)]
        for name in ("model/loss", "model/kl", "model/grad_norm"):
            expected = float(np.mean([u[name] for u in updates]))
            assert record[name] == pytest.approx(expected, rel=1e-6), (k, name)
        assert record["time/updates_per_second"] > 0
    # Spelled out for the first interval: updates 1, 2, 3.
    assert intervals[0]["model/loss"] == 2.25 and intervals[0]["model/grad_norm"] == 8.0
    assert intervals[0]["model/kl"] == pytest.approx((0.5 + 2 + 4.5) / 3)


def test_episode_lines_hold_the_stored_episodes_return_and_counters(run: Path) -> None:
    """Each episode's line: the return of the episode file it wrote, the episodes so far and
    the environment steps after it."""
    episodes = [r for r in read_metrics(run) if "train/return" in r]
    assert [r["train/episodes"] for r in episodes] == [1, 2, 3, 4, 5, 6]
    assert [r["env_steps"] for r in episodes] == [10, 20, 30, 40, 50, 60]
    stored = Replay.load(run / "episodes").episodes
    assert len(episode_files(run / "episodes")) == len(stored) == 6
    for record, episode in zip(episodes, stored, strict=True):
        assert record["train/return"] == pytest.approx(float(episode.reward.sum()), rel=1e-6)
    assert len({r["train/return"] for r in episodes}) > 1  # not one value for all
    tests = [r for r in read_metrics(run) if "test/return" in r]
    assert [r["env_steps"] for r in tests] == [40, 60]
    assert all(0 <= r["test/return"] <= 10 and r["test/return_std"] == 0 for r in tests)


def test_tensorboard_holds_the_values_of_metrics_jsonl(run: Path) -> None:
    """Read back with EventAccumulator: every scalar of metrics.jsonl is in TensorBoard under
    its name, at the same environment steps, with the same value (to float32), and
    nothing else is; the open-loop prediction video is there as an image."""
    (events,) = run.glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    records = read_metrics(run)
    names = {name for record in records for name in record} - {"env_steps"}
    assert set(accumulator.Tags()["scalars"]) == names
    assert {"model/loss", "train/return", "test/return", "time/episode_seconds"} <= names
    for name in sorted(names):
        logged = [(r["env_steps"], r[name]) for r in records if name in r]
        board = [(e.step, e.value) for e in accumulator.Scalars(name)]
        assert [step for step, _ in board] == [step for step, _ in logged], name
        np.testing.assert_allclose([v for _, v in board], [v for _, v in logged],
                                   rtol=1e-6, atol=0, err_msg=name)
    assert accumulator.Tags()["images"] == ["test/open_loop_prediction"]
    assert [e.step for e in accumulator.Images("test/open_loop_prediction")] == [40, 60]
