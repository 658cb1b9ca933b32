"""The whole agent learns: `toy-reach` trained for a few minutes on a CPU.

Real planner, real world model (small sizes: the `toy` preset), real
training loop. After training, the noise-free agent and a uniformly random policy play the
same 10 test starts, as do scripted baselines (zero action, one axis, both axes). Measured
at the last calibration (seed 0, 2 threads, AMD EPYC without AVX-512): learned 42.5,
random 10.0, zero action 14.0, one axis 28.3, both axes 49.3. Over 20 starts a random
policy scores about 8 on toy-reach and a policy that heads straight for the goal about 49.5
(tests/test_envs.py measures both).
"""

import numpy as np
import pytest
import torch

from planet_torch import config as config_lib
from planet_torch.envs import ToyReachEnv, make_env
from planet_torch.evaluate import episode_return, random_policy, run_episodes
from planet_torch.runs import new_run_dir
from planet_torch.train import Trainer

LEARNED_THRESHOLD = 25.0
"""Half of what heading straight for the goal earns, about three times a random policy."""
AXIS_FRACTION = 0.65
"""On each axis the learned agent must end within this fraction of the distance that zero
actions leave. Steering one axis only leaves 1.0 on the other; the trained agent, measured
at the last calibration (seed 0, 2 threads, AMD EPYC without AVX-512): 0.20 and 0.21."""


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


def final_distances(envs: list[ToyReachEnv]) -> np.ndarray:
    """Mean over environments of |p - g| on each axis at the end of their episodes, (2,)."""
    return np.mean([np.abs(env.position) for env in envs], axis=0)


def play(envs: list[ToyReachEnv], policy, seeds: list[int]) -> tuple[float, np.ndarray]:
    """Mean return and mean final distance per axis of one episode from each seed."""
    returns = [episode_return(e) for e in run_episodes(envs, policy, seeds)]
    return float(np.mean(returns)), final_distances(envs)


def scripted(envs: list[ToyReachEnv], axes: tuple[int, ...]):
    """A policy that heads straight for the goal on `axes` only, zero action on the others;
    `axes=()` is the zero-action policy. It reads the dots' true positions."""
    def policy(observations: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(envs), 2), np.float32)
        for i, env in enumerate(envs):
            for axis in axes:
                actions[i, axis] = np.clip(-env.position[axis] / ToyReachEnv.STEP_SCALE, -1, 1)
        return actions
    return policy


@pytest.mark.slow
def test_agent_learns_toy_reach(tmp_path, calibration_threads):
    """The trained agent beats random play and reaches the goal on both axes.

    The return alone would pass a half-broken agent: steering one axis only scores about 28
    here. So each axis's final distance to the goal must be well below what zero actions
    leave (the start's own distance) and near what the scripted two-axis policy reaches.
    """
    cfg = config_lib.override(config_lib.PRESETS["toy"](), {"train.test_every": 0})
    trainer = Trainer(cfg, new_run_dir(tmp_path, cfg.task, cfg.seed))
    trainer.run()
    envs = [make_env(cfg.task, seed=i) for i in range(10)]
    seeds = list(range(500, 510))
    trainer.agent.reset(len(envs))
    learned, learned_distance = play(envs, trainer.agent.act, seeds)
    random_return, _ = play(envs, random_policy(envs), seeds)
    still_return, still_distance = play(envs, scripted(envs, ()), seeds)
    one_axis_return, one_axis_distance = play(envs, scripted(envs, (0,)), seeds)
    both_return, both_distance = play(envs, scripted(envs, (0, 1)), seeds)
    print(f"toy-reach test return: learned {learned:.1f}, random {random_return:.1f}, "
          f"zero action {still_return:.1f}, one axis {one_axis_return:.1f}, "
          f"both axes {both_return:.1f}; final distance per axis: learned "
          f"{learned_distance.round(3)}, zero action {still_distance.round(3)}, one axis "
          f"{one_axis_distance.round(3)}, both axes {both_distance.round(3)}")
    assert learned > 2 * random_return
    assert learned > LEARNED_THRESHOLD
    assert learned > one_axis_return
    assert np.all(learned_distance < AXIS_FRACTION * still_distance), learned_distance
