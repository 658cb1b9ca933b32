"""Eager vs compiled vs bf16 (vs CUDA graph): the update, the planner and a training episode.

    update    one `Updater` call (world_model.py): noise, forward, backward, clip, Adam, on a
              random (B, L) batch, for each precision and compile setting
    plan      one `CEMPlanner.plan` call for N agents, for each precision, compile setting
              and (on CUDA) with and without the CUDA graph
    episode   a short `Trainer` run on a real task (1 seed episode, then 2 trained ones, no
              tests) and the time of the last trained episode: C updates + one planned
              episode with rendering, i.e. what one of the paper's 1000 episodes costs

For every variant the first call is timed on its own (it includes compiling or graph
capture), then `--warmup` untimed calls, then the median of `--repeats` timed calls, the
device synchronised around each (all timed by `planet_torch.bench.measure`). Each variant
also reports how far its result is from the eager fp32 one on the same inputs:
|loss - loss_fp32| of the first update (same model initialisation, batch and draws),
max |action - action_fp32| of a planning call with the same `CEMNoise`. Inductor's cache
is a fresh temporary folder unless TORCHINDUCTOR_CACHE_DIR is set, so first calls show cold
compile times.

    .venv/bin/python benchmarks/acceleration.py update plan --device cpu --repeats 3
    .venv/bin/python benchmarks/acceleration.py episode --device cuda --task cheetah-run

With `--sync-debug` on CUDA, torch warns at every host-device synchronisation: the timed
calls of `update` and `plan` should raise none (the benchmark's own reads of results, after
the timing, excepted).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from planet_torch import bench
from planet_torch import config as config_lib
from planet_torch.acceleration import configure_backends
from planet_torch.config import Config
from planet_torch.planner import CEMPlanner

ACTION_SIZE = 6
"""A of the timed model (cheetah-run and walker-walk have 6 action dimensions)."""


def measure(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int
            ) -> tuple[bench.Measurement, Any]:
    """`bench.measure` of fn, and the result of its first call."""
    first: list[Any] = []

    def keep_first(call: bench.Call) -> None:
        if call.index == 0:
            first.append(call.result)

    return bench.measure("", "", fn, repeats, warmup, device, on_call=keep_first), first[0]


def settings(cfg: Config, device: torch.device, precision: str, compile_: bool
             ) -> bench.BenchSettings:
    """The preset's model and planner sizes at one precision and compile setting."""
    return bench.BenchSettings(device, model=cfg.model, planner=cfg.planner,
                               action_size=ACTION_SIZE, precision=precision, compile=compile_)


def variants(device: torch.device, precisions: list[str], compiles: list[bool],
             graphs: bool) -> Iterator[tuple[str, bool, bool]]:
    """(precision, compile, cuda_graph) combinations; graphs only exist on CUDA."""
    for precision in precisions:
        for compile_ in compiles:
            for graph in ((False, True) if graphs and device.type == "cuda" else (False,)):
                yield precision, compile_, graph


def bench_update(args: argparse.Namespace, cfg: Config, device: torch.device
                 ) -> list[dict[str, Any]]:
    """Time `Updater` calls at (B, L) for every precision and compile setting."""
    B, L = cfg.train.batch_size, cfg.train.chunk_length
    batch = bench.random_batch(B, L, ACTION_SIZE, device, torch.Generator().manual_seed(0))
    rows, reference = [], None
    for precision, compile_, _ in variants(device, args.precisions, args.compiles, False):
        updater = bench.make_updater(settings(cfg, device, precision, compile_), seed=0)
        generator = torch.Generator(device).manual_seed(0)
        # The first call (compiling) is bench.measure's first warm-up call, timed apart.
        m, metrics = measure(lambda u=updater, gen=generator: u(batch, gen), device,
                             args.warmup + 1, args.repeats)
        loss = metrics["model/loss"].item()
        reference = loss if reference is None else reference
        rows.append({"bench": "update", "size": f"B={B} L={L}", "precision": precision,
                     "compile": compile_, "cuda_graph": False,
                     "first_s": m.warmup_seconds[0], "median_s": m.median,
                     "compiled_after": updater.compiled,
                     "deviation": abs(loss - reference), "deviation_of": "loss (nats)"})
        print(row_text(rows[-1]), flush=True)
    return rows


