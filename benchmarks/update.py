"""Time one full world-model update at the paper's batch size.

One update is `planet_torch.world_model.update`: preprocess, encode all B * L images in one
call, filter with the RSSM over L steps, decode, reward model, negative ELBO, backward,
gradient clipping at 1000, Adam step. The batch is random uint8 frames (the content does not
change the work) with the paper's B = 50 chunks of L = 50 steps and A = 6 action dimensions
(cheetah-run, walker-walk); the model is the default `ModelConfig` (the paper's sizes).

Prints the median over `--repeats` timed updates after `--warmup` untimed ones: wall clock,
and the process's CPU time, which says how much of a shared machine the update used. Then
the peak memory: on CPU the process's maximum resident set size (`getrusage` maxrss), on
CUDA `torch.cuda.max_memory_allocated`. With `--precision all` (the default) each
precision runs in its own process, so the CPU peaks do not mix. Each run ends with one
result line (`RESULT ...`, with the 1-minute load average), which `--output` also appends
to a file.

    .venv/bin/python benchmarks/update.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from planet_torch.acceleration import PRECISIONS
from planet_torch.bench import peak_memory_mib, random_batch, synchronize
from planet_torch.config import ModelConfig, ObjectiveConfig, OptimConfig
from planet_torch.world_model import WorldModel, make_optimizer, update


def run(args: argparse.Namespace) -> str:
    """Time updates at one precision in this process; return the result line."""
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model = WorldModel(ModelConfig(), args.action_size).to(device)
    optimizer = make_optimizer(model, OptimConfig())
    objective, grad_clip = ObjectiveConfig(), OptimConfig().grad_clip
    batch = random_batch(args.batch, args.length, args.action_size, device, generator)
    noise = torch.Generator(device).manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    times, cpu_times = [], []
    for i in range(args.warmup + args.repeats):
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        metrics = update(model, optimizer, batch, objective, grad_clip, args.precision, noise)
        synchronize(device)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if i >= args.warmup:
            times.append(elapsed)
            cpu_times.append(cpu)
        print(f"  {args.precision} update {i + 1}/{args.warmup + args.repeats}"
              f"{' (warm-up)' if i < args.warmup else ''}: {elapsed:.3f} s "
              f"({cpu:.1f} s CPU), loss {metrics['model/loss'].item():.1f}", flush=True)

    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    memory = peak_memory_mib(device)
    print(f"{args.precision} on {device}: median {median:.3f} s/update over {args.repeats} "
          f"(min {min(times):.3f}, max {max(times):.3f}; {cpu_median:.1f} s process CPU "
          f"time); peak memory {memory:.0f} MiB "
          f"({'max_memory_allocated' if device.type == 'cuda' else 'maxrss'})")
    return (f"RESULT update precision={args.precision} device={device} B={args.batch} "
            f"L={args.length} A={args.action_size} repeats={args.repeats} "
            f"median_s={median:.3f} min_s={min(times):.3f} max_s={max(times):.3f} "
            f"cpu_s={cpu_median:.1f} load={os.getloadavg()[0]:.1f} "
            f"peak_mib={memory:.0f} threads={torch.get_num_threads()} torch={torch.__version__} "
            f"python={platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50, help="chunks per batch, B")
    parser.add_argument("--length", type=int, default=50, help="agent steps per chunk, L")
    parser.add_argument("--action-size", type=int, default=6, help="action dimensions A")
    parser.add_argument("--repeats", type=int, default=5, help="timed updates")
    parser.add_argument("--warmup", type=int, default=1, help="untimed updates first")
    parser.add_argument("--precision", choices=[*PRECISIONS, "all"], default="all",
                        help="fp32, bf16 (autocast around the conv networks) or all")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice, one per core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None,
                        help="file to append the result line(s) to")
    args = parser.parse_args()

    if args.precision != "all":
        line = run(args)
        print(line, flush=True)
        if args.output is not None:
            with args.output.open("a") as file:
                file.write(line + "\n")
        return
    for precision in PRECISIONS:
        command = [sys.executable, __file__, "--precision", precision]
        for name in ("batch", "length", "action_size", "repeats", "warmup", "device", "threads",
                     "seed", "output"):
            value = getattr(args, name)
            if value is not None:
                command += [f"--{name.replace('_', '-')}", str(value)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
