"""Time alignment end to end: environment -> episode -> replay chunk -> filtering -> loss.

Row t of an episode holds o_t, the action a_{t-1} that led to it and the reward r_t received
with it; the reset row holds a zero action and a zero reward (planet_torch.replay). Training
must then build h_t = f(h_{t-1}, s_{t-1}, action[t]), encode obs[t] into q(s_t | h_t, e_t),
decode and reward-predict from the features [h_t, s_t] of that same step and compare them
with obs[t] and reward[t]. A one-step shift anywhere gives numbers of the right shape, so
every stage is checked against the step index itself.

`CountingEnv` makes the step index visible everywhere: frame o_t has every red pixel equal
to t and every green pixel equal to the episode's seed (its marker), the reward of step t is
t, and it records every action it receives (refusing any outside its bounds). The policy
`echo` answers each frame with an action that encodes the frame's (t, marker), so a stored
action says which frame it was chosen from. scripts/mutants.py plants one-step shifts and
other known bugs and runs these tests against them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Independent, Normal
from torch.distributions import kl_divergence as torch_kl

from planet_torch.agent import Agent
from planet_torch.config import ModelConfig, ObjectiveConfig, PlannerConfig
from planet_torch.envs import PixelEnv
from planet_torch.evaluate import Interrupted, episode_return, run_episodes
from planet_torch.latent import LatentState
from planet_torch.objective import image_log_likelihood, reward_log_likelihood
from planet_torch.planner import CEMPlanner
from planet_torch.replay import Episode, Replay
from planet_torch.train import to_device
from planet_torch.world_model import ModelInputs, TorchBatch, WorldModel

pytestmark = pytest.mark.usefixtures("one_thread")

A = 2
"""Action size of `CountingEnv`."""
SCALE = 100.0
"""`echo` writes step index and marker into an action as value / SCALE."""
MODEL = ModelConfig(depth=4, belief_size=16, state_size=4, hidden_size=16, reward_units=16)
PLAN = PlannerConfig(horizon=3, iterations=2, candidates=16, elites=4)
OBJECTIVE = ObjectiveConfig()
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class CountingEnv(PixelEnv):
    """A pixel task whose state is the step index t of the episode (action repeat 1).

    o_t: red channel t, green channel the reset seed (the marker), blue 0. r_t = t.
    `terminate_at` ends the task there (terminated=True); `episode_steps` truncates.
    `received` holds the actions of the current episode in the order they arrived.
    """

    def __init__(self, episode_steps: int, terminate_at: int | None = None) -> None:
        super().__init__(spaces.Box(-1.0, 1.0, (A,), np.float32), 1, episode_steps, None,
                         render_fps=None)
        self.terminate_at = terminate_at
        self.received: list[np.ndarray] = []
        self.marker = 0
        self.t = 0

    def _reset_simulator(self, seed: int | None) -> None:
        self.marker = 0 if seed is None else seed
        self.t = 0
        self.received = []

    def _step_simulator(self, action: np.ndarray) -> tuple[float, bool, bool]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} outside the bounds {self.action_space}")
        self.received.append(action.copy())
        self.t += 1
        return float(self.t), self.t == self.terminate_at, False

    def _render_frame(self) -> np.ndarray:
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[..., 0] = self.t
        frame[..., 1] = self.marker
        return frame


def step_of(obs: np.ndarray) -> np.ndarray:
    """Step index t of frames (..., 64, 64, 3), from the red channel (all pixels agree)."""
    red = np.asarray(obs)[..., 0]
    assert np.all(red == red[..., :1, :1]), "a frame's red pixels must all hold its step"
    return red[..., 0, 0].astype(int)


def marker_of(obs: np.ndarray) -> np.ndarray:
    """The episode marker (reset seed) of frames (..., 64, 64, 3), from the green channel."""
    return np.asarray(obs)[..., 0, 0, 1].astype(int)


class Echo:
    """Policy answering frame o_t of env n with the action (t, marker) / SCALE.

    `seen` holds the (step, marker) of every frame the policy was shown, one array (N, 2)
    per call.
    """

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        code = np.stack([step_of(obs), marker_of(obs)], axis=-1)
        self.seen.append(code)
        return (code / SCALE).astype(np.float32)


def decode(action: np.ndarray) -> np.ndarray:
    """(step, marker) of the frame an `Echo` action was chosen from: (..., 2) ints."""
    return np.rint(np.asarray(action, np.float64) * SCALE).astype(int)


def assert_rows_aligned(episode: Episode, marker: int, steps: int) -> None:
    """Row t holds o_t, a_{t-1} (chosen from o_{t-1}) and r_t; row 0 zero action and reward."""
    assert episode.obs.dtype == np.uint8 and episode.obs.shape == (steps + 1, 64, 64, 3)
    assert episode.action.dtype == np.float32 and episode.action.shape == (steps + 1, A)
    assert episode.reward.dtype == np.float32 and episode.reward.shape == (steps + 1,)
    rows = np.arange(steps + 1)
    np.testing.assert_array_equal(step_of(episode.obs), rows)
    np.testing.assert_array_equal(marker_of(episode.obs), marker)
    np.testing.assert_array_equal(episode.reward, rows)  # r_t = t, and r_0 = 0 on the reset row
    assert np.all(episode.action[0] == 0)
    chosen_from = decode(episode.action[1:])
    np.testing.assert_array_equal(chosen_from[:, 0], rows[:-1])  # action[t] was chosen at t-1
    np.testing.assert_array_equal(chosen_from[:, 1], marker)


def test_episode_row_t_holds_obs_t_previous_action_and_reward_t() -> None:
    """run_episodes stores (o_t, a_{t-1}, r_t) per row and what each env really received."""
    envs = [CountingEnv(episode_steps=6), CountingEnv(episode_steps=6)]
    policy = Echo()
    episodes = run_episodes(envs, policy, seeds=[11, 22])
    assert len(episodes) == 2
    for env, episode, marker in zip(envs, episodes, [11, 22], strict=True):
        assert_rows_aligned(episode, marker, steps=6)
        # the stored action of row t is exactly the one the env executed on its step t
        np.testing.assert_array_equal(np.stack(env.received), episode.action[1:])
        assert episode_return(episode) == sum(range(1, 7))
    assert len(policy.seen) == 6  # one policy call per step, for both envs at once


def test_an_episode_that_terminates_early_ends_on_its_last_step() -> None:
    """A terminated env stops at its step; the policy keeps seeing its last frame, unused."""
    envs = [CountingEnv(episode_steps=6, terminate_at=3), CountingEnv(episode_steps=6),
            CountingEnv(episode_steps=4)]
    policy = Echo()
    early, full, short = run_episodes(envs, policy, seeds=[5, 6, 7])
    assert_rows_aligned(early, 5, steps=3)
    assert_rows_aligned(full, 6, steps=6)
    assert_rows_aligned(short, 7, steps=4)
    assert [len(env.received) for env in envs] == [3, 6, 4]  # no step after the end
    seen = np.stack(policy.seen)  # (calls, N, 2)
    assert seen.shape == (6, 3, 2)
    np.testing.assert_array_equal(seen[:, 0, 0], [0, 1, 2, 3, 3, 3])  # frozen last frame
    np.testing.assert_array_equal(seen[:, 1, 0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(seen[:, 2, 0], [0, 1, 2, 3, 4, 4])
    np.testing.assert_array_equal(seen[:, :, 1], np.broadcast_to([5, 6, 7], (6, 3)))
    assert [episode_return(e) for e in (early, full, short)] == [6.0, 21.0, 10.0]


def test_should_stop_raises_interrupted_before_the_next_step() -> None:
    """should_stop is asked before every step; when it turns true no further step is run."""
    envs = [CountingEnv(episode_steps=6), CountingEnv(episode_steps=6, terminate_at=2)]
    asked: list[int] = []

    def stop_on_third_question() -> bool:
        asked.append(len(asked))
        return len(asked) == 3

    policy = Echo()
    with pytest.raises(Interrupted):
        run_episodes(envs, policy, [1, 2], should_stop=stop_on_third_question)
    assert len(asked) == 3 and len(policy.seen) == 2
    assert [len(env.received) for env in envs] == [2, 2]
    # a stop asked for at once runs no step at all
    never = Echo()
    with pytest.raises(Interrupted):
        run_episodes(envs, never, [1, 2], should_stop=lambda: True)
    assert never.seen == [] and [len(env.received) for env in envs] == [0, 0]
    with pytest.raises(ValueError, match="one seed per environment"):
        run_episodes(envs, never, [1])


EPISODE_STEPS = {11: 7, 12: 3, 13: 5, 14: 7, 15: 4, 16: 6}
"""Marker (seed) -> agent steps of the episodes in `filled_replay`: early ends and full."""


def collected_episodes() -> list[Episode]:
    """Episodes of `EPISODE_STEPS`, played two at a time through run_episodes."""
    markers = list(EPISODE_STEPS)
    episodes: list[Episode] = []
    for pair in (markers[0:2], markers[2:4], markers[4:6]):
        envs = [CountingEnv(episode_steps=7, terminate_at=EPISODE_STEPS[m]) for m in pair]
        episodes += run_episodes(envs, Echo(), pair)
    return episodes


def filled_replay(seed: int = 0) -> Replay:
    """A replay holding `collected_episodes()`, with its own seeded generator."""
    replay = Replay(seed=seed)
    for episode in collected_episodes():
        replay.add(episode)
    return replay


L = 4
"""Chunk length of the replay and loss tests: shorter than most episodes, longer than one."""


def test_replay_chunks_keep_the_rows_aligned_and_never_cross_episodes() -> None:
    """Every sampled chunk is L consecutive rows of one episode, (o_t, a_{t-1}, r_t) intact."""
    replay = filled_replay()
    for episode, marker in zip(replay.episodes, EPISODE_STEPS, strict=True):
        assert_rows_aligned(episode, marker, EPISODE_STEPS[marker])
    batch = replay.sample(batch_size=600, length=L)
    step, marker = step_of(batch.obs), marker_of(batch.obs)  # (B, L) each
    assert np.all(marker == marker[:, :1]), "a chunk mixes episodes"
    np.testing.assert_array_equal(step, step[:, :1] + np.arange(L))
    np.testing.assert_array_equal(batch.reward, step)
    chosen_from = decode(batch.action)
    first = step == 0
    assert np.all(batch.action[first] == 0)  # only a chunk at the reset frame starts with 0
    np.testing.assert_array_equal(chosen_from[~first][:, 0], step[~first] - 1)
    np.testing.assert_array_equal(chosen_from[..., 1][~first], marker[~first])
    # every valid start is drawn, including those whose chunk ends on an episode's last row;
    # the 3-step episode (4 rows) has exactly one chunk
    starts = set(zip(marker[:, 0].tolist(), step[:, 0].tolist(), strict=True))
    assert starts == {(m, s) for m, n in EPISODE_STEPS.items() for s in range(n + 2 - L)}


def tiny_model(seed: int = 0) -> WorldModel:
    """A small randomly initialised world model for `CountingEnv`'s two actions."""
    torch.manual_seed(seed)
    return WorldModel(MODEL, A)