def bench_plan(args: argparse.Namespace, cfg: Config, device: torch.device
               ) -> list[dict[str, Any]]:
    """Time `CEMPlanner.plan` for each N, precision, compile and graph setting."""
    model = bench.make_model(settings(cfg, device, "fp32", False), seed=0).eval()
    bounds = -torch.ones(ACTION_SIZE), torch.ones(ACTION_SIZE)
    c = cfg.planner
    rows = []
    for agents in args.agents:
        state = bench.planning_states(model, agents, torch.Generator().manual_seed(1))
        probe = CEMPlanner(c, *bounds)
        noise = probe.draw_noise(agents, cfg.model.state_size, device,
                                 torch.Generator(device).manual_seed(2))
        reference = None
        for precision, compile_, graph in variants(device, args.precisions, args.compiles,
                                                   True):
            planner = CEMPlanner(c, *bounds, precision, compile_, cuda_graphs=graph)
            m, action = measure(lambda p=planner, s=state, n=noise: p.plan(model, s, n),
                                device, args.warmup + 1, args.repeats)
            reference = action if reference is None else reference
            rows.append({"bench": "plan",
                         "size": f"N={agents} H={c.horizon} I={c.iterations} "
                                 f"J={c.candidates} K={c.elites}",
                         "precision": precision, "compile": compile_, "cuda_graph": graph,
                         "first_s": m.warmup_seconds[0], "median_s": m.median,
                         "compiled_after": planner.compiled,
                         "deviation": (action - reference).abs().max().item(),
                         "deviation_of": "action (max abs)"})
            print(row_text(rows[-1]), flush=True)
    return rows


def bench_episode(args: argparse.Namespace, cfg: Config, device: torch.device
                  ) -> list[dict[str, Any]]:
    """The last of 2 trained episodes of a short run: C updates + one planned episode."""
    rows = []
    for precision, compile_, _ in variants(device, args.precisions, args.compiles, False):
        run_cfg = config_lib.override(cfg, {
            "task": args.task, "device": str(device), "precision": precision,
            "compile": compile_, "train.seed_episodes": 1, "train.episodes": 3,
            "train.test_every": 0, "train.checkpoint_every": 1000})
        m, last = measure(lambda c=run_cfg: bench.training_episode_times(c)[-1], device, 0, 1)
        rows.append({"bench": "episode",
                     "size": f"{args.task} C={run_cfg.train.collect_interval}",
                     "precision": precision, "compile": compile_, "cuda_graph":
                     device.type == "cuda", "first_s": m.seconds[0],
                     "median_s": sum(last), "updates_s": last.updates,
                     "collect_s": last.collect})
        print(row_text(rows[-1]), flush=True)
    return rows


def row_text(row: dict[str, Any]) -> str:
    """One result as a line of a Markdown table."""
    deviation = f"{row['deviation']:.2g}" if "deviation" in row else ""
    extra = (f" (updates {row['updates_s']:.2f} s + episode {row['collect_s']:.2f} s)"
             if "updates_s" in row else "")
    return (f"| {row['bench']} | {row['size']} | {row['precision']} | "
            f"{'yes' if row['compile'] else 'no'} | {'yes' if row['cuda_graph'] else 'no'} | "
            f"{row['first_s']:.3f} | {row['median_s']:.4f}{extra} | {deviation} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="+", choices=["update", "plan", "episode"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", choices=sorted(config_lib.PRESETS), default="paper",
                        help="model, planner and batch sizes (paper: B=L=50, H12 I10 J1000)")
    parser.add_argument("--task", default="cheetah-run", help="task of the episode benchmark")
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"],
                        default=["fp32", "bf16"])
    parser.add_argument("--compiles", nargs="+", type=lambda s: s == "true",
                        default=[False, True], metavar="{false,true}")
    parser.add_argument("--agents", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--sync-debug", action="store_true",
                        help="CUDA: warn at every host-device synchronisation "
                             "(torch.cuda.set_sync_debug_mode), to find hidden ones")
    args = parser.parse_args()

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configure_backends(device)
    if args.sync_debug and device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
    cfg = config_lib.PRESETS[args.preset]()
    info = bench.machine(device)
    print(f"torch {info['torch']}, {info['cpu']}, {info['torch_threads']} threads, device "
          f"{device}" + (f" ({info['gpu']})" if "gpu" in info else ""))
    print("| bench | size | precision | compile | CUDA graph | first call s | median s "
          "| deviation from eager fp32 |\n|---|---|---|---|---|---|---|---|")
    benches = {"update": bench_update, "plan": bench_plan, "episode": bench_episode}
    rows = [row for what in args.what for row in benches[what](args, cfg, device)]
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "device": str(device),
                                         "preset": args.preset, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
