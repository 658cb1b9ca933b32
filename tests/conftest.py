"""Fixtures shared by several test files."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any, ClassVar

import gymnasium
import numpy as np
import pytest
import torch


@pytest.fixture
def virtual_display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real X server (Xvfb, 800x600) on a free display number, set as DISPLAY.

    Skipped where Xvfb is missing, except under CI, which must have it (.ci/run installs it).
    """
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing: .ci/run installs it (Debian package xvfb)")
        pytest.skip("needs Xvfb for a real window (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as ready:  # Xvfb writes its display number once it accepts clients
            number = ready.readline().strip()
        if not number:
            pytest.fail(f"Xvfb did not start (exit code {server.poll()})")
        display = f":{number}"
        monkeypatch.setenv("DISPLAY", display)
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


class EarlyEndEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A Gymnasium task that ends (`terminated=True`) after `END` steps, long before any time
    limit: reward 1 per step, and frames whose red level counts the steps taken."""

    END = 7
    """Steps until the task ends."""
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gymnasium.spaces.Box(0.0, np.inf, (1,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.steps = 0
        return np.array([0.0], np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        return np.array([self.steps], np.float32), 1.0, self.steps >= self.END, False, {}

    def render(self) -> np.ndarray:
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[..., 0] = 10 * self.steps
        return frame


@pytest.fixture
def early_end_task() -> Iterator[str]:
    """`gym:` name of `EarlyEndEnv`, registered with Gymnasium for the test only."""
    env_id = "PlanetTest/EarlyEnd-v0"
    gymnasium.register(id=env_id, entry_point=EarlyEndEnv)
    try:
        yield f"gym:{env_id}"
    finally:
        del gymnasium.registry[env_id]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch intra-op thread: as fast at tiny sizes, and steady when other processes
    share the two cores (with two threads such tests slow down about ten times)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
