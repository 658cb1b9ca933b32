"""What a sweep costs over plain runs: Ray's start-up, a trial's start-up, and 4 runs at once.

    python benchmarks/sweep_overhead.py --repeats 3

Every figure is the wall time of whole processes, as a user meets them, timed with
`planet_torch.bench.measure`, median over `--repeats`:

- `ray_start_s`: `ray.init()` of a local instance and `ray.shutdown()` in a fresh Python;
- `train_1_s`: one `planet train --preset debug` run of toy-reach (4 episodes);
- `sweep_1_s`: `planet sweep` of that same run as its only trial; `sweep_1_s - train_1_s` is
  what a sweep adds to one run (Ray's start-up, Tune, the trial's worker, the report);
- `train_4_s`: four such runs (seeds 0-3) one after another;
- `sweep_4_s`: the same four as one sweep, which runs as many at once as the machine's cores
  allow (one CPU and one torch thread each on two cores).

It writes `benchmarks/results/sweep-<machine>.json` with the machine, the load average
before and after, the command and the commit. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from planet_torch.bench import load_average, measure, source_commit

ROOT = Path(__file__).resolve().parents[1]
PLANET = [sys.executable, "-m", "planet_torch.cli"]
RUN = ["--preset", "debug", "--task", "toy-reach", "--train.episodes", "4"]


def wall(command: list[str]) -> None:
    """Run one command as a user would; it must succeed."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def commands(logdir: Path) -> dict[str, list[list[str]]]:
    """The processes each figure times, with run folders under `logdir`."""
    sweep = [*PLANET, "sweep", "--preset", "debug", "--tasks", "toy-reach",
             "--train.episodes", "4", "--logdir", str(logdir)]

    def train(seed: int) -> list[str]:
        return [*PLANET, "train", *RUN, "--logdir", str(logdir), "--seed", str(seed)]

    return {
        "ray_start_s": [[sys.executable, "-c", "import ray; ray.init(include_dashboard=False, "
                         "log_to_driver=False); ray.shutdown()"]],
        "train_1_s": [train(0)],
        "sweep_1_s": [[*sweep, "--seeds", "0"]],
        "train_4_s": [train(seed) for seed in range(4)],
        "sweep_4_s": [[*sweep, "--seeds", "0-3"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default: benchmarks/results/sweep-<machine>.json)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from learning import machine_name

    output = args.output or ROOT / "benchmarks" / "results" / f"sweep-{machine_name()}.json"
    load_start = load_average()
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, processes in commands(Path(folder)).items():
            timed = measure(name, "", lambda processes=processes: [wall(c) for c in processes],
                            args.repeats, 0, torch.device("cpu"))
            seconds[name] = [round(s, 2) for s in timed.seconds]
            print(f"{name}: {seconds[name]}", flush=True)
    medians = {k: round(float(np.median(v)), 2) for k, v in seconds.items()}
    medians["sweep_adds_to_one_run_s"] = round(medians["sweep_1_s"] - medians["train_1_s"], 2)
    medians["four_in_sequence_over_sweep"] = round(medians["train_4_s"] / medians["sweep_4_s"],
                                                   2)
    document = {
        "machine": machine_name(), "cores": os.cpu_count(), "python": platform.python_version(),
        "command": shlex.join(["python", "benchmarks/sweep_overhead.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_start": load_start, "load_average_end": load_average(),
        "medians": medians, "seconds": seconds}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(medians, indent=1))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
