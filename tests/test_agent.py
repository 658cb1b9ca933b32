"""Agent: filters like RSSM.observe, feeds back the executed action, explores within bounds."""

import itertools

import numpy as np
import pytest
import torch

from planet_torch.agent import Agent
from planet_torch.config import ModelConfig, PlannerConfig
from planet_torch.latent import LatentState
from planet_torch.planner import CEMPlanner
from planet_torch.preprocess import preprocess
from planet_torch.world_model import WorldModel

BIT_DEPTH = 4
"""Not the default 5: the agent must see the pixels at its model's bit depth."""
MODEL = ModelConfig(belief_size=16, state_size=4, hidden_size=16, depth=2, reward_units=16,
                    bit_depth=BIT_DEPTH)
PLAN = PlannerConfig(horizon=3, iterations=2, candidates=16, elites=4)


def make_agent(low=(-1.0, -1.0), high=(1.0, 1.0), seed: int | None = 0) -> Agent:
    torch.manual_seed(0)
    model = WorldModel(MODEL, len(low)).eval()
    planner = CEMPlanner(PLAN, torch.tensor(low), torch.tensor(high))
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return Agent(model, planner, generator)


def observations(steps: int, num_envs: int, seed: int = 0) -> np.ndarray:
    """Random uint8 frames (T, N, 64, 64, 3)."""
    return np.random.default_rng(seed).integers(0, 256, (steps, num_envs, 64, 64, 3),
                                                dtype=np.uint8)


def test_shapes_and_types():
    agent = make_agent()
    agent.reset(3)
    assert agent.state.belief.shape == (3, MODEL.belief_size)
    assert torch.equal(agent.prev_action, torch.zeros(3, 2))
    obs = observations(2, 3)
    posterior = agent.observe(obs[0])
    assert isinstance(posterior, LatentState)
    assert posterior.belief.shape == (3, MODEL.belief_size)
    assert posterior.state.shape == posterior.mean.shape == posterior.std.shape == (3, 4)
    action = agent.act(obs[1])
    assert isinstance(action, np.ndarray)
    assert action.shape == (3, 2) and action.dtype == np.float32


def test_reset_starts_new_episodes_from_zero():
    agent = make_agent()
    agent.reset(2)
    for frame in observations(3, 2):
        agent.act(frame, exploration_noise=0.3)
    agent.reset(4)
    assert agent.state.belief.shape == (4, MODEL.belief_size)
    assert torch.count_nonzero(agent.state.belief) == 0
    assert torch.count_nonzero(agent.state.state) == 0
    assert torch.equal(agent.prev_action, torch.zeros(4, 2))


def test_act_or_observe_before_reset_raises():
    agent = make_agent()
    frame = observations(1, 1)[0]
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(frame)
    with pytest.raises(RuntimeError, match="reset"):
        agent.observe(frame)


@pytest.mark.parametrize("count", [1, 3])
def test_wrong_number_of_observations_raises(count):
    agent = make_agent()
    agent.reset(2)
    with pytest.raises(ValueError, match=r"expected observations for 2 environments"):
        agent.act(observations(1, count)[0])


def test_prev_action_is_the_returned_action_and_belief_follows_observations():
    agent = make_agent()
    agent.reset(2)
    beliefs = [agent.state.belief.clone()]
    for frame in observations(4, 2):
        action = agent.act(frame, exploration_noise=0.5)
        np.testing.assert_array_equal(agent.prev_action.numpy(), action)
        beliefs.append(agent.state.belief.clone())
    for before, after in itertools.pairwise(beliefs):
        assert not torch.allclose(before, after)
    # Two environments seeing different frames end in different beliefs.
    assert not torch.allclose(agent.state.belief[0], agent.state.belief[1])


def test_belief_is_built_from_the_executed_noisy_clipped_action():
    # h_t = f(h_{t-1}, s_{t-1}, a_{t-1}) with a_{t-1} the action the agent returned (after
    # noise and clipping), and a zero action before the first frame. The belief does not depend
    # on the posterior noise of step t, so it can be recomputed from the agent's states alone.
    agent = make_agent()
    agent.reset(2)
    rssm = agent.model.dynamics
    previous, action = rssm.initial_state(2), torch.zeros(2, 2)
    clipped = 0
    for frame in observations(5, 2):
        returned = torch.from_numpy(agent.act(frame, exploration_noise=2.0))
        with torch.no_grad():
            expected = rssm.img_step(previous, action).belief
        torch.testing.assert_close(agent.state.belief, expected, atol=1e-6, rtol=0)
        clipped += int((returned.abs() == 1).sum())
        previous, action = agent.state, returned
    assert clipped > 0  # with noise std 2 some actions were clipped, so clipping is covered


