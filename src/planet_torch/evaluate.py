"""Running episodes: N environments stepped together, one policy call per step for all.

Used for seed episodes (random actions), training collection (planner plus exploration
noise) and test episodes (planner alone). Each finished episode comes back in the replay's
row convention: row t holds o_t, the action that led to it and the reward received with it,
the reset row holding zero action and zero reward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium
import numpy as np

from planet_torch.replay import Episode

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps observations (N, 64, 64, 3) uint8 of all N environments to actions (N, A)."""


class Interrupted(Exception):
    """Raised between environment steps when a stop was requested (Ctrl-C, SIGTERM)."""


def random_policy(envs: Sequence[gymnasium.Env]) -> Policy:
    """Uniformly random actions from each environment's (seeded) action space."""
    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([env.action_space.sample() for env in envs]).astype(np.float32)
    return act


def run_episodes(envs: Sequence[gymnasium.Env], policy: Policy, seeds: Sequence[int | None],
                 should_stop: Callable[[], bool] | None = None) -> list[Episode]:
    """One episode in each environment, stepped together until all are done.

    An environment that finishes first keeps showing its last frame to the policy (its
    action is ignored), so the policy always sees all N. Raises `Interrupted` if
    `should_stop()` turns true; the unfinished episodes are dropped.
    """
    if len(seeds) != len(envs):
        raise ValueError(f"need one seed per environment: {len(envs)} envs, {len(seeds)} seeds")
    first = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    action_size = envs[0].action_space.shape[0]
    obs = [[o] for o in first]
    actions = [[np.zeros(action_size, np.float32)] for _ in envs]
    rewards: list[list[float]] = [[0.0] for _ in envs]
    done = [False] * len(envs)
    current = np.stack(first)
    while not all(done):
        if should_stop is not None and should_stop():
            raise Interrupted
        batch_action = np.asarray(policy(current), dtype=np.float32)
        for n, env in enumerate(envs):
            if done[n]:
                continue
            o, r, terminated, truncated, _ = env.step(batch_action[n])
            obs[n].append(o)
            actions[n].append(batch_action[n])
            rewards[n].append(float(r))
            current[n] = o
            done[n] = terminated or truncated
    return [Episode(np.stack(o), np.stack(a), np.asarray(r, np.float32))
            for o, a, r in zip(obs, actions, rewards, strict=True)]


def episode_return(episode: Episode) -> float:
    """Sum of the rewards of an episode (the reset row holds zero)."""
    return float(episode.reward.sum())
