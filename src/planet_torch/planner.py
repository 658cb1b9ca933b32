"""Model-predictive control with the cross-entropy method in latent space (paper section 3).

For each of N agents, from its current posterior state, every iteration i = 1..I:

    a^(j)_{t:t+H} ~ clip(Normal(mu, sigma), low, high)            j = 1..J candidates
    s_{t+k} ~ p(s_{t+k} | h_{t+k}), h_{t+k} = f(h, s, a)           open-loop prior rollout
    R^(j) = sum_{k=1..H} E[ p(r_{t+k} | h_{t+k}, s_{t+k}) ]        predicted mean rewards
    mu, sigma <- mean and standard deviation of the K best candidates

starting from mu = centre of the action bounds and sigma = half their width (Normal(0, I) for
the usual [-1, 1] bounds) at every call, and returning mu's first action. All agents and all
candidates run in one batched rollout of N * J sequences; agent n's candidates start from
agent n's own state.

Every call first draws its standard-normal noise (`CEMNoise`: the candidates' and the imagined
states' draws for all I iterations), then runs the iterations as a deterministic function of
state and noise (`CEMPlanner.cem`: fixed shapes, no host synchronisation). That split gives
three interchangeable ways to run one call, with the same result from the same draws:

    eager         the iterations as written (CPU, and CUDA without graphs)
    compiled      the rollout (imagine + reward) through torch.compile (`compile=True`)
    CUDA graph    on CUDA, the whole call captured once per number of agents N into a graph:
                  state and noise are copied into static buffers, the graph replays every
                  kernel of the I iterations in one launch, the action is copied out

Under `precision="bf16"` the RSSM's transition runs under bf16 autocast and the reward model
in fp32, as in training (world_model.py keeps p(r_t | h_t, s_t) in fp32 as well): a bf16
reward output keeps only ~3 significant digits, which was the larger part of the returns'
error (benchmarks/acceleration.md has the measurements).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
from torch import nn

from planet_torch.acceleration import Fallback, autocast, check_precision, compile_or_none
from planet_torch.config import PlannerConfig
from planet_torch.rssm import LatentState

GRAPH_WARMUP_CALLS = 2
"""Eager calls on a side stream before a CUDA graph is captured (kernel autotuning, lazy init)."""


class LatentModel(Protocol):
    """What the planner needs of a world model: an RSSM to imagine with and a reward model."""

    rssm: nn.Module
    reward_model: nn.Module


class CEMNoise(NamedTuple):
    """Standard-normal draws for one planning call, to pin its randomness (tests, graphs)."""

    action: torch.Tensor
    """(I, N, J, H, A): draws for the candidate action sequences."""
    state: torch.Tensor
    """(I, N, J, H, state_size): draws for the imagined states."""


def _parameters(model: LatentModel) -> tuple[torch.Tensor, ...]:
    return (*model.rssm.parameters(), *model.reward_model.parameters())


class CEMRun(Protocol):
    """The deterministic part of a planning call: state (N, ...) and noise -> actions (N, A)."""

    def __call__(self, model: LatentModel, state: LatentState, noise: CEMNoise
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


class _CEMGraph:
    """One CEM call for N agents captured as a CUDA graph on static input buffers.

    The graph reads the model's parameters where they were at capture time; optimiser steps
    and `load_state_dict` update them in place, so replays see the current weights.
    `fits` tells when a new capture is needed (another model, moved parameters, new shapes).
    """

    def __init__(self, run: CEMRun, model: LatentModel, state: LatentState,
                 noise: CEMNoise) -> None:
        self.model = model
        self.pointers = tuple(p.data_ptr() for p in _parameters(model))
        self.state = state.map(torch.clone)
        self.noise = CEMNoise(*(x.clone() for x in noise))
        self.replay, self.action = capture_cuda_graph(
            lambda: run(model, self.state, self.noise), state.belief.device)

    def fits(self, model: LatentModel, state: LatentState, noise: CEMNoise) -> bool:
        """Whether this graph computes the call for this model, state and noise."""
        same_shapes = all(a.shape == b.shape and a.dtype == b.dtype
                          for a, b in zip((*self.state, *self.noise), (*state, *noise),
                                          strict=True))
        return (model is self.model and same_shapes
                and self.pointers == tuple(p.data_ptr() for p in _parameters(model)))

    def __call__(self, state: LatentState, noise: CEMNoise) -> torch.Tensor:
        """Copy state and noise in, replay, copy the action (N, A) out."""
        for static, value in zip((*self.state, *self.noise), (*state, *noise), strict=True):
            static.copy_(value)
        self.replay()
        return self.action.clone()


class CEMPlanner:
    """Plans the next action of N agents at once by CEM over imagined rollouts.

    precision: `fp32`, or `bf16` for autocast around the RSSM's imagined rollout.
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
                             f"and {high} (CEM starts from their centre and half-width)")
        check_precision(precision)
        self.cfg = cfg
        self.low, self.high = low, high
        self.precision = precision
        self.cuda_graphs = cfg.cuda_graph if cuda_graphs is None else cuda_graphs
        self._bounds: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        rollout = compile_or_none(self.rollout, "the planner rollout") if compile else None
        self._rollout = Fallback(rollout, self.rollout, "the compiled planner rollout")
        self._graphs: dict[tuple[torch.device, int], _CEMGraph] = {}
        self._graphed = Fallback(self._graph_call, self.cem, "the CUDA-graph planner")

    @property
    def action_size(self) -> int:
        """A, the number of action dimensions."""
        return self.low.numel()

    @property
    def compiled(self) -> bool:
        """Whether the rollout still runs compiled."""
        return self._rollout.active

    def noise_shape(self, num_agents: int, state_size: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of `CEMNoise.action` and `CEMNoise.state` for a call with N agents."""
        c = self.cfg
        lead = (c.iterations, num_agents, c.candidates, c.horizon)
        return (*lead, self.action_size), (*lead, state_size)

    def draw_noise(self, num_agents: int, state_size: int, device: torch.device,
                   generator: torch.Generator | None = None) -> CEMNoise:
        """Fresh draws for one call: all action draws, then all state draws."""
        action_shape, state_shape = self.noise_shape(num_agents, state_size)
        return CEMNoise(torch.randn(action_shape, generator=generator, device=device),
                        torch.randn(state_shape, generator=generator, device=device))

    @torch.inference_mode()
    def plan(self, model: LatentModel, state: LatentState, noise: CEMNoise | None = None,
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
                raise ValueError(f"CEM noise must have shapes {expected}, got {actual}")
        if device.type == "cuda" and self.cuda_graphs:
            return self._graphed(model, state, noise)
        return self.cem(model, state, noise)

    def bounds_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """low and high (A,) on the device, copied there once (a graph cannot copy them)."""
        if device not in self._bounds:
            self._bounds[device] = (self.low.to(device), self.high.to(device))
        return self._bounds[device]

    def cem(self, model: LatentModel, state: LatentState, noise: CEMNoise) -> torch.Tensor:
        """The I iterations from given draws: actions (N, A). No random draws, no host sync."""
        c = self.cfg
        N = state.belief.shape[0]
        J, K, H, A = c.candidates, c.elites, c.horizon, self.action_size
        low, high = self.bounds_on(state.belief.device)
        # (N * J, ...), agent-major: sequence r starts from agent r // J's state.
        start = state.map(lambda x: x[:, None].expand(N, J, *x.shape[1:]).flatten(0, 1))
        mean = ((low + high) / 2).expand(N, 1, H, A)
        std = ((high - low) / 2).expand(N, 1, H, A)
        for i in range(c.iterations):
            candidates = torch.clamp(mean + std * noise.action[i], low, high)  # (N, J, H, A)
            returns = self._rollout(model, candidates.reshape(N * J, H, A), start,
                                    noise.state[i].reshape(N * J, H, -1)).reshape(N, J)
            elite = returns.topk(K, dim=1).indices  # (N, K)
            elites = candidates.gather(1, elite[:, :, None, None].expand(N, K, H, A))
            mean = elites.mean(dim=1, keepdim=True)
            std = elites.std(dim=1, unbiased=False, keepdim=True)
        return mean[:, 0, 0]

    def rollout(self, model: LatentModel, actions: torch.Tensor, start: LatentState,
                state_noise: torch.Tensor) -> torch.Tensor:
        """Returns (M,) of M sequences: sum over k = 1..H of E[p(r_{t+k} | h_{t+k}, s_{t+k})].

        actions (M, H, A), start (M, ...), state_noise (M, H, state_size). The imagined
        states come from the RSSM under the planner's precision; the reward model then runs
        once, in fp32, on all M * H of them.
        """
        with autocast(actions.device, self.precision, cache_enabled=False):
            imagined = model.rssm.imagine(actions, start, state_noise)
        return model.reward_model(imagined.feat().float()).sum(-1)  # (M, H) -> (M,)

    def _graph_call(self, model: LatentModel, state: LatentState, noise: CEMNoise
                    ) -> torch.Tensor:
        """`cem` through the CUDA graph for this device and N, captured on first use."""
        key = (state.belief.device, state.belief.shape[0])
        graph = self._graphs.get(key)
        if graph is None or not graph.fits(model, state, noise):
            self._graphs.pop(key, None)  # free the old graph's memory before capturing anew
            graph = self._graphs[key] = _CEMGraph(self.cem, model, state, noise)
        return graph(state, noise)
