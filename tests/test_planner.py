"""CEMPlanner and RandomShootingPlanner: find known optima, follow their recipes exactly, plan
agents independently.

Most tests use a hand-made latent model, `Integrator`: the "belief" is a position p in R^A,
each imagined step adds the action (p_k = p_0 + a_1 + ... + a_k) and the reward of a step is
-||p_k - target||^2. Its best action sequence is known in closed form: move towards the
target as fast as the bounds allow, per dimension, then stay. The batched-planning tests use
a real (small, randomly initialised) WorldModel.
"""

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from planet_torch import assembly
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.config import ModelConfig, PlannerConfig
from planet_torch.latent import LatentState
from planet_torch.planner import (
    OFFICIAL_MIN_VARIANCE,
    CEMPlanner,
    PlanNoise,
    RandomShootingPlanner,
    refit,
)
from planet_torch.world_model import WorldModel

SMALL_MODEL = ModelConfig(belief_size=16, state_size=4, hidden_size=16, depth=2,
                          reward_units=16)


class IntegratorRSSM(nn.Module):
    """imagine: position p_k = p_0 + cumsum(a)_k, where p_0 is the start state's belief."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def imagine(self, actions: torch.Tensor, state: LatentState,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> LatentState:
        self.calls.append({"inference": torch.is_inference_mode_enabled(),
                           "grad": torch.is_grad_enabled(), "shape": tuple(actions.shape)})
        position = state.belief[:, None, :] + actions.cumsum(dim=1)  # (M, H, A)
        zeros = torch.zeros(*position.shape[:2], 1)
        return LatentState(position, zeros, zeros, torch.ones_like(zeros))


class DistanceReward(nn.Module):
    """r = -||p - target||^2 on feat = [p, s] (s is one dummy dimension)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = torch.as_tensor(target, dtype=torch.float32)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return -((feat[..., :-1] - self.target) ** 2).sum(-1)


class Integrator(nn.Module):
    """A `LatentModel` with a known best action sequence."""

    def __init__(self, target) -> None:
        super().__init__()
        self.dynamics = IntegratorRSSM()
        self.reward_model = DistanceReward(target)


def positions(start) -> LatentState:
    """Start states (N, ...) of the integrator at the given positions (N, A)."""
    belief = torch.as_tensor(start, dtype=torch.float32)
    zeros = torch.zeros(belief.shape[0], 1)
    return LatentState(belief, zeros, zeros, torch.ones_like(zeros))


def first_optimal_action(start, target, low, high) -> np.ndarray:
    """a_1 of the best sequence: per dimension, the step towards the target, clipped."""
    return np.clip(np.subtract(target, start), low, high)


# With H = 3, I = 10, J = 1000, K = 100, over 50 seeds CEM landed within 0.019 of the optimal
# first action on [-1, 1] and within 0.088 on the asymmetric box [-2, 1] x [0, 3] (it stops
# short of optima far from the initial mean; longer horizons converge less tightly). The
# asserts allow 5 % of the widest bound range: 0.1 on [-1, 1], 0.15 on the asymmetric box.
KNOWN = PlannerConfig(horizon=3, iterations=10, candidates=1000, elites=100)


def tolerance(low, high) -> float:
    return 0.05 * float(np.max(np.subtract(high, low)))


