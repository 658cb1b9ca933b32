"""Time one CEM planning call (`CEMPlanner.plan`) with the paper's model and planner sizes.

Builds a randomly initialised `WorldModel(ModelConfig(), A)` (belief 200, state 30, hidden
200, reward MLP 2 x 200) and a `CEMPlanner(PlannerConfig())` (H = 12, I = 10, J = 1000,
K = 100), puts each of N agents in a different state, then times `plan` for every N given
(one rollout of N * J sequences per iteration) and prints the median, mean, min and max wall
time in seconds and the median process CPU time (all threads; a check on wall times taken
while other processes share the cores), then one result line per N (`RESULT ...`), which
`--output` also appends to a file.
`--preset` takes another preset's model and planner sizes (`debug`: tiny ones, a smoke test
in seconds). `--precision bf16` and `--compile` time the planner's own bf16 rollout and
compiled rollout.
`--profile` adds a torch.profiler table of the top operators of one call per N; on a 2-core
CPU take it with `--threads 1`, since with two intra-op threads the profiler's own thread
competes for the cores and inflates the element-wise operators several times over.

    .venv/bin/python benchmarks/planner.py --agents 1 10 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from planet_torch import bench
from planet_torch.config import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 10],
                        help="numbers of agents N planned together, one timing each")
    parser.add_argument("--action-size", type=int, default=6, help="action dimensions A")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                        help="model and planner sizes (paper: H=12 I=10 J=1000 K=100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed plan calls per N")
    parser.add_argument("--warmup", type=int, default=1, help="untimed plan calls first")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="the planner's precision: bf16 autocast around the RSSM rollout")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the planner's rollout (compiles in the warm-up)")
    parser.add_argument("--profile", action="store_true",
                        help="also print the top operators of one call per N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None,
                        help="file to append the result lines to")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    preset = PRESETS[args.preset]()
    s = bench.BenchSettings(device, model=preset.model, planner=preset.planner,
                            repeats=args.repeats, warmup=args.warmup,
                            action_size=args.action_size, precision=args.precision,
                            compile=args.compile)
    cfg = s.planner
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"{args.precision}, compile {args.compile}; H={cfg.horizon} I={cfg.iterations} "
          f"J={cfg.candidates} K={cfg.elites} A={args.action_size}")

    lines = []
    for num_agents in args.agents:
        call = bench.plan_step(s, num_agents, args.seed)

        def progress(c: bench.Call, num_agents: int = num_agents) -> None:
            if c.warmup:
                print(f"N={num_agents} warm-up call {c.index + 1}: {c.seconds:.3f} s",
                      flush=True)

        m = bench.measure("planner", f"N={num_agents}", call, args.repeats, args.warmup,
                          device, on_call=progress)
        median, mean, low = m.median, m.mean, min(m.seconds)
        print(f"N={num_agents} ({num_agents * cfg.candidates} sequences): median {median:.3f} s, "
              f"mean {mean:.3f} s, min {low:.3f} s, max {max(m.seconds):.3f} s, "
              f"{median / num_agents:.3f} s per agent; process CPU time median "
              f"{m.cpu_median:.3f} s")
        lines.append(bench.result_line(
            "planner", N=num_agents, H=cfg.horizon, I=cfg.iterations, J=cfg.candidates,
            K=cfg.elites, A=args.action_size, device=device, precision=args.precision,
            compile=args.compile, threads=torch.get_num_threads(), repeats=args.repeats,
            median_s=f"{median:.3f}", mean_s=f"{mean:.3f}", min_s=f"{low:.3f}",
            cpu_s=f"{m.cpu_median:.3f}", torch=torch.__version__,
            python=platform.python_version()))
        if args.profile:
            activities = [ProfilerActivity.CPU]
            if device.type == "cuda":
                activities.append(ProfilerActivity.CUDA)
            with profile(activities=activities) as prof:
                call()
                bench.synchronize(device)
            sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=sort, row_limit=12))
    bench.print_results(lines, args.output)


if __name__ == "__main__":
    main()