def sampled_inputs(model: WorldModel, batch_size: int = 8) -> tuple[TorchBatch, ModelInputs]:
    """A replay batch of `CountingEnv` chunks on the CPU, and its prepared model inputs."""
    batch = to_device(filled_replay(seed=1).sample(batch_size, L), torch.device("cpu"))
    return batch, model.prepare(batch, OBJECTIVE, torch.Generator().manual_seed(2))


def filter_by_hand(model: WorldModel, inputs: ModelInputs
                   ) -> tuple[list[LatentState], list[LatentState]]:
    """Posteriors and priors of every step, one obs_step per step on that step's rows only.

    Step t reads action[:, t] and the encoding of obs[:, t] (encoded on its own) and the
    step's own posterior noise; it starts from the posterior sample of step t - 1.
    """
    B = inputs.obs.shape[0]
    state = model.dynamics.initial_state(B)
    posteriors, priors = [], []
    for t in range(inputs.obs.shape[1]):
        embed = model.encoder(inputs.obs[:, t])
        prior, state = model.dynamics.obs_step(state, inputs.action[:, t], embed,
                                           inputs.state_noise[:, t])
        posteriors.append(state)
        priors.append(prior)
    return posteriors, priors


def diagonal(state: LatentState) -> Independent:
    return Independent(Normal(state.mean, state.std), 1)