def test_filtering_equals_rssm_observe():
    # The agent draws, per frame, dequantisation noise (preprocess) then the posterior's
    # standard-normal draw, from its generator. Replaying those draws from a generator with
    # the same seed, RSSM.observe over the whole sequence must give the same posteriors.
    T, N = 4, 2
    agent = make_agent(seed=7)
    agent.reset(N)
    obs = observations(T, N, seed=3)
    actions = torch.randn(N, T, 2, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    actions[:, 0] = 0  # the reset frame's previous action
    posteriors = []
    for t in range(T):
        agent.prev_action = actions[:, t]
        posteriors.append(agent.observe(obs[t]))
    posterior = LatentState.stack(posteriors)

    g = torch.Generator().manual_seed(7)
    pixels, eps = [], []
    for t in range(T):
        pixels.append(preprocess(torch.from_numpy(obs[t]), BIT_DEPTH, g))
        eps.append(torch.randn(N, MODEL.state_size, generator=g))
    model = agent.model
    with torch.no_grad():
        embeds = model.encoder(torch.stack(pixels, dim=1))  # (N, T, E), one batched call
        expected, _ = model.dynamics.observe(embeds, actions, noise=torch.stack(eps, dim=1))
    for name, got, want in zip(LatentState._fields, posterior, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_same_seed_same_actions(noise):
    obs = observations(3, 2)
    runs = []
    for seed in (11, 11, 12):
        agent = make_agent(seed=seed)
        agent.reset(2)
        runs.append(np.stack([agent.act(frame, exploration_noise=noise) for frame in obs]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_exploration_adds_gaussian_noise_to_the_plan_then_clips(sigma):
    # Same seed: both agents plan the same first action from the same draws; the exploring one
    # then adds sigma * eps with eps the generator's next standard-normal draw, and clips.
    frame = observations(1, 3)[0]
    clean, noisy = make_agent(seed=5), make_agent(seed=5)
    clean.reset(3)
    noisy.reset(3)
    planned = torch.from_numpy(clean.act(frame, exploration_noise=0.0))
    explored = torch.from_numpy(noisy.act(frame, exploration_noise=sigma))
    eps = torch.randn(3, 2, generator=clean.generator)  # clean's generator is where noisy's was
    torch.testing.assert_close(explored, (planned + sigma * eps).clamp(-1, 1), atol=1e-6, rtol=0)
    assert not torch.equal(explored, planned)


@pytest.mark.parametrize(("low", "high"), [
    ((-1.0, -1.0), (1.0, 1.0)),
    ((-2.0, 0.0), (1.0, 3.0)),
    ((0.2, -0.1), (0.3, 0.1)),
])
def test_actions_stay_in_bounds_with_exploration(low, high):
    agent = make_agent(low, high, seed=3)
    agent.reset(4)
    actions = np.stack([agent.act(frame, exploration_noise=noise)
                        for frame, noise in zip(observations(6, 4), [0, 0.3, 1, 3, 10, 100],
                                                strict=True)])
    assert np.all(actions >= np.float32(low)) and np.all(actions <= np.float32(high))
    # large noise drove some actions onto both bounds exactly
    assert np.any(actions == np.float32(low)) and np.any(actions == np.float32(high))


def test_negative_exploration_noise_is_refused():
    agent = make_agent()
    agent.reset(1)
    with pytest.raises(ValueError, match="exploration_noise"):
        agent.act(np.zeros((1, 64, 64, 3), np.uint8), exploration_noise=-0.1)


@pytest.mark.parametrize("kind", ["cem", "random_shooting"])
def test_an_agent_acts_with_each_planner_kind(kind):
    """`assembly.make_agent` builds the config's planner; its actions stay within the bounds
    and repeat with the seed."""
    from planet_torch import assembly
    from planet_torch.config import Config

    cfg = Config(model=MODEL, planner=PlannerConfig(kind=kind, horizon=3, iterations=2,
                                                    candidates=16, elites=4))
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 3.0])
    actions = []
    for _ in range(2):
        torch.manual_seed(0)
        model = WorldModel(MODEL, 2).eval()
        agent = assembly.make_agent(cfg, model, low, high, torch.Generator().manual_seed(0))
        agent.reset(2)
        actions.append(np.stack([agent.act(frame, exploration_noise=0.3)
                                 for frame in observations(3, 2)]))
    assert np.array_equal(actions[0], actions[1])
    assert actions[0].shape == (3, 2, 2)
    assert np.all(actions[0] >= low.numpy()) and np.all(actions[0] <= high.numpy())
