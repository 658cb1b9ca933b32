"""A disk that fills up while training: one line, nothing finished lost, and resume works.

The run folder lies on a tmpfs of its own, mounted in a private user and mount namespace
(`unshare -rm`), so the test needs no root and leaves no mount behind. Once the fifth
episode is on disk, a filler file takes all the space that is left; the next write of the
run (an episode, a checkpoint or a log line) fails. Then the filler is removed, as a user
frees space, and `planet train --resume` finishes the run.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from planet_torch import checkpoint, cli
from planet_torch.replay import episode_files
from planet_torch.train import Counters, Trainer

SCRIPT = r"""
set -u
D=$1; OUT=$2; PY=$3
mount -t tmpfs -o size=8m tmpfs "$D" || exit 90
"$PY" -m planet_torch.cli train --preset debug --task toy-reach --logdir "$D" \
    --train.episodes 12 >"$OUT/train.out" 2>"$OUT/train.err" &
pid=$!
for i in $(seq 1200); do ls "$D"/*/episodes/000004-80.npz >/dev/null 2>&1 && break; sleep 0.1; done
run=$(ls -d "$D"/*/ | head -1)
mkdir -p "$OUT/before" && cp -a "$run"episodes "$OUT/before/"
dd if=/dev/zero of="$D/filler" bs=4k >/dev/null 2>&1
wait $pid; echo "$?" > "$OUT/train.rc"
rm -f "$D/filler"
mkdir -p "$OUT/failed" && cp -a "$run". "$OUT/failed/"
"$PY" -m planet_torch.cli train --resume "$run" >"$OUT/resume.out" 2>"$OUT/resume.err"
echo "$?" > "$OUT/resume.rc"
mkdir -p "$OUT/resumed" && cp -a "$run". "$OUT/resumed/"
"""


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes(tmp_path: Path) -> None:
    if not can_mount_tmpfs():
        pytest.skip("needs unshare and user namespaces to mount a small tmpfs")
    mount, out = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    subprocess.run(["unshare", "-rm", "sh", "-c", SCRIPT, "sh", str(mount), str(out),
                    sys.executable], check=True, timeout=300)

    assert (out / "train.rc").read_text().strip() == "1"
    errors = [line for line in (out / "train.err").read_text().splitlines()
              if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert "No space left on device" in errors[0] and "--resume" in errors[0]
    assert "Traceback" not in (out / "train.err").read_text()

    before = {path.name: path.read_bytes() for path in episode_files(out / "before" / "episodes")}
    failed = episode_files(out / "failed" / "episodes")
    assert len(before) >= 5 and len(failed) >= len(before)
    for path in failed:  # every finished episode intact, the earlier ones unchanged
        with np.load(path) as arrays:
            assert arrays["obs"].shape[0] == 81
        if path.name in before:
            assert path.read_bytes() == before[path.name], path.name
    saved = checkpoint.load(out / "failed")  # the last good checkpoint still loads
    assert saved["counters"]["episodes"] <= len(failed)

    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()
    resumed = checkpoint.load(out / "resumed")
    assert resumed["counters"]["episodes"] == 12
    names = [path.name for path in episode_files(out / "resumed" / "episodes")]
    assert names == [f"{i:06d}-80.npz" for i in range(12)]


class _FullDisk:
    """A record writer for TensorBoard's event writer on a disk with no space left."""

    def write(self, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _train(tmp_path: Path) -> int:
    return cli.main(["train", "--preset", "debug", "--task", "toy-reach", "--device", "cpu",
                     "--logdir", str(tmp_path)])


def test_tensorboards_writer_thread_on_a_full_disk_leaves_one_line(tmp_path, monkeypatch,
                                                                   capsys) -> None:
    """The race the test above can meet, made certain: the writer thread fails first and
    its owner meets the same error at its next write."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriter

    def run(self) -> Counters:
        writer = _AsyncWriter(_FullDisk())
        writer.write(b"event")
        writer._worker.join()  # the thread has ended on ENOSPC and called threading.excepthook
        writer.write(b"event")  # raises the thread's error here, in the main thread
        return Counters()

    # Python's own hook, in place of pytest's that turns such errors into warnings;
    # monkeypatch puts pytest's back afterwards.
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    monkeypatch.setattr(Trainer, "run", run)
    assert _train(tmp_path) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err, err
    assert err.splitlines() == [line for line in err.splitlines() if "error" in line]
    assert len(err.splitlines()) == 1 and "No space left on device" in err
    assert "planet train --resume" in err


class _Owned(threading.Thread):
    """A thread that keeps its error for its owner, as TensorBoard's writer does."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.exception: Exception | None = None
        self.error = error

    def run(self) -> None:
        self.exception = self.error
        raise self.error


def _plain(error: Exception) -> threading.Thread:
    def fail() -> None:
        raise error
    return threading.Thread(target=fail)


@pytest.mark.parametrize("make", [lambda: _Owned(ValueError("a bug")),
                                  lambda: _plain(OSError(errno.EIO, "Input/output error"))],
                         ids=["other error handed on", "OSError not handed on"])
def test_other_errors_of_background_threads_still_print_their_traceback(
        tmp_path, monkeypatch, capsys, make) -> None:
    def run(self) -> Counters:
        thread = make()
        thread.start()
        thread.join()
        return Counters()

    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    monkeypatch.setattr(Trainer, "run", run)
    assert _train(tmp_path) == 0
    err = capsys.readouterr().err
    assert "Traceback" in err and ("a bug" in err or "Input/output error" in err), err
