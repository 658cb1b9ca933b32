"""Real `planet` processes for the signal and kill tests, scripts run as whole process groups,
and run folder look-ups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TIMEOUT = 180
"""Seconds a subprocess test waits for a marker (episodes on disk, a message) or an exit."""


def run_group(argv: list[str], timeout: float = TIMEOUT,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True)` in a process group of its own.

    When time is up the whole group is killed and the test fails: killing the first process
    alone would leave what it started (a `planet sweep` and its local Ray instance) running
    on, beside the tests that follow."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            out, err = process.communicate()
            pytest.fail(f"{argv[1:3]} did not end within {timeout} s:\n{err[-2000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process group that `process` leads (started with start_new_session),
    whatever of it is still running."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def only_run(logdir: Path) -> Path:
    """The one run folder under logdir."""
    runs = [p for p in logdir.iterdir() if p.is_dir()] if logdir.is_dir() else []
    assert len(runs) == 1, runs
    return runs[0]


class Planet:
    """`planet train` in a subprocess, its stdout and stderr in files (a pipe nobody reads
    can fill up and stall it)."""

    def __init__(self, folder: Path, argv: list[str], code: str | None = None) -> None:
        """Run `planet_torch.cli` with argv, or `python -c code` with argv after it."""
        folder.mkdir(parents=True, exist_ok=True)
        self.stderr_path = folder / "stderr.txt"
        start = ["-m", "planet_torch.cli"] if code is None else ["-c", code]
        with (folder / "stdout.txt").open("w") as out, self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, *start, *argv], stdout=out, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str,
                 timeout: float = TIMEOUT) -> None:
        """Poll until condition() holds; fail, naming `what`, if the process ends first or
        the time is up (and then kill it)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"planet exited with {self.proc.returncode} before {what}:\n"
                            f"{self.stderr()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {what} after {timeout} s:\n{self.stderr()[-2000:]}")
            time.sleep(0.1)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit code; fail (and kill the process) if it has not ended in time."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"planet did not exit within {timeout} s:\n{self.stderr()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
