"""Tests of planet_torch.envs: pixels, action repeat, episode limit, seeding, task names."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import dm_env
import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from planet_torch import envs
from planet_torch.envs import (
    PAPER_TASKS,
    ToyReachEnv,
    default_action_repeat,
    default_episode_steps,
    make_env,
    task_names,
)
from planet_torch.evaluate import random_policy, run_episodes
from planet_torch.replay import Replay, episode_files, parse_episode_name

ACTION_SHAPES = {
    "cartpole-swingup": (1,),
    "reacher-easy": (2,),
    "cheetah-run": (6,),
    "finger-spin": (2,),
    "cup-catch": (2,),
    "walker-walk": (6,),
    "toy-reach": (2,),
}
"""Action size A of each named task; all of them have bounds [-1, 1]."""


def rollout(env: gymnasium.Env, actions: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """Observations and rewards of stepping `actions` from the current state."""
    observations, rewards = [], []
    for action in actions:
        obs, reward, _, _, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


def run_episode(env: gymnasium.Env, policy) -> float:
    """Return of one episode from the state after reset, acting with `policy(env)`."""
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(policy(env))
        total += reward
        done = terminated or truncated
    return total


def test_task_names_and_defaults() -> None:
    assert task_names() == [*PAPER_TASKS, "toy-reach"]
    assert {name: default_action_repeat(name) for name in PAPER_TASKS} == {
        "cartpole-swingup": 8, "reacher-easy": 4, "cheetah-run": 4, "finger-spin": 2,
        "cup-catch": 4, "walker-walk": 2}
    assert PAPER_TASKS["cup-catch"][:2] == ("ball_in_cup", "catch")
    assert default_action_repeat("walker-run") == 2
    assert default_action_repeat("point_mass-easy") == 2
    assert default_action_repeat("gym:Pendulum-v1") == 1
    assert default_action_repeat("toy-reach") == 1
    assert default_episode_steps("cheetah-run") == 1000
    assert default_episode_steps("gym:Pendulum-v1") == 200
    assert default_episode_steps("toy-reach") == 50


@pytest.mark.parametrize("task", list(ACTION_SHAPES))
@pytest.mark.filterwarnings("ignore:.*not having a spec")  # no gymnasium registration
def test_env_checker_spaces_and_pixels(task: str) -> None:
    env = make_env(task, seed=0, episode_steps=12)
    check_env(env)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert isinstance(env.action_space, gymnasium.spaces.Box)
    assert env.action_space.dtype == np.float32
    assert env.action_space.shape == ACTION_SHAPES[task]
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)
    obs, info = env.reset(seed=1)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert info == {"env_steps": 0, "action_repeat": default_action_repeat(task)}
    obs, reward, _, _, info = env.step(env.action_space.sample())
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert type(reward) is float and math.isfinite(reward)
    assert info["env_steps"] == default_action_repeat(task)
    np.testing.assert_array_equal(env.render(), obs)
    env.close()


@pytest.mark.parametrize("task", ["reacher-easy", "walker-walk", "toy-reach", "gym:Pendulum-v1"])
def test_same_seed_same_episode(task: str) -> None:
    first, second = make_env(task, seed=3), make_env(task)
    actions = np.random.default_rng(0).uniform(-1, 1, (10, *first.action_space.shape))
    obs_a, _ = first.reset()  # the make_env seed applies to the first reset
    obs_b, _ = second.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    observations_a, rewards_a = rollout(first, actions)
    observations_b, rewards_b = rollout(second, actions)
    np.testing.assert_array_equal(observations_a, observations_b)
    assert rewards_a == rewards_b
    # Resetting the same environment with the seed again replays the episode.
    second.reset(seed=3)
    observations_c, rewards_c = rollout(second, actions)
    np.testing.assert_array_equal(observations_a, observations_c)
    assert rewards_a == rewards_c
    other_obs, _ = second.reset(seed=4)
    assert not np.array_equal(obs_a, other_obs)
    # The action space is seeded too.
    first.reset(seed=5)
    second.reset(seed=5)
    np.testing.assert_array_equal(first.action_space.sample(), second.action_space.sample())
    first.close()
    second.close()


@pytest.mark.parametrize("task", ["walker-walk", "toy-reach"])
def test_action_repeat_equals_manual_repeat(task: str) -> None:
    repeated, single = make_env(task, action_repeat=4), make_env(task, action_repeat=1)
    repeated.reset(seed=7)
    single.reset(seed=7)
    actions = np.random.default_rng(1).uniform(-1, 1, (3, *repeated.action_space.shape))
    for step, action in enumerate(actions, start=1):
        obs, reward, _, _, info = repeated.step(action)
        manual_obs, manual_rewards = rollout(single, [action] * 4)
        np.testing.assert_array_equal(obs, manual_obs[-1])
        assert reward == pytest.approx(sum(manual_rewards), rel=1e-12, abs=1e-12)
        assert info == {"env_steps": 4 * step, "action_repeat": 4}
    assert reward > 0  # the comparison is not between zeros
    repeated.close()
    single.close()


def test_cartpole_swingup_full_episode_is_125_agent_steps() -> None:
    env = make_env("cartpole-swingup", seed=0)
    env.reset()
    action = np.zeros(1, np.float32)
    for _ in range(124):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step(action)
    assert truncated and not terminated
    assert info == {"env_steps": 1000, "action_repeat": 8}
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)
    env.close()


def test_episode_length_rounds_up_when_not_divisible() -> None:
    env = make_env("toy-reach", seed=0, action_repeat=3, episode_steps=10)
    env.reset()
    results = [env.step(np.zeros(2, np.float32)) for _ in range(4)]
    assert [r[3] for r in results] == [False, False, False, True]
    assert not any(r[2] for r in results)
    assert [r[4]["env_steps"] for r in results] == [3, 6, 9, 10]


def test_bad_action_shape_and_step_before_reset() -> None:
    env = make_env("toy-reach", seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.zeros(3, np.float32))


@pytest.mark.parametrize("task", ["nope", "cartpole", "nope-nope", "cartpole-nope",
                                  "gym:NoSuchEnv-v0"])
def test_bad_task_names_list_the_known_tasks(task: str) -> None:
    for function in (make_env, default_action_repeat, default_episode_steps):
        with pytest.raises(ValueError, match=r"cartpole-swingup.*toy-reach.*domain-task.*gym:ID"):
            function(task)


def test_gym_discrete_action_space_is_refused() -> None:
    with pytest.raises(ValueError, match="Box"):
        make_env("gym:CartPole-v1")


def test_gym_pendulum_frames_and_time_limits() -> None:
    env = make_env("gym:Pendulum-v1", seed=0, episode_steps=500)
    obs, _ = env.reset()
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert obs.std() > 0  # a picture, not a blank
    env.action_space.seed(0)
    steps = 0
    while True:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            break
    assert (steps, terminated, truncated) == (200, False, True)  # Pendulum's own time limit
    assert obs.shape == (64, 64, 3)
    env.close()
    short = make_env("gym:Pendulum-v1", seed=0, episode_steps=5)
    short.reset()
    flags = [short.step(np.zeros(1, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]
    short.close()


def test_toy_reach_picture_reward_and_starts() -> None:
    env = make_env("toy-reach", seed=0)
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        position = env.position
        assert np.linalg.norm(position) >= 0.3 and np.all(np.abs(position) <= 0.6)
        red = np.all(obs == (255, 0, 0), axis=-1)
        assert 45 <= red.sum() <= 53  # a disc of radius 4 px has about 50 pixels
        assert np.all(obs == (0, 255, 0), axis=-1).any()  # the goal ring
        assert np.median(obs) == 128
    action = np.array([0.5, -1.0], np.float32)
    _, reward, _, _, _ = env.step(action)
    expected = np.clip(position + 0.15 * action, -1, 1)
    np.testing.assert_allclose(env.position, expected)
    assert reward == pytest.approx(math.exp(-np.sum(expected**2) / 0.2))


def test_toy_reach_straight_policy_beats_random_actions() -> None:
    rng = np.random.default_rng(0)

    def random_policy(env: ToyReachEnv) -> np.ndarray:
        return rng.uniform(-1, 1, 2).astype(np.float32)

    def straight_policy(env: ToyReachEnv) -> np.ndarray:
        return np.clip(-env.position / ToyReachEnv.STEP_SCALE, -1, 1).astype(np.float32)

    returns: dict[str, list[float]] = {"random": [], "straight": []}
    env = make_env("toy-reach")
    for seed in range(5):
        for episode in range(4):
            for name, policy in (("random", random_policy), ("straight", straight_policy)):
                env.reset(seed=100 * seed + episode)
                returns[name].append(run_episode(env, policy))
    random_mean, straight_mean = np.mean(returns["random"]), np.mean(returns["straight"])
    assert straight_mean >= 2 * random_mean, (random_mean, straight_mean)
    assert straight_mean > 40


def run_python(code: str, mujoco_gl: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "MUJOCO_GL"}
    if mujoco_gl is not None:
        env["MUJOCO_GL"] = mujoco_gl
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_headless_egl_is_the_default() -> None:
    result = run_python("import os, planet_torch.envs; print(os.environ['MUJOCO_GL'])", None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "egl"


def test_unusable_gl_backend_raises_runtime_error_with_advice() -> None:
    code = ("from planet_torch.envs import make_env\n"
            "try:\n    make_env('cartpole-swingup')\n"
            "except RuntimeError as error:\n    print(error)\n")
    result = run_python(code, "bogus")
    assert result.returncode == 0, result.stderr
    assert "MUJOCO_GL" in result.stdout and "apt-get install" in result.stdout


def total_mass_notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Load the cheetah model (whose XML uses `settotalmass`); the notices caplog saw."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        env = make_env("cheetah-run", seed=0)
        env.reset(seed=0)
        env.close()
    return [r.getMessage() for r in caplog.records if "settotalmass" in r.getMessage()]


def test_cheetah_model_loads_without_the_total_mass_notice(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """MuJoCo warns through absl that dm_control's cheetah.xml uses `settotalmass`: with the
    filter taken off the absl logger the notice is logged at every load (so the check below
    is not passing for want of a notice); with it, that one notice is dropped, and other
    absl warnings still come through."""
    absl = logging.getLogger("absl")
    try:
        with monkeypatch.context() as patch:
            absl.removeFilter(envs.dm_control._TOTAL_MASS_NOTICE)
            # make_env adds dm_control._TOTAL_MASS_NOTICE to absl's filters: a pass-all one here
            patch.setattr(envs.dm_control, "_TOTAL_MASS_NOTICE", logging.Filter())
            unfiltered = total_mass_notices(caplog)
            absl.removeFilter(envs.dm_control._TOTAL_MASS_NOTICE)
        assert len(unfiltered) == 1, unfiltered
        assert "deprecated" in unfiltered[0]
        assert total_mass_notices(caplog) == []
        assert envs.dm_control._TOTAL_MASS_NOTICE in absl.filters
        with caplog.at_level(logging.WARNING):
            absl.warning("another warning")
        assert "another warning" in [record.getMessage() for record in caplog.records]
    finally:
        absl.addFilter(envs.dm_control._TOTAL_MASS_NOTICE)  # as the rest of the session expects


class EndingDMControlStep:
    """Stand-in for a dm_control environment's `step`: the real step, except that the
    `end`-th step after a reset is made the last one, with the given discount."""

    def __init__(self, env: envs.DMControlEnv, end: int, discount: float) -> None:
        self.real_step, self.real_reset = env._env.step, env._env.reset
        self.end, self.discount = end, discount
        self.count = 0
        self.rewards: list[float] = []

    def reset(self) -> dm_env.TimeStep:
        self.count = 0
        return self.real_reset()

    def step(self, action: np.ndarray) -> dm_env.TimeStep:
        time_step = self.real_step(action)
        self.count += 1
        self.rewards.append(float(time_step.reward))
        if self.count == self.end:
            return time_step._replace(step_type=dm_env.StepType.LAST, discount=self.discount)
        return time_step


def ending_cartpole(monkeypatch: pytest.MonkeyPatch, end: int, discount: float
                    ) -> tuple[envs.DMControlEnv, EndingDMControlStep]:
    """cartpole-swingup (R = 8) whose dm_control episode ends at environment step `end`."""
    env = make_env("cartpole-swingup", seed=0)
    assert isinstance(env, envs.DMControlEnv)
    fake = EndingDMControlStep(env, end, discount)
    monkeypatch.setattr(env._env, "step", fake.step)
    monkeypatch.setattr(env._env, "reset", fake.reset)
    return env, fake


@pytest.mark.parametrize("discount, terminated", [(0.0, True), (1.0, False)])
def test_dm_control_last_step_with_discount_zero_is_termination(
        monkeypatch: pytest.MonkeyPatch, discount: float, terminated: bool) -> None:
    """A dm_control time step that is the last one with discount 0 (the task really ended)
    is `terminated=True`; a last step with discount 1 (dm_control's own time limit) is
    truncation. Either way the action repeat stops at that environment step, 13 = 8 + 5,
    with the reward of those 5 steps, and the episode is over."""
    env, fake = ending_cartpole(monkeypatch, end=13, discount=discount)
    env.reset(seed=0)
    action = np.full(1, 0.5, np.float32)
    _, _, first_terminated, first_truncated, info = env.step(action)
    assert (first_terminated, first_truncated, info["env_steps"]) == (False, False, 8)
    _, reward, last_terminated, last_truncated, info = env.step(action)
    assert (last_terminated, last_truncated) == (terminated, not terminated)
    assert info["env_steps"] == 13 and fake.count == 13
    assert reward == pytest.approx(sum(fake.rewards[8:13]), rel=1e-12, abs=1e-12)
    assert reward > 0  # cartpole pays something at every step: not a sum of nothing
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)
    env.close()


def test_a_dm_control_episode_that_ends_early_is_stored_with_its_length(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Termination at environment step 20 of 80 (agent step 3 at R = 8): the episode has
    3 steps, 4 rows, and its file says 3 steps."""
    env, _ = ending_cartpole(monkeypatch, end=20, discount=0.0)
    (episode,) = run_episodes([env], random_policy([env]), [0])
    assert episode.length == 4 and episode.reward[0] == 0
    replay = Replay(tmp_path, capacity=1000)
    replay.add(episode)
    (path,) = episode_files(tmp_path)
    assert parse_episode_name(path).steps == 3
    env.close()


def test_a_gym_episode_that_terminates_stops_there(early_end_task: str,
                                                    tmp_path: Path) -> None:
    """`EarlyEndEnv` ends after 7 steps of its own: at R = 2 that is agent step 4, after 7
    environment steps (the repeat stops at the end), terminated and not truncated; the
    episode holds 4 steps and is stored as such."""
    env = make_env(early_end_task, seed=0, action_repeat=2, episode_steps=100)
    env.reset(seed=0)
    results = [env.step(np.zeros(1, np.float32)) for _ in range(4)]
    assert [(r[2], r[3]) for r in results] == [(False, False)] * 3 + [(True, False)]
    assert [r[1] for r in results] == [2.0, 2.0, 2.0, 1.0]
    assert [r[4]["env_steps"] for r in results] == [2, 4, 6, 7]
    assert results[-1][0][0, 0, 0] == 70  # the frame after the seventh step
    (episode,) = run_episodes([env], random_policy([env]), [1])
    assert episode.length == 5 and episode.reward.tolist() == [0.0, 2.0, 2.0, 2.0, 1.0]
    Replay(tmp_path, capacity=1000).add(episode)
    assert [p.name for p in episode_files(tmp_path)] == ["000000-4.npz"]
    env.close()
