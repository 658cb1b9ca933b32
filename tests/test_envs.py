"""Tests of planet_torch.envs: pixels, action repeat, episode limit, seeding, task names."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from planet_torch.envs import (
    PAPER_TASKS,
    ToyReachEnv,
    default_action_repeat,
    default_episode_steps,
    make_env,
    task_names,
)

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


def test_cheetah_model_loads_without_the_total_mass_notice(caplog) -> None:
    """MuJoCo warns through absl that dm_control's cheetah.xml uses `settotalmass`; that one
    notice is dropped, and other absl warnings still come through."""
    with caplog.at_level(logging.WARNING):
        make_env("cheetah-run", seed=0).reset(seed=0)
        logging.getLogger("absl").warning("another warning")
    messages = [record.getMessage() for record in caplog.records]
    assert "another warning" in messages
    assert not [m for m in messages if "settotalmass" in m]
