"""Real `planet` processes for the signal and kill tests, and run folder look-ups."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TIMEOUT = 180
"""Seconds a subprocess test waits for a marker (episodes on disk, a message) or an exit."""


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