@pytest.mark.parametrize(("low", "high", "start", "target"), [
    pytest.param([-1, -1], [1, 1], [[0, 0]], [0.5, -0.3], id="inside"),
    pytest.param([-1, -1], [1, 1], [[0, 0]], [3.0, -0.2], id="clipped-high"),
    pytest.param([-1, -1], [1, 1], [[0.5, 0.5]], [-4.0, 0.2], id="clipped-low"),
    pytest.param([-2, 0], [1, 3], [[0, 0]], [-1.5, 2.5], id="asymmetric-inside"),
    pytest.param([-2, 0], [1, 3], [[0, 0]], [-4.0, -1.0], id="asymmetric-both-at-low"),
    pytest.param([-2, 0], [1, 3], [[0, 0]], [5.0, 7.0], id="asymmetric-both-at-high"),
    pytest.param([-2, 0], [1, 3], [[0, 0], [1, 1], [-3, 2]], [-1.5, 2.5],
                 id="asymmetric-three-agents"),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_finds_first_action_of_known_optimum(low, high, start, target, seed):
    planner = CEMPlanner(KNOWN, torch.tensor(low), torch.tensor(high))
    action = planner.plan(Integrator(target), positions(start),
                          generator=torch.Generator().manual_seed(seed))
    expected = first_optimal_action(np.array(start), target, low, high)
    assert action.shape == (len(start), 2)
    np.testing.assert_allclose(action.numpy(), expected, atol=tolerance(low, high))


def test_agents_with_different_starts_get_their_own_optimum():
    # Same target, different positions: each agent's answer must be its own, in its own row
    # (a planner pairing candidates with another agent's state would swap or mix the rows).
    start = [[0.0, 0.0], [0.8, -0.6], [-0.5, 0.9]]
    target = [0.3, 0.2]
    planner = CEMPlanner(KNOWN, -torch.ones(2), torch.ones(2))
    action = planner.plan(Integrator(target), positions(start),
                          generator=torch.Generator().manual_seed(0))
    expected = first_optimal_action(np.array(start), target, -1, 1)
    np.testing.assert_allclose(action.numpy(), expected, atol=tolerance(-1, 1))
    # every pair of agents differs by far more than the tolerance
    gaps = np.abs(expected[:, None] - expected[None]).max(-1)
    assert gaps[~np.eye(3, dtype=bool)].min() > 5 * tolerance(-1, 1)


def reference_cem(start, target, low, high, cfg: PlannerConfig, action_noise) -> np.ndarray:
    """CEM as the paper states it, one agent at a time, in float64 numpy, for the integrator.

    Per iteration: candidates = clip(mu + sigma * eps); return = sum of rewards over the
    horizon; mu, sigma = mean and sqrt(population variance + cfg.min_variance) of the K best;
    starting from mu = centre of the bounds and sigma = half their width. Returns mu[0].
    """
    low, high = np.asarray(low, float), np.asarray(high, float)
    out = []
    for n, p0 in enumerate(np.asarray(start, float)):
        mean = np.broadcast_to((low + high) / 2, (cfg.horizon, len(low)))
        std = np.broadcast_to((high - low) / 2, (cfg.horizon, len(low)))
        for i in range(cfg.iterations):
            candidates = np.clip(mean + std * action_noise[i, n], low, high)  # (J, H, A)
            position = p0 + np.cumsum(candidates, axis=1)
            returns = -((position - target) ** 2).sum(axis=(1, 2))
            elites = candidates[np.argsort(-returns)[:cfg.elites]]
            mean, std = elites.mean(axis=0), np.sqrt(elites.var(axis=0) + cfg.min_variance)
        out.append(mean[0])
    return np.stack(out)


@pytest.mark.parametrize("min_variance", [0.0, 1e-6])
def test_matches_reference_cem_with_explicit_noise(min_variance):
    # Pins the recipe: clipping of candidates, sum of rewards, top-K (not bottom-K), refit to
    # mean and standard deviation (not mean absolute deviation, not the unbiased estimate),
    # start from the centre and half-width of asymmetric bounds.
    cfg = PlannerConfig(horizon=4, iterations=4, candidates=64, elites=8,
                        min_variance=min_variance)
    low, high = [-2.0, 0.0], [1.0, 3.0]
    start, target = [[0.0, 0.0], [1.0, 1.0]], [-1.5, 2.5]
    planner = CEMPlanner(cfg, torch.tensor(low), torch.tensor(high))
    action_shape, state_shape = planner.noise_shape(num_agents=2, state_size=1)
    g = torch.Generator().manual_seed(0)
    noise = PlanNoise(torch.randn(action_shape, generator=g), torch.randn(state_shape, generator=g))
    action = planner.plan(Integrator(target), positions(start), noise)
    expected = reference_cem(start, target, low, high, cfg, noise.action.double().numpy())
    np.testing.assert_allclose(action.numpy(), expected, atol=1e-5)


def test_one_batched_rollout_of_all_agents_and_candidates_in_inference_mode():
    cfg = PlannerConfig(horizon=3, iterations=2, candidates=10, elites=2)
    model = Integrator([0.0, 0.0])
    planner = CEMPlanner(cfg, -torch.ones(2), torch.ones(2))
    with torch.enable_grad():
        action = planner.plan(model, positions([[0.0, 0.0]] * 4))
    assert [call["shape"] for call in model.dynamics.calls] == [(40, 3, 2)] * 2
    assert all(call["inference"] and not call["grad"] for call in model.dynamics.calls)
    assert action.shape == (4, 2) and action.dtype == torch.float32
    assert torch.is_inference(action) and not action.requires_grad


# Batched planning with a real world model -------------------------------------------------

SMALL_PLAN = PlannerConfig(horizon=5, iterations=4, candidates=100, elites=10)


def small_world_model(action_size: int = 3) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(SMALL_MODEL, action_size).eval()


def distinct_states(model: WorldModel, num_agents: int, seed: int = 0) -> LatentState:
    """N clearly different states: a few prior steps under large random actions."""
    g = torch.Generator().manual_seed(seed)
    state = model.dynamics.initial_state(num_agents)
    with torch.inference_mode():
        for _ in range(3):
            action = 3 * torch.randn(num_agents, model.action_size, generator=g)
            state = model.dynamics.img_step(state, action, generator=g)
    return state


def explicit_noise(planner: CEMPlanner, num_agents: int, state_size: int,
                   seed: int = 1) -> PlanNoise:
    action_shape, state_shape = planner.noise_shape(num_agents, state_size)
    g = torch.Generator().manual_seed(seed)
    return PlanNoise(torch.randn(action_shape, generator=g), torch.randn(state_shape, generator=g))


def agent_slice(noise: PlanNoise, n: int) -> PlanNoise:
    return PlanNoise(noise.action[:, n:n + 1], noise.state[:, n:n + 1])


class RepeatPairing(nn.Module):
    """Wraps a world model so that the planner's rollout sees the start states paired as a
    planner using `state.repeat(J)` instead of `state.repeat_interleave(J)` would pair them:
    sequence r starts from agent r mod N rather than agent r // J (the known defect)."""

    def __init__(self, model: WorldModel, num_agents: int, candidates: int) -> None:
        super().__init__()
        self.reward_model = model.reward_model
        inner, N, J = model.dynamics, num_agents, candidates

        class Rssm(nn.Module):
            def imagine(self, actions, state, noise=None, generator=None):
                wrong = state.map(lambda x: x[::J].repeat(J, *[1] * (x.dim() - 1)))
                assert wrong.belief.shape == state.belief.shape == (N * J, inner.belief_size)
                return inner.imagine(actions, wrong, noise, generator)

        self.dynamics = Rssm()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batched_planning_equals_planning_each_agent_alone(precision):
    model = small_world_model()
    planner = CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3), precision=precision)
    N = 3
    state = distinct_states(model, N)
    noise = explicit_noise(planner, N, SMALL_MODEL.state_size)
    together = planner.plan(model, state, noise)
    alone = torch.cat([planner.plan(model, state.map(lambda x, n=n: x[n:n + 1]),
                                    agent_slice(noise, n)) for n in range(N)])
    assert together.shape == (N, 3)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_batched_equality_check_catches_wrong_state_pairing():
    # The check above must be able to fail: (a) swapping the agents' states moves the answer
    # well beyond its tolerance, and (b) a rollout paired like `repeat` instead of
    # `repeat_interleave` breaks the equality.
    model = small_world_model()
    planner = CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    state = distinct_states(model, 2)
    noise = explicit_noise(planner, 2, SMALL_MODEL.state_size)
    right = planner.plan(model, state, noise)
    swapped = planner.plan(model, state.map(lambda x: x.flip(0)), noise)
    assert (right - swapped).abs().max() > 1e-2
    wrong = planner.plan(RepeatPairing(model, 2, SMALL_PLAN.candidates), state, noise)
    assert (right - wrong).abs().max() > 1e-2


