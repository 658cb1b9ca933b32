"""Time one full world-model update at the paper's batch size.

One update is one call of `planet_torch.world_model.Updater`, as training makes it (through
`planet_torch.bench.bench_update`, eager): preprocess, encode all B * L images in one
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
import platform
import subprocess
import sys
from pathlib import Path

import torch

from planet_torch import bench
from planet_torch.acceleration import PRECISIONS


def run(args: argparse.Namespace) -> str:
    """Time updates at one precision in this process; return the result line."""
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    s = bench.BenchSettings(device, repeats=args.repeats, warmup=args.warmup,
                            action_size=args.action_size, precision=args.precision)
    calls = args.warmup + args.repeats

    def progress(c: bench.Call) -> None:
        print(f"  {args.precision} update {c.index + 1}/{calls}"
              f"{' (warm-up)' if c.warmup else ''}: {c.seconds:.3f} s "
              f"({c.cpu_seconds:.1f} s CPU), loss {c.result['model/loss'].item():.1f}",
              flush=True)

    m = bench.bench_update(s, args.batch, args.length, args.seed, on_call=progress)
    low, high, memory = min(m.seconds), max(m.seconds), m.peak_memory_mib
    print(f"{args.precision} on {device}: median {m.median:.3f} s/update over {args.repeats} "
          f"(min {low:.3f}, max {high:.3f}; {m.cpu_median:.1f} s process CPU "
          f"time); peak memory {memory:.0f} MiB "
          f"({'max_memory_allocated' if device.type == 'cuda' else 'maxrss'})")
    load = bench.load_average()
    return bench.result_line(
        "update", precision=args.precision, device=device, B=args.batch, L=args.length,
        A=args.action_size, repeats=args.repeats, median_s=f"{m.median:.3f}",
        min_s=f"{low:.3f}", max_s=f"{high:.3f}", cpu_s=f"{m.cpu_median:.1f}",
        load="n/a" if load is None else f"{load:.1f}", peak_mib=f"{memory:.0f}",
        threads=torch.get_num_threads(), torch=torch.__version__,
        python=platform.python_version())


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
        bench.print_results([run(args)], args.output)
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
