"""Fixtures shared by several test files."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


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
