"""The whole agent learns: `toy-reach` trained for a few minutes on a CPU.

Real planner, real world model (small sizes: the `toy` preset, DESIGN.md section 5), real
training loop. After training, the noise-free agent and a uniformly random policy play the
same 10 test starts. Measured when this test was written (seed 0, 2-core CPU): see
LEARNED_THRESHOLD below. A random policy scores about 8 on toy-reach and a policy that heads
straight for the goal about 49.5 (tests/test_envs.py measures both).
"""

import numpy as np
import pytest
import torch

from planet_torch import config as config_lib
from planet_torch.envs import make_env
from planet_torch.evaluate import episode_return, random_policy, run_episodes
from planet_torch.train import Trainer, new_run_dir

LEARNED_THRESHOLD = 25.0
"""Half of what heading straight for the goal earns, about three times a random policy."""


CALIBRATION_THREADS = 2
"""Torch intra-op threads of the calibrating runs. Another count sums in another order, so
the run follows another trajectory; over 20 one-thread seeds the toy preset failed once
(benchmarks/precision_learning.md), so the thread count is pinned rather than inherited."""


@pytest.fixture
def calibration_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(CALIBRATION_THREADS)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_agent_learns_toy_reach(tmp_path, calibration_threads):
    cfg = config_lib.override(config_lib.PRESETS["toy"](), {"train.test_every": 0})
    trainer = Trainer(cfg, new_run_dir(tmp_path, cfg.task, cfg.seed))
    trainer.run()
    envs = [make_env(cfg.task, seed=i) for i in range(10)]
    seeds = list(range(500, 510))
    trainer.agent.reset(len(envs))
    learned = [episode_return(e) for e in run_episodes(envs, trainer.agent.act, seeds)]
    random_returns = [episode_return(e)
                      for e in run_episodes(envs, random_policy(envs), seeds)]
    learned_mean, random_mean = float(np.mean(learned)), float(np.mean(random_returns))
    print(f"toy-reach test return: learned {learned_mean:.1f}, random {random_mean:.1f}")
    assert learned_mean > 2 * random_mean
    assert learned_mean > LEARNED_THRESHOLD
