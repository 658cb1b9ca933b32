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
import time
from pathlib import Path

import numpy as np

from planet_torch.replay import Episode, Replay


def make_episode(rng: np.random.Generator, steps: int, size: int, action_size: int) -> Episode:
    """A random episode of `steps` agent steps (steps + 1 rows) with a zero reset row."""
    obs = rng.integers(0, 256, (steps + 1, size, size, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, (steps + 1, action_size)).astype(np.float32)
    reward = rng.uniform(0, 1, steps + 1).astype(np.float32)
    action[0] = 0
    reward[0] = 0
    return Episode(obs, action, reward)


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

    rng = np.random.default_rng(args.seed)
    replay = Replay(capacity=args.episodes * args.steps, seed=args.seed)
    for _ in range(args.episodes):
        replay.add(make_episode(rng, args.steps, args.size, args.action_size))
    for _ in range(args.warmup):
        replay.sample(args.batch, args.length)
    times_ms = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        replay.sample(args.batch, args.length)
        times_ms.append((time.perf_counter() - start) * 1e3)

    median, mean = statistics.median(times_ms), statistics.mean(times_ms)
    print(f"replay: {replay.num_episodes} episodes, {replay.num_steps} steps, "
          f"{replay.nbytes / 2**20:.0f} MiB, {replay.nbytes / replay.num_steps:.0f} bytes/step")
    print(f"sample(B={args.batch}, L={args.length}) over {args.repeats} repeats: "
          f"median {median:.2f} ms, mean {mean:.2f} ms, min {min(times_ms):.2f} ms, "
          f"max {max(times_ms):.2f} ms")
    line = (f"RESULT replay_sample B={args.batch} L={args.length} episodes={args.episodes} "
            f"steps={args.steps} frame={args.size}x{args.size}x3 repeats={args.repeats} "
            f"median_ms={median:.2f} mean_ms={mean:.2f} numpy={np.__version__} "
            f"python={platform.python_version()}")
    print(line)
    if args.output is not None:
        with args.output.open("a") as file:
            file.write(line + "\n")


if __name__ == "__main__":
    main()