def test_loss_pairs_each_step_with_its_own_frame_action_and_reward() -> None:
    """The library's loss equals the loss built step by step from step t's rows alone.

    Per step t: image term -ln N(obs[t]; dec(h_t, s_t), 1), reward term -ln N(reward[t];
    rew(h_t, s_t), 1), KL(q(s_t | h_t, e_t) || p(s_t | h_t)) clamped at F after summing,
    with (h_t, s_t) the posterior built from action[t] and obs[t].
    """
    model = tiny_model()
    batch, inputs = sampled_inputs(model)
    assert np.all(step_of(batch.obs.numpy()) == batch.reward.numpy())  # batch rows aligned
    with torch.no_grad():
        result, posterior = model.elbo(inputs, OBJECTIVE)
        posteriors, priors = filter_by_hand(model, inputs)
        image_nll, reward_nll, kl = [], [], []
        for t, (q, p) in enumerate(zip(posteriors, priors, strict=True)):
            feat = q.feat()
            image_nll.append(-image_log_likelihood(model.decoder(feat), inputs.obs[:, t]))
            reward_nll.append(-reward_log_likelihood(model.reward_model(feat),
                                                     inputs.reward[:, t]))
            kl.append(torch_kl(diagonal(q), diagonal(p)))
    for name, got, want in zip(LatentState._fields, posterior, LatentState.stack(posteriors),
                               strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=name)
    image, reward, kl_t = (torch.stack(x, dim=1) for x in (image_nll, reward_nll, kl))
    m = result.metrics
    torch.testing.assert_close(m["model/image_nll"], image.mean(), atol=1e-3, rtol=1e-6)
    torch.testing.assert_close(m["model/reward_nll"], reward.mean(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m["model/kl"], kl_t.mean(), atol=1e-5, rtol=1e-5)
    kl_term = kl_t.clamp(min=OBJECTIVE.free_nats).mean()
    torch.testing.assert_close(m["model/kl_term"], kl_term, atol=1e-5, rtol=1e-5)
    expected = image.mean() + OBJECTIVE.reward_scale * reward.mean() + kl_term
    torch.testing.assert_close(result.loss.detach(), expected, atol=1e-3, rtol=1e-6)
    # the reward term can tell the pairing: one step off, it would differ by far more
    shifted = -reward_log_likelihood(torch.stack([model.reward_model(q.feat()).detach()
                                                  for q in posteriors[:-1]], 1),
                                     inputs.reward[:, 1:]).mean()
    assert (shifted - reward.mean()).abs() > 0.1


def exact_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (M, K) between rows, without cdist's imprecise matmul shortcut."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


class RewardLookup(nn.Module):
    """A reward model that knows the reward of every step's posterior features.

    keys (M, F) are features [h_t, s_t] filtered by hand, values (M,) their steps' rewards.
    A feature row that matches no key (a prior, or a misfiltered state) raises.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values = keys, values
        self.calls: list[torch.Tensor] = []

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        distance, index = exact_distances(feat.reshape(-1, feat.shape[-1]), self.keys).min(1)
        if distance.max() > 1e-4:
            raise AssertionError(f"the reward model was given features of no posterior step "
                                 f"(distance {distance.max().item():.3g})")
        self.calls.append(index.reshape(feat.shape[:-1]))
        return self.values[index].reshape(feat.shape[:-1])


def test_reward_prediction_from_step_t_features_meets_reward_t() -> None:
    """A reward model that is perfect per step gets the least possible reward loss.

    It returns, for the features of step t, exactly reward[t]: compared with reward[t] that
    costs ln(2 pi) / 2 nats per step; compared with any other step's reward it costs more.
    """
    model = tiny_model()
    batch, inputs = sampled_inputs(model)
    with torch.no_grad():
        posteriors, _ = filter_by_hand(model, inputs)
        keys = torch.stack([q.feat() for q in posteriors], dim=1)  # (B, L, F)
        # no two steps share features, so the lookup is unambiguous
        gaps = exact_distances(keys.flatten(0, 1), keys.flatten(0, 1))
        assert (gaps + torch.eye(gaps.shape[0]) * 1e9).min() > 1e-2
        model.reward_model = RewardLookup(keys.flatten(0, 1), inputs.reward.flatten())
        result, _ = model.elbo(inputs, OBJECTIVE)
    assert len(model.reward_model.calls) == 1
    np.testing.assert_array_equal(model.reward_model.calls[0].numpy(),
                                  np.arange(keys.shape[0] * L).reshape(-1, L))
    torch.testing.assert_close(result.metrics["model/reward_nll"],
                               torch.tensor(HALF_LOG_2PI), atol=1e-6, rtol=0)
    assert np.all(batch.reward.numpy()[:, 1:] != batch.reward.numpy()[:, :-1])


def record_obs_steps(model: WorldModel, monkeypatch: pytest.MonkeyPatch
                     ) -> list[dict[str, torch.Tensor]]:
    """Record the action and embedding of every `rssm.obs_step` call of the model."""
    calls: list[dict[str, torch.Tensor]] = []
    original: Callable[..., Any] = model.dynamics.obs_step

    def recording(prev: LatentState, action: torch.Tensor, embed: torch.Tensor,
                  *args: Any, **kwargs: Any) -> tuple[LatentState, LatentState]:
        calls.append({"action": action.detach().clone(), "embed": embed.detach().clone()})
        return original(prev, action, embed, *args, **kwargs)

    monkeypatch.setattr(model.dynamics, "obs_step", recording)
    return calls


def test_training_filters_frame_t_with_the_action_that_led_to_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In the loss, filtering step t reads obs[t] and action[t] = a_{t-1}, chosen at t - 1."""
    model = tiny_model()
    batch, inputs = sampled_inputs(model)
    calls = record_obs_steps(model, monkeypatch)
    with torch.no_grad():
        model.elbo(inputs, OBJECTIVE)
        embeds = [model.encoder(inputs.obs[:, t]) for t in range(L)]
    assert len(calls) == L
    step = step_of(batch.obs.numpy())  # (B, L)
    for t, call in enumerate(calls):
        torch.testing.assert_close(call["embed"], embeds[t], atol=1e-5, rtol=1e-5)
        action = call["action"].numpy()
        reset = step[:, t] == 0
        assert np.all(action[reset] == 0)
        np.testing.assert_array_equal(decode(action[~reset])[:, 0], step[~reset, t] - 1)
        np.testing.assert_array_equal(decode(action[~reset])[:, 1],
                                      marker_of(batch.obs.numpy())[~reset, t])


def test_acting_filters_each_frame_with_the_action_training_pairs_it_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's filtering step at o_t feeds the action stored in row t of the episode.

    Two envs, one ending early, the agent exploring with noise large enough that actions are
    clipped (the env refuses actions outside its bounds). Training on the stored episode
    (one chunk of all its rows) feeds the same actions to the same filtering steps.
    """
    model = tiny_model().eval()
    planner = CEMPlanner(PLAN, -torch.ones(A), torch.ones(A))
    agent = Agent(model, planner, torch.Generator().manual_seed(0))
    envs = [CountingEnv(episode_steps=5, terminate_at=3), CountingEnv(episode_steps=5)]
    calls = record_obs_steps(model, monkeypatch)
    agent.reset(len(envs))
    episodes = run_episodes(envs, lambda obs: agent.act(obs, exploration_noise=2.0), [3, 4])
    assert [e.steps for e in episodes] == [3, 5] and len(calls) == 5
    acted = torch.stack([call["action"] for call in calls], dim=1)  # (N, calls, A)
    clipped = 0
    for n, (env, episode) in enumerate(zip(envs, episodes, strict=True)):
        rows = episode.length
        # at frame o_t (t < rows - 1 were acted on) the agent fed a_{t-1} = action[t]
        np.testing.assert_array_equal(acted[n, :rows - 1].numpy(), episode.action[:rows - 1])
        np.testing.assert_array_equal(np.stack(env.received), episode.action[1:])
        clipped += int(np.sum(np.abs(episode.action[1:]) == 1))
        calls.clear()
        replay = Replay(seed=0)
        replay.add(episode)
        batch = to_device(replay.sample(1, rows), torch.device("cpu"))
        with torch.no_grad():
            model.loss(batch, OBJECTIVE, generator=torch.Generator().manual_seed(0))
        trained = torch.cat([call["action"] for call in calls])
        np.testing.assert_array_equal(trained.numpy(), episode.action)
        np.testing.assert_array_equal(trained[:rows - 1].numpy(), acted[n, :rows - 1].numpy())
    assert clipped > 0
