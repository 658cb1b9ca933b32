"""A disk that fills up while training: one line, nothing finished lost, and resume works.

The run folder lies on a tmpfs of its own, mounted in a private user and mount namespace
(`unshare -rm`), so the test needs no root and leaves no mount behind. Once the fifth
episode is on disk, a filler file takes all the space that is left; the next write of the
run (an episode, a checkpoint or a log line) fails. Then the filler is removed, as a user
frees space, and `planet train --resume` finishes the run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planet_torch import checkpoint
from planet_torch.replay import episode_files

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
