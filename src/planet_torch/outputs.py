"""Output folders of the tools: checked before the long work, so a bad path fails at once.

`planet test`, `planet predict`, `planet plot` and `planet bench` write files only after
minutes of episodes or timings; `ensure_writable` proves the folder takes a file first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


class OutputError(PermissionError):
    """An output folder cannot be created or written to."""


def ensure_writable(folder: Path) -> Path:
    """Create `folder` if needed and check that a file can be written there; returns it.

    Raises `OutputError` naming the folder and the reason (no permission, a file in the
    way, a read-only file system).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"cannot write to {folder}: {reason}; choose another folder "
                          "with --output") from error
    return folder
