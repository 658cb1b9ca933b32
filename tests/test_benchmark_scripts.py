"""The timing scripts in benchmarks/ run on tiny sizes on the CPU and print their results.

Each runs as a subprocess, as its .md file runs it; every timing goes through
`planet_torch.bench.measure`, whose own behaviour test_bench checks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from processes import TIMEOUT, run_group

ROOT = Path(__file__).resolve().parents[1]
SWEEP_TIMEOUT = 900
"""Seconds for sweep_overhead.py, as for each `planet sweep` of test_sweep.py."""


def run_script(name: str, *args: str, timeout: float = TIMEOUT) -> str:
    """stdout of benchmarks/<name>.py run with args; fails on a non-zero exit, or when it
    has not ended in `timeout` seconds (and then kills it with all it started)."""
    result = run_group(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def results(text: str, benchmark: str) -> list[dict[str, str]]:
    """The fields of each `RESULT benchmark k=v ...` line of text."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["RESULT", benchmark]:
            assert all("=" in word for word in words[2:]), line
            found.append(dict(word.split("=", 1) for word in words[2:]))
    return found


def test_replay_sample_prints_and_appends_its_result(tmp_path: Path) -> None:
    output = tmp_path / "results.txt"
    output.write_text("earlier line\n")
    out = run_script("replay_sample", "--episodes", "3", "--steps", "20", "--batch", "2",
                     "--length", "4", "--repeats", "3", "--warmup", "1", "--output",
                     str(output))
    assert "replay: 3 episodes, 60 steps" in out and "sample(B=2, L=4) over 3 repeats" in out
    (result,) = results(out, "replay_sample")
    assert (result["B"], result["L"], result["episodes"], result["steps"], result["frame"],
            result["repeats"]) == ("2", "4", "3", "20", "64x64x3", "3")
    assert float(result["median_ms"]) > 0 and float(result["mean_ms"]) > 0
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier line" and results("\n".join(lines[1:]), "replay_sample") == [
        result]


def test_planner_prints_warmup_calls_and_one_result_per_agent_count(tmp_path: Path) -> None:
    output = tmp_path / "results.txt"
    out = run_script("planner", "--preset", "toy", "--agents", "1", "2", "--repeats", "2",
                     "--warmup", "1", "--threads", "1", "--output", str(output))
    assert "N=1 warm-up call 1: " in out and "N=2 (400 sequences): median " in out
    found = results(out, "planner")
    assert [(r["N"], r["H"], r["I"], r["J"], r["K"]) for r in found] == [
        ("1", "10", "5", "200", "20"), ("2", "10", "5", "200", "20")]
    for result in found:
        assert (result["threads"], result["repeats"], result["precision"]) == ("1", "2", "fp32")
        assert all(float(result[key]) > 0 for key in ("median_s", "mean_s", "min_s", "cpu_s"))
        assert float(result["min_s"]) <= float(result["median_s"])
    assert results(output.read_text(), "planner") == found


def test_update_runs_each_precision_in_its_own_process(tmp_path: Path) -> None:
    output = tmp_path / "results.txt"
    out = run_script("update", "--batch", "2", "--length", "4", "--repeats", "1",
                     "--warmup", "1", "--threads", "1", "--device", "cpu", "--output",
                     str(output))
    assert "  fp32 update 1/2 (warm-up): " in out and "  bf16 update 2/2: " in out
    found = results(out, "update")
    assert [r["precision"] for r in found] == ["fp32", "bf16"]
    for result in found:
        assert (result["B"], result["L"], result["A"], result["device"]) == ("2", "4", "6",
                                                                             "cpu")
        assert float(result["median_s"]) > 0 and float(result["peak_mib"]) > 0
        assert float(result["min_s"]) <= float(result["median_s"]) <= float(result["max_s"])
    assert results(output.read_text(), "update") == found


def test_acceleration_prints_a_row_per_variant_and_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "acceleration.json"
    out = run_script("acceleration", "update", "plan", "episode", "--preset", "debug",
                     "--device", "cpu", "--compiles", "false", "--threads", "1",
                     "--repeats", "2", "--warmup", "0", "--agents", "1",
                     "--task", "cartpole-swingup", "--json", str(path))
    rows = json.loads(path.read_text())["rows"]
    assert [(r["bench"], r["precision"]) for r in rows] == [
        ("update", "fp32"), ("update", "bf16"), ("plan", "fp32"), ("plan", "bf16"),
        ("episode", "fp32"), ("episode", "bf16")]
    assert sum(line.startswith("| update | B=3 L=5 |") for line in out.splitlines()) == 2
    for row in rows:
        assert row["first_s"] > 0 and row["median_s"] > 0 and not row["compile"]
    assert rows[0]["deviation"] == 0 and rows[2]["deviation"] == 0
    assert rows[1]["deviation"] < 1  # bf16's loss, in nats, near fp32's
    assert all(r["updates_s"] > 0 and r["collect_s"] > 0 for r in rows[4:])


def test_a_script_out_of_time_is_killed_with_all_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(60)\n")
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="did not end within 5 s"):
        run_group([sys.executable, "-c", code], timeout=5)
    assert time.monotonic() - started < 30
    grandchild = int(pid_file.read_text())
    status = Path(f"/proc/{grandchild}/status")
    deadline = time.monotonic() + 10
    while status.exists() and "zombie" not in status.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # SIGKILL is delivered, not waited for
    assert not status.exists() or "zombie" in status.read_text()


def test_sweep_overhead_writes_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")
    output = tmp_path / "sweep.json"
    # Five `planet sweep` and `planet train` processes and four Ray starts: minutes where
    # other work shares the cores, so the sweep tests' limit.
    out = run_script("sweep_overhead", "--repeats", "1", "--output", str(output),
                     timeout=SWEEP_TIMEOUT)
    document = json.loads(output.read_text())
    medians = document["medians"]
    assert set(medians) == {"ray_start_s", "train_1_s", "sweep_1_s", "train_4_s", "sweep_4_s",
                            "sweep_adds_to_one_run_s", "four_in_sequence_over_sweep"}
    assert all(medians[k] > 0 for k in ("ray_start_s", "train_1_s", "sweep_1_s", "train_4_s",
                                        "sweep_4_s"))
    assert medians["train_4_s"] > medians["train_1_s"]  # four runs take longer than one
    assert document["commit"] and document["command"].endswith("--repeats 1 --output "
                                                               f"{output}")
    assert f"wrote {output}" in out


def test_image_likelihood_checks_both_forms_agree_and_prints_one_result() -> None:
    (result,) = results(run_script("image_likelihood", "--repeats", "1", "--batch", "2",
                                   "--length", "3"), "image_likelihood")
    assert (result["B"], result["L"], result["repeats"]) == ("2", "3", "1")
    assert float(result["elementwise_s"]) > 0 and float(result["fused_s"]) > 0
