"""Timing helpers of `planet bench` (`planet_torch.bench`); the CLI run is in test_tools."""

from __future__ import annotations

import time

import pytest
import torch

from planet_torch.bench import (
    BenchSettings,
    Measurement,
    episode_config,
    measure,
    table_row,
    training_episode_times,
)
from planet_torch.config import PRESETS, ModelConfig, PlannerConfig, override
from planet_torch.envs import default_action_repeat


def test_measure_warms_up_then_times_each_repeat() -> None:
    calls = []

    def work() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.01)

    m = measure("sleep", "10 ms", work, repeats=3, warmup=2, device=torch.device("cpu"),
                work=5, unit="things/s")
    assert len(calls) == 5 and len(m.seconds) == 3
    assert all(s >= 0.01 for s in m.seconds)
    result = m.to_dict()
    assert result["rate"] == pytest.approx(5 / m.median)
    assert result["min_s"] <= result["median_s"] <= result["max_s"]
    with pytest.raises(ValueError, match="repeats"):
        measure("x", "", work, repeats=0, warmup=0, device=torch.device("cpu"))


def test_table_row_shows_durations_in_readable_units() -> None:
    row = table_row(Measurement("update", "B=50 L=50", [4.2, 4.0, 4.4], 1234.0))
    assert row.split()[:5] == ["update", "B=50", "L=50", "4.200", "s"]
    assert "ms" in table_row(Measurement("replay", "B=1", [0.0035], 10.0))


def test_quick_settings_are_tiny() -> None:
    quick = BenchSettings.quick(torch.device("cpu"))
    assert quick.model.depth < BenchSettings(torch.device("cpu")).model.depth
    assert max(b * length for b, length in quick.sizes) <= 32


def test_episode_timing_runs_the_paper_workload_of_issue_seven() -> None:
    """Default settings time what the GPU target names: C = 100 updates at B = L = 50, then
    one full planned episode (cheetah-run: 1000 env steps at R = 4, 250 planned steps)."""
    s = BenchSettings(torch.device("cpu"), task="cheetah-run", repeats=3, warmup=1)
    cfg = episode_config(s)
    t = cfg.train
    assert (t.collect_interval, t.batch_size, t.chunk_length) == (100, 50, 50)
    assert (t.seed_episodes, t.episodes, t.test_every) == (1, 5, 0)
    assert cfg.env.episode_steps is None and default_action_repeat("cheetah-run") == 4
    assert cfg.planner == PlannerConfig() and cfg.model == ModelConfig()


def test_training_episode_times_has_one_entry_per_trained_episode() -> None:
    cfg = override(PRESETS["debug"](), {"train.test_every": 0, "train.seed_episodes": 2,
                                        "train.episodes": 5, "env.episode_steps": 40})
    times = training_episode_times(cfg)
    assert len(times) == 3
    assert all(t.updates > 0 and t.collect > 0 for t in times)


@pytest.mark.parametrize("device, quick, given, expected", [
    ("cpu", False, None, 3), ("cpu", True, None, 2), ("cuda", False, None, 10),
    ("cuda", True, None, 2), ("cpu", False, 7, 7), ("cuda", True, 7, 7),
])
def test_bench_repeats_default_lives_in_one_place(device: str, quick: bool, given: int | None,
                                                  expected: int) -> None:
    """`planet bench --repeats`: 3 on a CPU, 10 on CUDA, 2 with --quick, unless given."""
    from planet_torch.bench import BenchSettings

    settings = BenchSettings.for_device(torch.device(device), quick, given)
    assert settings.repeats == expected
    assert settings.device == torch.device(device)
