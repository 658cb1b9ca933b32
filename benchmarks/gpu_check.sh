#!/usr/bin/env bash
# The checks a GPU must make, in one script: the CUDA tests, then the update, planning and
# episode timings, each written under OUT as it finishes.
#
# usage: bash benchmarks/gpu_check.sh [OUT] [WHEELS]
#   OUT     folder for the results (default: $OUT, else gpu-results)
#   WHEELS  folder of wheels to install first, made by benchmarks/gpu_wheels.sh, for a
#           machine without dm_control, MuJoCo or Gymnasium and without network (default:
#           .whl if it exists; nothing is installed otherwise)
#
# On a machine where `pip install -e .` works, no wheels are needed. Takes about 10
# minutes on one GPU. Each step's output goes to OUT/<step>.log; a failing step is reported
# and the next one still runs; the exit status is that of the first failure.
set -uo pipefail
out="${1:-${OUT:-gpu-results}}"
wheels="${2:-.whl}"
mkdir -p "$out"
if [ -d "$wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/planet-site "$wheels"/*.whl
    export PYTHONPATH="/tmp/planet-site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export MUJOCO_GL="${MUJOCO_GL:-egl}"
status=0
step() {  # step NAME COMMAND...: run it, log it, remember the first failure
    local name="$1"; shift
    echo "== $name: $*"
    if "$@" > "$out/$name.log" 2>&1; then
        echo "   ok ($(tail -n 1 "$out/$name.log"))"
    else
        local code=$?
        echo "   FAILED with $code; last lines:"; tail -n 15 "$out/$name.log"
        [ "$status" -eq 0 ] && status=$code
    fi
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
# 1. CUDA-graph planner against eager CEM, CUDA update against CPU, side-stream batch copies.
step cuda-tests python3 -m pytest -q tests/test_acceleration.py tests/test_planner.py \
    tests/test_world_model.py tests/test_train.py
# 2. Update (target <= 15 ms at B = L = 50) and one planning call (target <= 5 ms, N = 1),
#    with sync warnings on.
step update-plan python3 benchmarks/acceleration.py update plan --device cuda --repeats 20 \
    --warmup 3 --sync-debug --json "$out/gpu-update-plan.json"
# 3. `planet bench` at paper sizes with whole training episodes, eager and compiled.
step bench python3 -m planet_torch.cli bench --device cuda --episode --task cheetah-run \
    --json "$out/bench.json"
step bench-compiled python3 -m planet_torch.cli bench --device cuda --compile --episode \
    --task cheetah-run --json "$out/bench-compiled.json"
# 4. One training episode (target <= 8 s: 100 updates + 250 planned steps with rendering).
step episode python3 benchmarks/acceleration.py episode --device cuda --task cheetah-run \
    --json "$out/gpu-episode.json"
exit "$status"
