"""Model-predictive control in latent space (paper section 3): CEM, and random shooting.

For each of N agents, from its current posterior state, the cross-entropy method (`CEMPlanner`,
`--planner.kind cem`) runs, every iteration i = 1..I:

    a^(j)_{t:t+H} ~ clip(Normal(mu, sigma), low, high)            j = 1..J candidates
    s_{t+k} ~ p(s_{t+k} | h_{t+k}), h_{t+k} = f(h, s, a)           open-loop prior rollout
    R^(j) = sum_{k=1..H} E[ p(r_{t+k} | h_{t+k}, s_{t+k}) ]        predicted mean rewards
    mu, sigma <- mean and sqrt(variance + v) of the K best candidates

starting from mu = centre of the action bounds and sigma = half their width (Normal(0, I) for
the usual [-1, 1] bounds) at every call, and returning mu's first action. The floor v is
`planner.min_variance`: 0 by default, 1e-6 in the official PlaNet planner
(`OFFICIAL_MIN_VARIANCE`), where a dimension whose elites all sit on one bound keeps
sigma = 1e-3 instead of freezing at 0. All agents and all candidates run in one batched
rollout of N * J sequences; agent n's candidates start from agent n's own state.

Random shooting (`RandomShootingPlanner`, `--planner.kind random_shooting`), the planner of
the paper's agent-design comparison (section 5), is one iteration of the same search without
the refit:

    a^(j)_{t:t+H} ~ Uniform(low, high)                             j = 1..J candidates
    R^(j) as above, from the same rollout
    return the first action of the candidate with the largest R^(j)

The paper's variant scores 1000 x 10 = 10000 candidates, as many as CEM evaluates in its ten
iterations: `--planner.kind random_shooting --planner.candidates 10000`.

Both planners share `RolloutPlanner`: every call first draws its noise (`PlanNoise`: the
candidates' and the imagined states' draws for all I iterations), then runs the search as a
deterministic function of state and noise (`search`: fixed shapes, no host synchronisation).
That split gives three interchangeable ways to run one call, with the same result from the
same draws:

    eager         the search as written (CPU, and CUDA without graphs)
    compiled      the rollout (imagine + reward) through torch.compile (`compile=True`)
    CUDA graph    on CUDA, the whole call captured once per number of agents N into a graph:
                  state and noise are copied into static buffers, the graph replays every
                  kernel of the search in one launch, the action is copied out

Under `precision="bf16"` the dynamics' transition runs under bf16 autocast and the reward model
in fp32, as in training (world_model.py keeps p(r_t | h_t, s_t) in fp32 as well): a bf16
reward output keeps only ~3 significant digits, which was the larger part of the returns'
error (benchmarks/acceleration.md has the measurements).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
from torch import nn

from planet_torch.acceleration import Fallback, autocast, check_precision, compile_or_none
from planet_torch.config import PlannerConfig
from planet_torch.latent import LatentState

GRAPH_WARMUP_CALLS = 2
"""Eager calls on a side stream before a CUDA graph is captured (kernel autotuning, lazy init)."""

OFFICIAL_MIN_VARIANCE = 1e-6
"""What the official PlaNet planner adds to the elites' variance before the square root
(`tf.sqrt(variance + 1e-6)`), `--planner.min_variance 1e-6`: sigma is then never below 1e-3,
so a dimension whose elites are all clipped to one bound keeps searching. The default is 0:
on three seeds of the cpu preset at free nats 3 the floor ended at a median test return of
338 against 412 without it (docs/results.md)."""


class LatentModel(Protocol):
    """What the planner needs of a world model: latent dynamics to imagine with (an RSSM, SSM
    or DRNN, `latent.LatentDynamics`) and a reward model."""

    dynamics: nn.Module
    reward_model: nn.Module


class PlanNoise(NamedTuple):
    """The draws of one planning call, to pin its randomness (tests, graphs, resuming)."""

    action: torch.Tensor
    """(I, N, J, H, A): draws for the candidate action sequences: standard normal for CEM,
    uniform on [0, 1) for random shooting (I = 1)."""
    state: torch.Tensor
    """(I, N, J, H, state_size): standard-normal draws for the imagined states."""


def _parameters(model: LatentModel) -> tuple[torch.Tensor, ...]:
    return (*model.dynamics.parameters(), *model.reward_model.parameters())


class PlanRun(Protocol):
    """The deterministic part of a planning call: state (N, ...) and noise -> actions (N, A)."""

    def __call__(self, model: LatentModel, state: LatentState, noise: PlanNoise
                 ) -> torch.Tensor: ...


def capture_cuda_graph(fn: Callable[[], torch.Tensor], device: torch.device
                       ) -> tuple[Callable[[], None], torch.Tensor]:
    """Capture fn's kernels as a CUDA graph: (replay, output).

    fn runs `GRAPH_WARMUP_CALLS` times on a side stream, then once under capture. Each
    `replay()` reruns the captured kernels on the tensors fn read at capture time and
    rewrites `output` in place.
    """
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(GRAPH_WARMUP_CALLS):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        output = fn()
    return graph.replay, output


class _PlanGraph:
    """One planning call for N agents captured as a CUDA graph on static input buffers.

    The graph reads the model's parameters where they were at capture time; optimiser steps
    and `load_state_dict` update them in place, so replays see the current weights.
    `fits` tells when a new capture is needed (another model, moved parameters, new shapes).
    """

    def __init__(self, run: PlanRun, model: LatentModel, state: LatentState,
                 noise: PlanNoise) -> None:
        self.model = model
        self.pointers = tuple(p.data_ptr() for p in _parameters(model))
        self.state = state.map(torch.clone)
        self.noise = PlanNoise(*(x.clone() for x in noise))
        self.replay, self.action = capture_cuda_graph(
            lambda: run(model, self.state, self.noise), state.belief.device)

    def fits(self, model: LatentModel, state: LatentState, noise: PlanNoise) -> bool:
        """Whether this graph computes the call for this model, state and noise."""
        same_shapes = all(a.shape == b.shape and a.dtype == b.dtype
                          for a, b in zip((*self.state, *self.noise), (*state, *noise),
                                          strict=True))
        return (model is self.model and same_shapes
                and self.pointers == tuple(p.data_ptr() for p in _parameters(model)))

    def __call__(self, state: LatentState, noise: PlanNoise) -> torch.Tensor:
        """Copy state and noise in, replay, copy the action (N, A) out."""
        for static, value in zip((*self.state, *self.noise), (*state, *noise), strict=True):
            static.copy_(value)
        self.replay()
        return self.action.clone()


def refit(elites: torch.Tensor, min_variance: float = 0.0
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """CEM's refit to the K elites (N, K, H, A): mean and sigma over K, each (N, 1, H, A).

    sigma = sqrt(variance + min_variance), with the population variance (divided by K, as
    `tf.nn.moments` in the official planner); min_variance = 0 is the plain standard
    deviation, computed as before the floor existed so that earlier runs replay exactly.
    """
    mean = elites.mean(dim=1, keepdim=True)
    if min_variance == 0:
        return mean, elites.std(dim=1, unbiased=False, keepdim=True)
    variance = elites.var(dim=1, correction=0, keepdim=True)
    return mean, (variance + min_variance).sqrt()


class RolloutPlanner(ABC):
    """What the planners share: candidates scored by imagined rollouts, for N agents at once.

    A subclass says how many iterations a call has (`iterations`), how the candidates' draws
    are made (`draw_action_noise`) and how the search turns state and noise into actions
    (`search`); drawing the noise, checking it, the batched rollout with its precision and
    compilation, and the CUDA graphs are the same for all.

    precision: `fp32`, or `bf16` for autocast around the imagined rollout.
    compile: torch.compile the rollout (with an eager fallback, see `acceleration`).
    cuda_graphs: on CUDA, capture each call's kernels once per N and replay them; None
    takes `cfg.cuda_graph`.
    """

    def __init__(self, cfg: PlannerConfig, action_low: torch.Tensor,
                 action_high: torch.Tensor, precision: str = "fp32", compile: bool = False,
                 cuda_graphs: bool | None = None) -> None:
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        if (low.dim() != 1 or low.shape != high.shape or not torch.all(low < high)
                or not torch.all(torch.isfinite(low) & torch.isfinite(high))):
            raise ValueError(f"action bounds must be finite, 1-D, with low < high; got {low} "
                             f"and {high} (the planner draws its candidates within them)")
        check_precision(precision)
        self.cfg = cfg
        self.low, self.high = low, high
        self.precision = precision
        self.cuda_graphs = cfg.cuda_graph if cuda_graphs is None else cuda_graphs
        self._bounds: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        rollout = compile_or_none(self.rollout, "the planner rollout") if compile else None
        self._rollout = Fallback(rollout, self.rollout, "the compiled planner rollout")
        self._graphs: dict[tuple[torch.device, int], _PlanGraph] = {}
        self._graphed = Fallback(self._graph_call, self.search, "the CUDA-graph planner")

    @property
    def action_size(self) -> int:
        """A, the number of action dimensions."""
        return self.low.numel()

    @property
    def compiled(self) -> bool:
        """Whether the rollout still runs compiled."""
        return self._rollout.active

    @property
    @abstractmethod
    def iterations(self) -> int:
        """I, the iterations of one call: the leading dimension of its `PlanNoise`."""

    @abstractmethod
    def draw_action_noise(self, shape: tuple[int, ...], device: torch.device,
                          generator: torch.Generator | None) -> torch.Tensor:
        """The candidates' draws `PlanNoise.action` of the given shape."""

    @abstractmethod
    def search(self, model: LatentModel, state: LatentState, noise: PlanNoise
               ) -> torch.Tensor:
        """Actions (N, A) from the given draws. No random draws, no host sync."""

    def noise_shape(self, num_agents: int, state_size: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of `PlanNoise.action` and `PlanNoise.state` for a call with N agents."""
        c = self.cfg
        lead = (self.iterations, num_agents, c.candidates, c.horizon)
        return (*lead, self.action_size), (*lead, state_size)

    def draw_noise(self, num_agents: int, state_size: int, device: torch.device,
                   generator: torch.Generator | None = None) -> PlanNoise:
        """Fresh draws for one call: all action draws, then all state draws."""
        action_shape, state_shape = self.noise_shape(num_agents, state_size)
        return PlanNoise(self.draw_action_noise(action_shape, device, generator),
                         torch.randn(state_shape, generator=generator, device=device))

    @torch.inference_mode()
    def plan(self, model: LatentModel, state: LatentState, noise: PlanNoise | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Best first action (N, A) for each agent's state (N, ...), on the model's device."""
        N = state.belief.shape[0]
        device = state.belief.device
        state_size = state.state.shape[-1]
        if noise is None:
            noise = self.draw_noise(N, state_size, device, generator)
        else:
            expected = self.noise_shape(N, state_size)
            actual = (tuple(noise.action.shape), tuple(noise.state.shape))
            if actual != expected:
                raise ValueError(f"planner noise must have shapes {expected}, got {actual}")
        if device.type == "cuda" and self.cuda_graphs:
            return self._graphed(model, state, noise)
        return self.search(model, state, noise)

    def bounds_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """low and high (A,) on the device, copied there once (a graph cannot copy them)."""
        if device not in self._bounds:
            self._bounds[device] = (self.low.to(device), self.high.to(device))
        return self._bounds[device]

    def starts(self, state: LatentState) -> LatentState:
        """Each agent's state (N, ...) repeated for its J candidates: (N * J, ...).

        Agent-major: sequence r starts from agent r // J's state.
        """
        N, J = state.belief.shape[0], self.cfg.candidates
        return state.map(lambda x: x[:, None].expand(N, J, *x.shape[1:]).flatten(0, 1))

    def returns(self, model: LatentModel, candidates: torch.Tensor, start: LatentState,
                state_noise: torch.Tensor) -> torch.Tensor:
        """R (N, J) of the candidates (N, J, H, A), rolled out from `starts(state)` as one
        batch of N * J sequences; state_noise (N, J, H, state_size)."""
        N, J, H, A = candidates.shape
        return self._rollout(model, candidates.reshape(N * J, H, A), start,
                             state_noise.reshape(N * J, H, -1)).reshape(N, J)

    def rollout(self, model: LatentModel, actions: torch.Tensor, start: LatentState,
                state_noise: torch.Tensor) -> torch.Tensor:
        """Returns (M,) of M sequences: sum over k = 1..H of E[p(r_{t+k} | h_{t+k}, s_{t+k})].

        actions (M, H, A), start (M, ...), state_noise (M, H, state_size). The imagined
        states come from the dynamics under the planner's precision; the reward model then runs
        once, in fp32, on all M * H of them.
        """
        with autocast(actions.device, self.precision, cache_enabled=False):
            imagined = model.dynamics.imagine(actions, start, state_noise)
        return model.reward_model(imagined.feat().float()).sum(-1)  # (M, H) -> (M,)

    def _graph_call(self, model: LatentModel, state: LatentState, noise: PlanNoise
                    ) -> torch.Tensor:
        """`search` through the CUDA graph for this device and N, captured on first use."""
        key = (state.belief.device, state.belief.shape[0])
        graph = self._graphs.get(key)
        if graph is None or not graph.fits(model, state, noise):
            self._graphs.pop(key, None)  # free the old graph's memory before capturing anew
            graph = self._graphs[key] = _PlanGraph(self.search, model, state, noise)
        return graph(state, noise)


class CEMPlanner(RolloutPlanner):
    """Plans the next action of N agents at once by CEM over imagined rollouts (`cem`).

    Uses `cfg.iterations` I, `cfg.candidates` J, `cfg.elites` K and `cfg.horizon` H.
    """

    @property
    def iterations(self) -> int:
        """I = `cfg.iterations`."""
        return self.cfg.iterations

    def draw_action_noise(self, shape: tuple[int, ...], device: torch.device,
                          generator: torch.Generator | None) -> torch.Tensor:
        """Standard-normal draws, scaled and shifted by each iteration's sigma and mu."""
        return torch.randn(shape, generator=generator, device=device)

    def cem(self, model: LatentModel, state: LatentState, noise: PlanNoise) -> torch.Tensor:
        """The I iterations from given draws: actions (N, A). No random draws, no host sync."""
        c = self.cfg
        N = state.belief.shape[0]
        K, H, A = c.elites, c.horizon, self.action_size
        low, high = self.bounds_on(state.belief.device)
        start = self.starts(state)
        mean = ((low + high) / 2).expand(N, 1, H, A)
        std = ((high - low) / 2).expand(N, 1, H, A)
        for i in range(c.iterations):
            candidates = torch.clamp(mean + std * noise.action[i], low, high)  # (N, J, H, A)
            returns = self.returns(model, candidates, start, noise.state[i])
            elite = returns.topk(K, dim=1).indices  # (N, K)
            mean, std = refit(candidates.gather(1, elite[:, :, None, None].expand(N, K, H, A)),
                              c.min_variance)
        return mean[:, 0, 0]

    search = cem


class RandomShootingPlanner(RolloutPlanner):
    """Plans by random shooting: the best of J uniformly drawn sequences, in one iteration.

    The paper's agent-design comparison (section 5) evaluates 1000 x 10 = 10000 candidates,
    as many as CEM does in its ten iterations: `--planner.kind random_shooting
    --planner.candidates 10000`. Uses `cfg.candidates` J and `cfg.horizon` H; `cfg.iterations`
    and `cfg.elites` have no effect.
    """

    @property
    def iterations(self) -> int:
        """One iteration: the candidates are drawn once."""
        return 1

    def draw_action_noise(self, shape: tuple[int, ...], device: torch.device,
                          generator: torch.Generator | None) -> torch.Tensor:
        """Uniform draws on [0, 1), mapped onto [low, high] by the search."""
        return torch.rand(shape, generator=generator, device=device)

    def search(self, model: LatentModel, state: LatentState, noise: PlanNoise
               ) -> torch.Tensor:
        """a^(j) = low + (high - low) u^(j); the first action of the best a^(j): (N, A)."""
        N = state.belief.shape[0]
        H, A = self.cfg.horizon, self.action_size
        low, high = self.bounds_on(state.belief.device)
        candidates = torch.clamp(low + (high - low) * noise.action[0], low, high)
        returns = self.returns(model, candidates, self.starts(state), noise.state[0])
        best = returns.argmax(dim=1)  # (N,)
        return candidates.gather(1, best[:, None, None, None].expand(N, 1, H, A))[:, 0, 0]
