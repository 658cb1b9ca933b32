"""Time one CEM planning call (`CEMPlanner.plan`) with the paper's model and planner sizes.

Builds a randomly initialised `WorldModel(ModelConfig(), A)` (belief 200, state 30, hidden
200, reward MLP 2 x 200) and a `CEMPlanner(PlannerConfig())` (H = 12, I = 10, J = 1000,
K = 100), puts each of N agents in a different state, then times `plan` for every N given
(one rollout of N * J sequences per iteration) and prints the median, mean, min and max wall
time in seconds and the median process CPU time (all threads; a check on wall times taken
while other processes share the cores), then one result line per N (`RESULT ...`), which
`--output` also appends to a file.
`--precision bf16` and `--compile` time the planner's own bf16 rollout and compiled rollout.
`--profile` adds a torch.profiler table of the top operators of one call per N; on a 2-core
CPU take it with `--threads 1`, since with two intra-op threads the profiler's own thread
competes for the cores and inflates the element-wise operators several times over.

    .venv/bin/python benchmarks/planner.py --agents 1 10 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from planet_torch.bench import planning_states, synchronize
from planet_torch.config import ModelConfig, PlannerConfig
from planet_torch.planner import CEMPlanner
from planet_torch.rssm import LatentState
from planet_torch.world_model import WorldModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 10],
                        help="numbers of agents N planned together, one timing each")
    parser.add_argument("--action-size", type=int, default=6, help="action dimensions A")
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
    torch.manual_seed(args.seed)
    model = WorldModel(ModelConfig(), args.action_size).to(device).eval()
    cfg = PlannerConfig()
    planner = CEMPlanner(cfg, -torch.ones(args.action_size), torch.ones(args.action_size),
                         precision=args.precision, compile=args.compile)
    generator = torch.Generator(device).manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"{args.precision}, compile {args.compile}; H={cfg.horizon} I={cfg.iterations} "
          f"J={cfg.candidates} K={cfg.elites} A={args.action_size}")

    lines = []
    for num_agents in args.agents:
        state = planning_states(model, num_agents, torch.Generator().manual_seed(args.seed))

        def call(state: LatentState = state) -> torch.Tensor:
            action = planner.plan(model, state, generator=generator)
            synchronize(device)
            return action

        for k in range(args.warmup):
            start = time.perf_counter()
            call()
            print(f"N={num_agents} warm-up call {k + 1}: {time.perf_counter() - start:.3f} s")
        times, cpu_times = [], []
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            call()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        median, mean = statistics.median(times), statistics.mean(times)
        cpu = statistics.median(cpu_times)
        print(f"N={num_agents} ({num_agents * cfg.candidates} sequences): median {median:.3f} s, "
              f"mean {mean:.3f} s, min {min(times):.3f} s, max {max(times):.3f} s, "
              f"{median / num_agents:.3f} s per agent; process CPU time median {cpu:.3f} s")
        lines.append(f"RESULT planner N={num_agents} H={cfg.horizon} I={cfg.iterations} "
                     f"J={cfg.candidates} K={cfg.elites} A={args.action_size} "
                     f"device={device} precision={args.precision} compile={args.compile} "
                     f"threads={torch.get_num_threads()} repeats={args.repeats} "
                     f"median_s={median:.3f} mean_s={mean:.3f} min_s={min(times):.3f} "
                     f"cpu_s={cpu:.3f} torch={torch.__version__} "
                     f"python={platform.python_version()}")
        if args.profile:
            activities = [ProfilerActivity.CPU]
            if device.type == "cuda":
                activities.append(ProfilerActivity.CUDA)
            with profile(activities=activities) as prof:
                call()
            sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=sort, row_limit=12))
    for line in lines:
        print(line)
    if args.output is not None:
        with args.output.open("a") as file:
            file.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