@pytest.mark.parametrize("planner_class", [CEMPlanner, RandomShootingPlanner])
def test_explicit_noise_pins_the_result_and_generator_pins_the_draws(planner_class):
    model = small_world_model()
    planner = planner_class(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    state = distinct_states(model, 2)
    noise = explicit_noise(planner, 2, SMALL_MODEL.state_size)
    assert torch.equal(planner.plan(model, state, noise), planner.plan(model, state, noise))
    a = planner.plan(model, state, generator=torch.Generator().manual_seed(5))
    b = planner.plan(model, state, generator=torch.Generator().manual_seed(5))
    c = planner.plan(model, state, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_plan_returns_inference_tensor_on_the_models_device():
    model = small_world_model()
    for p in model.parameters():
        assert p.requires_grad
    planner = CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    state = distinct_states(model, 2)
    with torch.enable_grad():
        action = planner.plan(model, state)
    assert action.shape == (2, 3) and action.dtype == torch.float32
    assert action.device == model.device
    assert torch.is_inference(action) and not action.requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_plan_on_cuda_with_cpu_bounds():
    model = small_world_model()
    state = distinct_states(model, 2).map(lambda x: x.cuda())
    model.cuda()
    planner = CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    action = planner.plan(model, state, generator=torch.Generator("cuda").manual_seed(0))
    assert action.device == model.device and action.shape == (2, 3)
    assert torch.all(action >= -1) and torch.all(action <= 1)


# Bounds ------------------------------------------------------------------------------------

BOUNDS = [
    ([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]),
    ([-2.0, 0.0, 0.5], [1.0, 3.0, 0.6]),
    ([0.0, -5.0, -0.01], [10.0, -4.0, 0.01]),
]


@pytest.mark.parametrize(("low", "high"), BOUNDS)
def test_actions_never_leave_the_bounds(low, high):
    model = small_world_model()
    planner = CEMPlanner(PlannerConfig(horizon=3, iterations=3, candidates=50, elites=5),
                         torch.tensor(low), torch.tensor(high))
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        N = 8
        state = LatentState(5 * torch.randn(N, SMALL_MODEL.belief_size, generator=g),
                            5 * torch.randn(N, SMALL_MODEL.state_size, generator=g),
                            torch.zeros(N, SMALL_MODEL.state_size),
                            torch.ones(N, SMALL_MODEL.state_size))
        action = planner.plan(model, state, generator=g)
        assert torch.all(action >= torch.tensor(low)) and torch.all(action <= torch.tensor(high))
        # Huge explicit noise: every candidate is clipped, so are the elites' mean and thus
        # the returned action.
        noise = explicit_noise(planner, N, SMALL_MODEL.state_size, seed=trial)
        noise = PlanNoise(100 * noise.action, noise.state)
        action = planner.plan(model, state, noise)
        assert torch.all(action >= torch.tensor(low)) and torch.all(action <= torch.tensor(high))


@pytest.mark.parametrize(("low", "high"), [
    pytest.param([1.0, 0.0], [0.0, 1.0], id="low-above-high"),
    pytest.param([0.0, 0.0], [0.0, 1.0], id="low-equals-high"),
    pytest.param([-1.0, -1.0], [1.0, 1.0, 1.0], id="different-sizes"),
    pytest.param([[-1.0, -1.0]], [[1.0, 1.0]], id="two-dimensional"),
    pytest.param(-1.0, 1.0, id="scalar"),
    pytest.param([math.nan, -1.0], [1.0, 1.0], id="nan"),
])
def test_bad_bounds_raise(low, high):
    with pytest.raises(ValueError, match="action bounds"):
        CEMPlanner(PlannerConfig(), torch.tensor(low), torch.tensor(high))


@pytest.mark.parametrize(("low", "high"), [
    pytest.param([-math.inf, -1.0], [math.inf, 1.0], id="both-infinite"),
    pytest.param([-1.0, -1.0], [math.inf, 1.0], id="high-infinite"),
])
def test_infinite_bounds_raise(low, high):
    with pytest.raises(ValueError, match="action bounds"):
        CEMPlanner(PlannerConfig(), torch.tensor(low), torch.tensor(high))


def test_bounds_accept_numpy_and_lists():
    planner = CEMPlanner(PlannerConfig(), np.array([-2.0, 0.0]), [1.0, 3.0])
    assert planner.action_size == 2
    assert planner.low.dtype == planner.high.dtype == torch.float32


@pytest.mark.parametrize("which", ["action", "state"])
@pytest.mark.parametrize("wrong", ["agents", "candidates", "horizon", "last", "iterations"])
def test_noise_of_wrong_shape_raises(which, wrong):
    model = small_world_model()
    planner = CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    state = distinct_states(model, 2)
    noise = explicit_noise(planner, 2, SMALL_MODEL.state_size)
    axis = {"iterations": 0, "agents": 1, "candidates": 2, "horizon": 3, "last": 4}[wrong]
    bad = getattr(noise, which)
    bad = torch.cat([bad, bad.narrow(axis, 0, 1)], dim=axis)
    with pytest.raises(ValueError, match="noise must have shapes"):
        planner.plan(model, state, noise._replace(**{which: bad}))


@pytest.mark.parametrize(("changes", "says"), [
    ({"elites": 20, "candidates": 10}, "planner.elites must be in 1..planner.candidates (10)"),
    ({"elites": 0}, "planner.elites must be in 1..planner.candidates (1000), got 0"),
    ({"horizon": 0}, "planner.horizon must be an integer >= 1"),
    ({"iterations": 0}, "planner.iterations must be an integer >= 1")])
def test_impossible_planner_settings_raise(changes, says):
    """The planner's config refuses them when it is made, so no planner can hold them."""
    with pytest.raises(ValueError, match=re.escape(says)):
        PlannerConfig(**changes)


# CEM's refit of sigma ---------------------------------------------------------------------


def test_refit_floors_sigma_where_all_elites_sit_on_one_bound():
    """sigma = sqrt(var + 1e-6), as the official planner: 1e-3 where every elite is equal."""
    assert OFFICIAL_MIN_VARIANCE == 1e-6
    elites = torch.tensor([1.0, 1.0, 1.0, 1.0]).view(1, 4, 1, 1)  # all clipped to high = 1
    assert refit(elites)[1].item() == 0.0  # the default, no floor
    mean, std = refit(elites, OFFICIAL_MIN_VARIANCE)
    assert mean.shape == std.shape == (1, 1, 1, 1)
    assert mean.item() == 1.0
    assert std.item() > 0
    assert std.item() == pytest.approx(1e-3, rel=1e-5)


def test_refit_matches_a_hand_computed_case():
    # Elites -1, 0, 2 in one dimension: mean 1/3, population variance
    # ((-4/3)^2 + (-1/3)^2 + (5/3)^2) / 3 = 42/27 = 14/9; sigma = sqrt(14/9 + 1e-6).
    # A second dimension 0, 1, 0 (mean 1/3, variance 2/9) checks that K is the axis reduced.
    elites = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]).view(1, 3, 1, 2)
    np.testing.assert_allclose(refit(elites)[1].flatten().numpy(),
                               [math.sqrt(14 / 9), math.sqrt(2 / 9)], rtol=1e-6)
    mean, std = refit(elites, OFFICIAL_MIN_VARIANCE)
    assert mean.shape == std.shape == (1, 1, 1, 2)
    np.testing.assert_allclose(mean.flatten().numpy(), [1 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(std.flatten().numpy(),
                               [math.sqrt(14 / 9 + 1e-6), math.sqrt(2 / 9 + 1e-6)], rtol=1e-6)
    # the population variance (divided by K = 3), not the unbiased one (divided by 2)
    assert abs(std[0, 0, 0, 0].item() - math.sqrt(7 / 3)) > 0.1


def test_a_dimension_whose_elites_are_all_clipped_keeps_searching():
    """Iteration 1: huge noise clips every candidate to high = 1 in dimension 0, so all the
    elites sit there. Without the floor sigma would be 0 and iteration 2 could only propose 1
    again; with it, noise -1 proposes 1 - 1e-3, and that is the elites' mean."""
    cfg = PlannerConfig(horizon=1, iterations=2, candidates=8, elites=2,
                        min_variance=OFFICIAL_MIN_VARIANCE)
    planner = CEMPlanner(cfg, -torch.ones(2), torch.ones(2))
    action_shape, state_shape = planner.noise_shape(num_agents=1, state_size=1)
    action = torch.zeros(action_shape)
    action[0, ..., 0] = 100.0  # iteration 1: all candidates at the bound in dimension 0
    action[1, ..., 0] = -1.0   # iteration 2: one sigma below the mean
    got = planner.plan(Integrator([100.0, 0.0]), positions([[0.0, 0.0]]),
                       PlanNoise(action, torch.zeros(state_shape)))
    assert got[0, 0].item() == pytest.approx(1.0 - 1e-3, abs=1e-6)
    assert got[0, 1].item() == 0.0


# Random shooting --------------------------------------------------------------------------


def reference_random_shooting(start, target, low, high, uniform) -> np.ndarray:
    """Random shooting for the integrator in float64 numpy, one agent at a time: candidates
    low + (high - low) u (J, H, A), their summed rewards, the best one's first action."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    out = []
    for n, p0 in enumerate(np.asarray(start, float)):
        candidates = low + (high - low) * uniform[0, n]
        position = p0 + np.cumsum(candidates, axis=1)
        returns = -((position - target) ** 2).sum(axis=(1, 2))
        out.append(candidates[np.argmax(returns), 0])
    return np.stack(out)


def test_random_shooting_matches_reference_with_explicit_noise():
    cfg = PlannerConfig(horizon=4, iterations=10, candidates=64, elites=8)
    low, high = [-2.0, 0.0], [1.0, 3.0]
    start, target = [[0.0, 0.0], [1.0, 1.0]], [-1.5, 2.5]
    planner = RandomShootingPlanner(cfg, torch.tensor(low), torch.tensor(high))
    noise = planner.draw_noise(2, 1, torch.device("cpu"), torch.Generator().manual_seed(0))
    action = planner.plan(Integrator(target), positions(start), noise)
    expected = reference_random_shooting(start, target, low, high, noise.action.double().numpy())
    np.testing.assert_allclose(action.numpy(), expected, atol=1e-6)
    # the answer is one of the candidates, not an average of several
    firsts = (torch.tensor(low) + (torch.tensor(high) - torch.tensor(low))
              * noise.action[0, :, :, 0])  # (N, J, A)
    assert all(torch.isclose(firsts[n], action[n]).all(-1).any() for n in range(2))


def test_random_shooting_is_one_uniform_batch_of_candidates():
    """One iteration whatever `iterations` says: noise (1, N, J, H, ·), uniform on [0, 1),
    and one batched rollout of all N * J sequences; `iterations` and `elites` do not matter."""
    cfg = PlannerConfig(horizon=3, iterations=5, candidates=10, elites=2)
    planner = RandomShootingPlanner(cfg, -torch.ones(2), torch.ones(2))
    assert planner.iterations == 1
    assert planner.noise_shape(4, 1) == ((1, 4, 10, 3, 2), (1, 4, 10, 3, 1))
    noise = planner.draw_noise(4, 1, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert isinstance(noise, PlanNoise)
    assert noise.action.min() >= 0 and noise.action.max() < 1
    assert 0.4 < noise.action.mean().item() < 0.6  # uniform, not standard normal
    model = Integrator([0.5, 0.5])
    action = planner.plan(model, positions([[0.0, 0.0]] * 4), noise)
    assert [call["shape"] for call in model.dynamics.calls] == [(40, 3, 2)]
    assert action.shape == (4, 2) and torch.is_inference(action)
    other = RandomShootingPlanner(PlannerConfig(horizon=3, iterations=1, candidates=10,
                                                elites=9), -torch.ones(2), torch.ones(2))
    assert torch.equal(other.plan(model, positions([[0.0, 0.0]] * 4), noise), action)


@pytest.mark.parametrize(("start", "target", "expected"), [
    pytest.param([[0.0, 0.0]], [0.5, -0.3], [[0.5, -0.3]], id="inside"),
    pytest.param([[0.0, 0.0]], [3.0, -0.2], [[1.0, -0.2]], id="clipped-high"),
    pytest.param([[0.5, 0.5], [0.0, 0.0]], [-4.0, 0.2], [[-1.0, -0.3], [-1.0, 0.2]],
                 id="two-agents"),
])
def test_random_shooting_finds_first_action_of_known_optimum(start, target, expected):
    # H = 1 and J = 2000 candidates on [-1, 1]^2: the best lies within ~0.03 of the optimum
    # (the nearest of 2000 uniform points); 0.1 is 5 % of the bound range, as for CEM above.
    planner = RandomShootingPlanner(PlannerConfig(horizon=1, candidates=2000),
                                    -torch.ones(2), torch.ones(2))
    action = planner.plan(Integrator(target), positions(start),
                          generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(action.numpy(), expected, atol=0.1)


def test_random_shooting_batched_equals_each_agent_alone_and_stays_in_bounds():
    model = small_world_model()
    low, high = torch.tensor([-2.0, 0.0, 0.5]), torch.tensor([1.0, 3.0, 0.6])
    planner = RandomShootingPlanner(SMALL_PLAN, low, high)
    state = distinct_states(model, 3)
    noise = planner.draw_noise(3, SMALL_MODEL.state_size, torch.device("cpu"),
                               torch.Generator().manual_seed(1))
    together = planner.plan(model, state, noise)
    alone = torch.cat([planner.plan(model, state.map(lambda x, n=n: x[n:n + 1]),
                                    agent_slice(noise, n)) for n in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    assert torch.all(together >= low) and torch.all(together <= high)
    # the check can fail: each agent planned with the next agent's draws answers otherwise
    shifted = torch.cat([planner.plan(model, state.map(lambda x, n=n: x[n:n + 1]),
                                      agent_slice(noise, (n + 1) % 3)) for n in range(3)])
    assert (shifted - together).abs().amax(-1).min() > 1e-3


def test_random_shooting_refuses_noise_of_the_wrong_shape():
    model = small_world_model()
    planner = RandomShootingPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3))
    cem_noise = explicit_noise(CEMPlanner(SMALL_PLAN, -torch.ones(3), torch.ones(3)), 2,
                               SMALL_MODEL.state_size)  # I = 4 iterations, not 1
    with pytest.raises(ValueError, match="noise must have shapes"):
        planner.plan(model, distinct_states(model, 2), cem_noise)


# Choosing the planner: --planner.kind -----------------------------------------------------


@pytest.mark.parametrize(("kind", "cls"), [("cem", CEMPlanner),
                                           ("random_shooting", RandomShootingPlanner)])
def test_planner_kind_builds_its_planner(kind, cls):
    cfg = config_lib.override(config_lib.Config(), {"planner.kind": kind,
                                                    "planner.candidates": 10000})
    assembly.check_config(cfg)
    planner = assembly.make_planner(cfg, -torch.ones(2), torch.ones(2))
    assert type(planner) is cls
    assert planner.noise_shape(1, 30)[0] == (planner.iterations, 1, 10000, 12, 2)
    assert planner.iterations == {"cem": 10, "random_shooting": 1}[kind]


def test_the_papers_random_shooting_variant_is_told_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "random_shooting" in help_text and "--planner.candidates 10000" in help_text


def test_an_unknown_planner_kind_is_a_one_line_error(tmp_path, capsys):
    cfg = config_lib.override(config_lib.Config(), {"planner.kind": "mppi"})
    says = "unknown planner.kind 'mppi'; choose one of cem, random_shooting"
    with pytest.raises(ValueError, match=re.escape(says)):
        assembly.check_config(cfg)
    assert main(["train", "--preset", "debug", "--planner.kind", "mppi",
                 "--logdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown planner.kind" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
