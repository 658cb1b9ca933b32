"""Time `Replay.sample` on a replay the size of a PlaNet run's early phase.

Fills a replay with random uint8 episodes (64x64x3 frames by default), then times
`sample(B, L)` (paper: B = 50, L = 50) over repeats and prints the median and mean in
milliseconds, then one result line (`RESULT ...`), which `--output` also appends to a file.

    .venv/bin/python benchmarks/replay_sample.py --episodes 100 --steps 500
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import numpy as np
import torch

from planet_torch import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes in the replay")
    parser.add_argument("--steps", type=int, default=500, help="agent steps per episode")
    parser.add_argument("--size", type=int, default=64, help="frame height and width")
    parser.add_argument("--action-size", type=int, default=6, help="action dimensions A")
    parser.add_argument("--batch", type=int, default=50, help="chunks per batch, B")
    parser.add_argument("--length", type=int, default=50, help="rows per chunk, L")
    parser.add_argument("--repeats", type=int, default=100, help="timed sample calls")
    parser.add_argument("--warmup", type=int, default=5, help="untimed sample calls first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None,
                        help="file to append the result line to")
    args = parser.parse_args()

    replay = bench.random_replay(args.episodes, args.steps, args.action_size, args.seed,
                                 args.size)
    m = bench.measure("replay_sample", f"B={args.batch} L={args.length}",
                      lambda: replay.sample(args.batch, args.length), args.repeats,
                      args.warmup, torch.device("cpu"))
    times_ms = [seconds * 1e3 for seconds in m.seconds]
    median, mean = statistics.median(times_ms), statistics.mean(times_ms)
    print(f"replay: {replay.num_episodes} episodes, {replay.num_steps} steps, "
          f"{replay.nbytes / 2**20:.0f} MiB, {replay.nbytes / replay.num_steps:.0f} bytes/step")
    print(f"sample(B={args.batch}, L={args.length}) over {args.repeats} repeats: "
          f"median {median:.2f} ms, mean {mean:.2f} ms, min {min(times_ms):.2f} ms, "
          f"max {max(times_ms):.2f} ms")
    bench.print_results([bench.result_line(
        "replay_sample", B=args.batch, L=args.length, episodes=args.episodes,
        steps=args.steps, frame=f"{args.size}x{args.size}x3", repeats=args.repeats,
        median_ms=f"{median:.2f}", mean_ms=f"{mean:.2f}", numpy=np.__version__,
        python=platform.python_version())], args.output)


if __name__ == "__main__":
    main()
