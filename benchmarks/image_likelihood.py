"""Paired timing of a cpu-preset update with two ways of writing the Gaussian image term.

`planet_torch.objective.gaussian_log_likelihood` takes the squares from `mse_loss` (one
fused pass over the B * L * 3 * 64 * 64 pixels forward, one backward) and adds the
constant once per image. The elementwise form it replaced,

    (-0.5 * (target - mean) ** 2 - ln(2 pi) / 2).sum(over pixels),

makes five passes forward and about six backward. Both give the same values (checked here
on the batch before timing). Each repeat times one update with each form, alternating, on
one `Updater` (the `cpu` preset's model, a random batch of B chunks of L steps, A = 1 as in
cartpole-swingup), after one untimed update; the median of each is printed, with their
ratio, in one line `RESULT image_likelihood ...` (with the 1-minute load average).

    .venv/bin/python benchmarks/image_likelihood.py --repeats 8
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from planet_torch import bench, objective
from planet_torch import config as config_lib

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def elementwise(mean: torch.Tensor, target: torch.Tensor, event_dims: int) -> torch.Tensor:
    """The elementwise form: ln Normal(target; mean, 1) per element, then summed."""
    log_prob = -0.5 * (target - mean) ** 2 - _HALF_LOG_2PI
    return log_prob.sum(dim=tuple(range(-event_dims, 0))) if event_dims else log_prob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="chunks B (cpu preset: 16)")
    parser.add_argument("--length", type=int, default=50, help="steps L (cpu preset: 50)")
    args = parser.parse_args()
    cfg = config_lib.PRESETS["cpu"]()
    s = bench.BenchSettings(device=torch.device("cpu"), model=cfg.model,
                            planner=cfg.planner, action_size=1)
    probe = torch.randn(args.batch, args.length, 3, 64, 64), torch.randn(
        args.batch, args.length, 3, 64, 64)
    torch.testing.assert_close(objective.gaussian_log_likelihood(*probe, event_dims=3),
                               elementwise(*probe, event_dims=3))
    updater = bench.make_updater(s)
    generator = torch.Generator().manual_seed(0)
    batch = bench.random_batch(args.batch, args.length, 1, s.device,
                               torch.Generator().manual_seed(0))
    fused = objective.gaussian_log_likelihood
    updater(batch, generator)
    times: dict[str, list[float]] = {"fused": [], "elementwise": []}
    try:
        for _ in range(args.repeats):
            for name, form in (("elementwise", elementwise), ("fused", fused)):
                objective.gaussian_log_likelihood = form
                start = time.perf_counter()
                updater(batch, generator)
                times[name].append(time.perf_counter() - start)
    finally:
        objective.gaussian_log_likelihood = fused
    medians = {name: statistics.median(values) for name, values in times.items()}
    load = bench.load_average()
    print(f"RESULT image_likelihood B={args.batch} L={args.length} repeats={args.repeats} "
          f"elementwise_s={medians['elementwise']:.3f} fused_s={medians['fused']:.3f} "
          f"ratio={medians['elementwise'] / medians['fused']:.2f} "
          f"load={'n/a' if load is None else f'{load:.2f}'} threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
