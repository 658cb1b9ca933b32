#!/usr/bin/env bash
# The front door as a new user meets it, in a scratch folder (default .smoke/, removed first):
# a new venv built exactly as `make train` builds one (`make install`, with no torch
# preinstalled), then `planet train --preset debug` on cartpole-swingup and on toy-reach.
# Each stage prints its wall time. usage: bash scripts/smoke.sh [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-.smoke}"
rm -rf "$scratch"
mkdir -p "$scratch"
stage() {
    local name=$1 start=$SECONDS
    shift
    echo "smoke: $name ..."
    "$@"
    echo "smoke: $name took $((SECONDS - start)) s"
}
stage "venv and install as make train does" make --no-print-directory install VENV="$scratch/venv"
for task in cartpole-swingup toy-reach; do
    stage "planet train --preset debug --task $task" \
        "$scratch/venv/bin/planet" train --preset debug --task "$task" --logdir "$scratch/runs"
done
echo "smoke: passed; torch $("$scratch/venv/bin/python" -c 'import torch; print(torch.__version__)')"
