#!/usr/bin/env bash
# Wheels for a GPU machine without network: the dependencies of planet-torch that such an
# image often lacks, for benchmarks/gpu_check.sh to install there.
#
# A machine with Python 3.12, torch, tensorboard, imageio, matplotlib, pyyaml, tqdm and
# pillow but no dm_control, MuJoCo or Gymnasium gets their wheels from here. dm_control's
# wheel alone is 56 MB, nearly all of it the locomotion and manipulation assets that the
# Control Suite never reads, so this script repacks it without them (17 MB; 51 MB for all
# nine wheels). imageio-ffmpeg (68 MB) is left out: only MP4 writing needs it, and neither
# the CUDA tests nor the GPU benchmarks write MP4. Checked on a CPU machine: the six paper
# tasks build and step with the repacked dm_control.
#
# usage: bash benchmarks/gpu_wheels.sh [FOLDER]    (default .whl, which .gitignore ignores)
#
# Copy FOLDER to the GPU machine beside the checkout; benchmarks/gpu_check.sh installs it.
set -euo pipefail
out="${1:-.whl}"
mkdir -p "$out"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform any \
    -d "$out" dm_control==1.0.50 dm-env==1.6 dm-tree==0.1.10 glfw==2.11.0 labmaze==1.0.6 \
    mujoco==3.17.0 pyopengl==3.1.10 gymnasium==1.4.0 farama-notifications==0.0.6
python3 - "$out"/dm_control-1.0.50-py3-none-any.whl <<'PY'
"""Rewrite the dm_control wheel without its locomotion and manipulation packages."""
import sys
import zipfile
from pathlib import Path

wheel = Path(sys.argv[1])
dropped = ("dm_control/locomotion/", "dm_control/manipulation/")
kept = wheel.with_suffix(".tmp")
with zipfile.ZipFile(wheel) as source, \
        zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as target:
    for item in source.infolist():
        if item.filename.startswith(dropped):
            continue
        data = source.read(item)
        if item.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines(keepends=True)
            data = "".join(line for line in lines if not line.startswith(dropped)).encode()
        target.writestr(item, data)
kept.replace(wheel)
PY
du -ch "$out"/*.whl | tail -n 1
