"""Timing helpers of `planet bench` (`planet_torch.bench`); the CLI run is in test_tools."""

from __future__ import annotations

import time

import pytest
import torch

from planet_torch.bench import BenchSettings, Measurement, measure, table_row


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
