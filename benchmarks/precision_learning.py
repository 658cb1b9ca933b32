"""Does bf16 change learning? Train `toy-reach` in fp32 and in bf16 from the same seeds.

Each run is the whole agent on the `toy` preset (the configuration of tests/test_learning.py:
small networks, 24 episodes, 50 updates per episode), with `precision` set to fp32 or bf16.
bf16 puts the networks of the update and the planner's imagined rollout under bf16 autocast;
the KL, the log-likelihoods and the reward model stay in fp32 (`acceleration.autocast`).
After training, the noise-free agent plays the same 10 test starts (seeds 500..509) in
every run, once planning in fp32 and once in bf16 (from the same planner draws), so that
the effect of training precision and of planning precision show apart. The script prints
one JSON line per run: the mean test returns, the last logged training losses, and the
wall time. `--output` appends the lines to a file.

Runs are deterministic for a given seed, precision and thread count, so the machine's load
changes only the wall time. On a CPU the bf16 kernels are not those of a GPU: this measures
the effect of the number format on learning, not a GPU's exact results.

    .venv/bin/python benchmarks/precision_learning.py --precisions fp32 bf16 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from planet_torch import config as config_lib
from planet_torch.config import PRECISIONS
from planet_torch.envs import make_env
from planet_torch.evaluate import episode_return, run_episodes
from planet_torch.planner import CEMPlanner
from planet_torch.runs import new_run_dir, read_metrics
from planet_torch.train import Trainer

TEST_SEEDS = range(500, 510)
"""The test starts every run plays, as in tests/test_learning.py."""
TEST_GENERATOR_SEED = 1234
"""The planner's draws in every test, so that the two planning precisions see the same."""

LOSS_KEYS = ("model/image_nll", "model/reward_nll", "model/kl")


def last_losses(run_dir: Path) -> dict[str, float]:
    """The last logged value of each training loss in a run's metrics.jsonl."""
    losses: dict[str, float] = {}
    for record in read_metrics(run_dir):
        losses.update({key: round(record[key], 3) for key in LOSS_KEYS if key in record})
    return losses


def train_and_test(precision: str, seed: int, root: Path) -> dict:
    """One toy-reach run at this precision and seed; its test return and losses."""
    cfg = config_lib.override(config_lib.PRESETS["toy"](),
                              {"train.test_every": 0, "precision": precision, "seed": seed})
    run_dir = new_run_dir(root, f"{cfg.task}-{precision}", seed)
    start = time.perf_counter()
    trainer = Trainer(cfg, run_dir)
    trainer.run()
    train_s = time.perf_counter() - start
    envs = [make_env(cfg.task, seed=i) for i in range(len(TEST_SEEDS))]
    agent, trained_planner = trainer.agent, trainer.agent.planner
    test_returns = {}
    for planning in PRECISIONS:  # the same trained model, planned in each precision
        agent.planner = CEMPlanner(cfg.planner, trained_planner.low, trained_planner.high,
                                   precision=planning)
        agent.generator = torch.Generator().manual_seed(TEST_GENERATOR_SEED)
        agent.reset(len(envs))
        returns = [episode_return(e) for e in run_episodes(envs, agent.act, TEST_SEEDS)]
        test_returns[planning] = round(float(np.mean(returns)), 2)
    return {"precision": precision, "seed": seed, "test_return": test_returns[precision],
            "test_return_by_planning_precision": test_returns,
            "last_losses": last_losses(run_dir), "train_s": round(train_s, 1),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=PRECISIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            for precision in args.precisions:
                line = json.dumps(train_and_test(precision, seed, Path(root)))
                print(line, flush=True)
                if args.output is not None:
                    with args.output.open("a") as f:
                        f.write(line + "\n")


if __name__ == "__main__":
    main()
