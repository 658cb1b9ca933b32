"""Fast paths compute what the eager fp32 code computes: compiled, bf16, CUDA graph, prefetch.

Compiling is slow on a small CPU (a cold Inductor cache takes about a minute for the tiny
update below), so every compiled CPU test uses the same shapes (B, L, A, one planning agent)
and the module-scoped fixture `compiled_on_cpu`, which compiles the update and the planner's
rollout for those shapes once, before the first of them, whichever runs first or alone: the
tests then reuse that compiled code (Dynamo's cache is per function, not per model object)
and none depends on running after another. Without a C++ compiler the compiled tests are
skipped, except under CI, where one must exist (`cxx_compiler`). The CUDA tests are skipped
where no GPU exists; a GPU session must run them.
"""

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from planet_torch import acceleration, checkpoint
from planet_torch import config as config_lib
from planet_torch import planner as planner_lib
from planet_torch.acceleration import Fallback
from planet_torch.cli import main
from planet_torch.latent import LatentState
from planet_torch.planner import CEMPlanner, PlanNoise, RandomShootingPlanner
from planet_torch.replay import Episode, Replay
from planet_torch.train import BatchLoader, to_device
from planet_torch.world_model import ModelInputs, TorchBatch, Updater, WorldModel, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

DEBUG = config_lib.PRESETS["debug"]()
B, L, A = 1, 2, 1
"""Batch of the compiled tests, and cartpole-swingup's action size: the end-to-end run's."""
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def fallback_warnings(records: list[warnings.WarningMessage]) -> list[str]:
    return [str(r.message) for r in records if "eagerly" in str(r.message)]


def make_model(action_size: int = A, seed: int = 0, device: str = "cpu") -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(DEBUG.model, action_size).to(device)


def make_updater(model: WorldModel, precision: str = "fp32", compile: bool = False) -> Updater:
    return Updater(model, make_optimizer(model, DEBUG.optim), DEBUG.objective,
                   DEBUG.optim.grad_clip, precision, compile)


def random_batch(batch_size: int = B, length: int = L, action_size: int = A,
                 device: str = "cpu") -> TorchBatch:
    g = torch.Generator().manual_seed(1)
    shape = (batch_size, length)
    batch = TorchBatch(torch.randint(0, 256, (*shape, 64, 64, 3), dtype=torch.uint8,
                                     generator=g),
                       torch.rand(*shape, action_size, generator=g) * 2 - 1,
                       torch.rand(shape, generator=g))
    return TorchBatch(*(x.to(device) for x in batch))


def run_updates(updater: Updater, batch: TorchBatch, steps: int, device: str = "cpu"
                ) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator(device).manual_seed(2)
    return [updater(batch, generator) for _ in range(steps)]


def assert_same_training(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]],
                         model_a: WorldModel, model_b: WorldModel, atol: float) -> None:
    for metrics_a, metrics_b in zip(a, b, strict=True):
        for key, value in metrics_a.items():
            torch.testing.assert_close(metrics_b[key], value, atol=atol, rtol=1e-5, msg=key)
    for (name, p), q in zip(model_a.named_parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(q, p, atol=atol, rtol=1e-5, msg=name)


def planning_setup(num_agents: int = 1, device: str = "cpu", **planner_options
                   ) -> tuple[WorldModel, CEMPlanner, LatentState, PlanNoise]:
    model = make_model(device=device).eval()
    planner = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), **planner_options)
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        state = model.dynamics.initial_state(num_agents, device)
        for _ in range(3):
            action = (2 * torch.rand(num_agents, A, generator=g) - 1).to(device)
            eps = torch.randn(num_agents, DEBUG.model.state_size, generator=g).to(device)
            state = model.dynamics.img_step(state, action, eps)
    noise = planner.draw_noise(num_agents, DEBUG.model.state_size, torch.device("cpu"),
                               torch.Generator().manual_seed(4))
    return model, planner, state, PlanNoise(*(x.to(device) for x in noise))


@pytest.fixture(scope="module")
def cxx_compiler() -> None:
    """Skip a compiled test where Inductor finds no C++ compiler; under CI fail it instead,
    since CI must run the compiled path (a skip there would hide that it is never tested)."""
    problem = acceleration.missing_compiler()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}: CI must be able to run the compiled tests")
        pytest.skip(f"torch.compile needs a C++ compiler here: {problem}")


@pytest.fixture(scope="module")
def compiled_on_cpu(cxx_compiler: None) -> None:
    """Compile the update and the planner's rollout once, on the CPU at the shapes of every
    compiled CPU test, and check that both stayed compiled. Every compiled CPU test uses
    this fixture, so the cold compile happens here, whichever test comes first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the autouse fixture does, which runs after this one
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            updater = make_updater(make_model(), compile=True)
            run_updates(updater, random_batch(), 1)
            model, _, state, noise = planning_setup()
            planner = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), compile=True)
            planner.plan(model, state, noise)
    finally:
        torch.set_num_threads(threads)
    assert updater.compiled and planner.compiled, fallback_warnings(records)


def test_train_with_compile_runs_end_to_end(tmp_path, compiled_on_cpu):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        code = main(["train", "--preset", "debug", "--compile", "true", "--logdir",
                     str(tmp_path), "--train.batch_size", str(B), "--train.chunk_length",
                     str(L), "--train.episodes", "3"])
    assert code == 0
    assert fallback_warnings(records) == []  # compiled throughout, no eager fallback
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    payload = checkpoint.load(run)
    assert payload["config"]["compile"] is True
    assert payload["counters"]["episodes"] == 3 and payload["counters"]["updates"] == 2


def test_compiled_update_matches_eager(compiled_on_cpu):
    """Same initialisation, batch and draws: 3 compiled updates track 3 eager ones.

    Measured: metrics agree to 2e-7 relative (0.002 nats of a loss of 11 800), parameters
    to 2e-8 (float rounding in fused kernels); asserted: 1e-4 absolute plus 1e-5 relative.
    """
    batch = random_batch()
    eager_model, compiled_model = make_model(), make_model()
    compiled = make_updater(compiled_model, compile=True)
    eager_metrics = run_updates(make_updater(eager_model), batch, 3)
    compiled_metrics = run_updates(compiled, batch, 3)
    assert compiled.compiled
    assert_same_training(eager_metrics, compiled_metrics, eager_model, compiled_model, 1e-4)


def test_compiled_planner_matches_eager(compiled_on_cpu):
    """Same state and PlanNoise: the compiled rollout gives the eager returns and action."""
    model, eager, state, noise = planning_setup()
    compiled = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), compile=True)
    torch.testing.assert_close(compiled.plan(model, state, noise),
                               eager.plan(model, state, noise), atol=1e-5, rtol=0)
    assert compiled.compiled


def test_bf16_update_stays_within_half_a_nat_of_fp32():
    """Under bf16 the first update's loss moves by less than 0.5 nats (a summed image loss
    of about 11 300 nats); the KL and reward terms, computed in fp32, by less than 1e-3.
    Measured on this CPU: 0.003 nats (this tiny model has few bf16 products); KL and reward
    terms within 1e-5. tests/test_world_model.py holds the paper-sized model to the same bound.
    """
    batch = random_batch(2, 3)
    fp32 = run_updates(make_updater(make_model()), batch, 1)[0]
    bf16 = run_updates(make_updater(make_model(), "bf16"), batch, 1)[0]
    assert 0 < abs(bf16["model/loss"] - fp32["model/loss"]) < 0.5
    for key in ("model/kl", "model/reward_nll"):
        assert abs(bf16[key] - fp32[key]) < 1e-3


def test_bf16_planner_rollout_returns_are_close_to_fp32():
    """Same candidates, start and draws: bf16 returns differ from fp32 by < 5 % of their
    spread over the candidates (measured: 1.4 % here, 1.3 % at the paper's sizes, where the
    top 10 % of candidates were the same set), and the plan stays inside the bounds."""
    model, fp32, state, noise = planning_setup(num_agents=2)
    bf16 = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), precision="bf16")
    M, H = 2 * DEBUG.planner.candidates, DEBUG.planner.horizon
    actions = noise.action[0].reshape(M, H, A).clamp(-1, 1)
    start = state.map(lambda x: x.repeat_interleave(DEBUG.planner.candidates, dim=0))
    eps = noise.state[0].reshape(M, H, -1)
    with torch.inference_mode():
        exact = fp32.rollout(model, actions, start, eps)
        approx = bf16.rollout(model, actions, start, eps)
    assert approx.dtype == torch.float32
    assert 0 < (approx - exact).abs().max() < 0.05 * exact.std()
    action = bf16.plan(model, state, noise)
    assert action.dtype == torch.float32 and action.abs().max() <= 1


@pytest.mark.parametrize("where", ["torch.compile", "first call"])
def test_compile_failure_warns_once_and_trains_on_eagerly(monkeypatch, where):
    """A torch.compile that fails at once or on its first call: one warning each for the
    update and the planner, then eager results. Nothing is compiled, so no C++ compiler is
    needed: the check for one is told there is one."""
    def broken_compile(fn, **options):
        if where == "torch.compile":
            raise RuntimeError("compiler exploded")

        def compiled(*args, **kwargs):
            raise RuntimeError("compiled code exploded")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(acceleration, "missing_compiler", lambda: None)
    batch = random_batch()
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        fallen = make_model()
        updater = make_updater(fallen, compile=True)
        fallen_metrics = run_updates(updater, batch, 3)
        model, eager_planner, state, noise = planning_setup()
        planner = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), compile=True)
        actions = [planner.plan(model, state, noise) for _ in range(2)]
    messages = fallback_warnings(records)
    assert len(messages) == 2, messages  # one for the update, one for the planner
    assert "exploded" in messages[0] and "update" in messages[0]
    assert not updater.compiled and not planner.compiled
    eager = make_model()
    assert_same_training(run_updates(make_updater(eager), batch, 3), fallen_metrics, eager,
                         fallen, atol=0)
    assert all(torch.equal(a, eager_planner.plan(model, state, noise)) for a in actions)


def test_no_cxx_compiler_means_eager_with_a_warning(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(acceleration.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        updater = make_updater(make_model(), compile=True)
    assert not updater.compiled
    run_updates(updater, random_batch(), 1)


def test_fallback_keeps_the_fast_path_when_the_call_itself_is_wrong():
    def wrong(x: int) -> int:
        raise ValueError(f"bad input {x}")

    fallback = Fallback(wrong, wrong, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="bad input 3"):
            fallback(3)
    assert fallback.active


@contextmanager
def no_host_reads() -> Iterator[None]:
    """Reading a tensor's value on the host (item, bool, float, ...) raises inside."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a tensor value was read on the host")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
            patch.setattr(torch.Tensor, name, forbidden)
        yield


def test_planning_reads_no_tensor_value_on_the_host():
    """No `.item()`, no Python branch on a tensor: on a GPU, nothing would wait for it."""
    model, planner, state, noise = planning_setup(num_agents=2)
    with no_host_reads():
        planner.plan(model, state, noise)


def test_update_reads_no_tensor_value_on_the_host(monkeypatch):
    """The whole `Updater` call: noise draws, forward, backward, gradient clipping, metrics,
    with torch's distribution argument checks on. Adam's step is left out: the CPU's
    non-fused Adam reads its step counter with `.item()`; on CUDA the fused kernel does not
    (`make_optimizer`, checked by the CUDA update test)."""
    updater, batch = make_updater(make_model()), random_batch()
    monkeypatch.setattr(torch.distributions.Distribution, "_validate_args", True)
    monkeypatch.setattr(updater.optimizer, "step", lambda: None)
    with no_host_reads():
        metrics = updater(batch, torch.Generator().manual_seed(0))
    assert "model/grad_norm" in metrics


def replay_of_random_episodes(seed: int = 0) -> Replay:
    rng = np.random.default_rng(0)
    replay = Replay(capacity=10_000, seed=seed)
    for steps in (12, 20, 9):
        action = rng.uniform(-1, 1, (steps + 1, 2)).astype(np.float32)
        reward = rng.uniform(0, 1, steps + 1).astype(np.float32)
        action[0], reward[0] = 0, 0
        replay.add(Episode(rng.integers(0, 256, (steps + 1, 64, 64, 3), dtype=np.uint8),
                           action, reward))
    return replay


def assert_batches_equal(a: TorchBatch, b: TorchBatch) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.cpu(), y.cpu())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_batch_loader_gives_the_batches_of_sampling_in_turn(device):
    """Prefetching changes nothing: the same batches in the same order, and closing early
    leaves the replay's generator one batch (the one in flight) further on."""
    loader = BatchLoader(replay_of_random_episodes(), 4, 6, torch.device(device))
    reference = replay_of_random_episodes()
    for batch in loader.batches(5):
        assert_batches_equal(batch, to_device(reference.sample(4, 6), torch.device("cpu")))
    batches = loader.batches(5)
    for _ in range(2):
        assert_batches_equal(next(batches), to_device(reference.sample(4, 6),
                                                      torch.device("cpu")))
    batches.close()
    reference.sample(4, 6)  # the batch that was in flight
    assert_batches_equal(to_device(loader.replay.sample(4, 6), torch.device("cpu")),
                         to_device(reference.sample(4, 6), torch.device("cpu")))


def test_batch_loader_samples_the_next_batch_while_the_caller_holds_this_one():
    """The overlap itself, without timing: while the caller holds batch k, the worker
    thread is already sampling batch k + 1, and it never samples beyond the count."""
    replay = replay_of_random_episodes()
    sampled: list[threading.Event] = [threading.Event() for _ in range(4)]
    threads: set[str] = set()
    sample = replay.sample

    def recording_sample(batch_size: int, length: int):
        threads.add(threading.current_thread().name)
        sampled[sum(e.is_set() for e in sampled)].set()
        return sample(batch_size, length)

    replay.sample = recording_sample
    loader = BatchLoader(replay, 4, 6, torch.device("cpu"))
    for k, _ in enumerate(loader.batches(3)):
        if k + 1 < 3:
            assert sampled[k + 1].wait(timeout=30), f"batch {k + 1} was not prefetched"
    assert [e.is_set() for e in sampled] == [True, True, True, False]
    assert threads and all(name.startswith("replay") for name in threads)


def cpu_graph_capture(captures: list[torch.device]):
    """A CPU stand-in for `capture_cuda_graph` with a graph's semantics: replay reruns fn on
    the tensors it read at capture time and rewrites the same output tensor in place."""
    def capture(fn, device):
        captures.append(device)
        output = fn()
        return lambda: output.copy_(fn()), output
    return capture


@torch.inference_mode()
def test_graph_planner_bookkeeping_with_a_cpu_stand_in_for_capture(monkeypatch):
    """The CUDA-graph wrapper's own logic, runnable without a GPU: every call's state and
    noise reach the static buffers, actions are copied out of the graph's output, and a new
    capture happens for a new N, another model or moved parameters, and only then."""
    captures: list[torch.device] = []
    monkeypatch.setattr(planner_lib, "capture_cuda_graph", cpu_graph_capture(captures))
    model, eager, state, noise = planning_setup(2)
    graphed = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), cuda_graphs=True)

    def check(m: WorldModel, s: LatentState, n: PlanNoise) -> torch.Tensor:
        action = graphed._graph_call(m, s, n)
        torch.testing.assert_close(action, eager.cem(m, s, n), atol=0, rtol=0)
        return action

    first = check(model, state, noise)
    kept = first.clone()
    second = check(model, state.map(lambda x: x.flip(0) + 0.5),
                   PlanNoise(*(x.flip(1) for x in noise)))
    assert not torch.equal(second, kept)
    assert torch.equal(first, kept), "a returned action must not alias the graph's output"
    for p in model.parameters():
        p.mul_(1.1)  # in place, as Adam and load_state_dict write
    check(model, state, noise)
    assert len(captures) == 1

    _, _, three_agents, three_noise = planning_setup(3)
    check(model, three_agents, three_noise)
    assert len(captures) == 2 and sorted(n for _, n in graphed._graphs) == [2, 3]
    check(model, state, noise)
    assert len(captures) == 2, "each N keeps its own graph"

    other = make_model(seed=1).eval()
    check(other, state, noise)
    assert len(captures) == 3
    for p in other.parameters():
        p.data = p.data.clone()  # new storage: a graph would still read the old one
    check(other, state, noise)
    assert len(captures) == 4


def test_random_shooting_reads_no_host_values_and_runs_through_the_graph_wrapper(monkeypatch):
    """The random-shooting search shares CEM's fast paths: no host reads, and the graph
    wrapper (CPU stand-in for the capture) returns the eager search's action."""
    captures: list[torch.device] = []
    monkeypatch.setattr(planner_lib, "capture_cuda_graph", cpu_graph_capture(captures))
    model, _, state, _ = planning_setup(num_agents=2)
    eager = RandomShootingPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A))
    graphed = RandomShootingPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A),
                                    cuda_graphs=True)
    noise = eager.draw_noise(2, DEBUG.model.state_size, torch.device("cpu"),
                             torch.Generator().manual_seed(4))
    with no_host_reads():
        action = eager.plan(model, state, noise)
    with torch.inference_mode():
        for _ in range(2):
            torch.testing.assert_close(graphed._graph_call(model, state, noise), action,
                                       atol=0, rtol=0)
    assert len(captures) == 1


# CUDA only: skipped without a GPU; a GPU session must run these. ----------------------------


@needs_cuda
def test_cuda_graph_random_shooting_matches_eager():
    model, _, state, _ = planning_setup(3, "cuda")
    eager = RandomShootingPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A),
                                  cuda_graphs=False)
    graphed = RandomShootingPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A),
                                    cuda_graphs=True)
    noise = eager.draw_noise(3, DEBUG.model.state_size, torch.device("cuda"),
                             torch.Generator("cuda").manual_seed(0))
    for trial in range(2):
        if trial == 1:
            state = state.map(lambda x: x.flip(0) + 0.1)
            noise = PlanNoise(*(x.flip(1) for x in noise))
        torch.testing.assert_close(graphed.plan(model, state, noise),
                                   eager.plan(model, state, noise), atol=0, rtol=0)
    assert graphed._graphed.active

@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_planner_matches_eager(request, precision, compile):
    """Per N, the graph replays the eager planner's kernels: equal actions for new states
    and noise, and for new weights written in place (as Adam does)."""
    if compile:
        request.getfixturevalue("cxx_compiler")
    for num_agents in (1, 3):
        model, eager, state, noise = planning_setup(num_agents, "cuda", precision=precision,
                                                    cuda_graphs=False)
        graphed = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), precision,
                             compile, cuda_graphs=True)
        tolerance = 1e-5 if compile else 0.0
        for trial in range(3):
            if trial == 1:
                state = state.map(lambda x: x.flip(0) + 0.1)
                noise = PlanNoise(*(x.flip(1) for x in noise))
            if trial == 2:
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(1.1)
            torch.testing.assert_close(graphed.plan(model, state, noise),
                                       eager.plan(model, state, noise), atol=tolerance,
                                       rtol=0)
        assert graphed._graphed.active and graphed.compiled == compile
        assert list(graphed._graphs) == [(state.belief.device, num_agents)]


@needs_cuda
def test_cuda_graph_planner_recaptures_for_another_model():
    model, planner, state, noise = planning_setup(1, "cuda")
    other = make_model(seed=1, device="cuda").eval()
    first = planner.plan(model, state, noise)
    eager = CEMPlanner(DEBUG.planner, -torch.ones(A), torch.ones(A), cuda_graphs=False)
    torch.testing.assert_close(planner.plan(other, state, noise),
                               eager.plan(other, state, noise), atol=0, rtol=0)
    assert torch.equal(planner.plan(model, state, noise), first)


@needs_cuda
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_update_matches_cpu(request, monkeypatch, compile):
    """Fused Adam, TF32 off: a CUDA update tracks the CPU one (compiled or not)."""
    if compile:
        request.getfixturevalue("cxx_compiler")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cpu_model, cuda_model = make_model(), make_model(device="cuda")
    cuda = make_updater(cuda_model, compile=compile)
    assert cuda.optimizer.defaults["fused"]
    cpu_batch = random_batch()
    cuda_batch = TorchBatch(*(x.cuda() for x in cpu_batch))
    # Same draws on both devices: draw on the CPU, hand the CUDA updater the same inputs.
    inputs = cpu_model.prepare(cpu_batch, DEBUG.objective, torch.Generator().manual_seed(2))
    cuda_inputs = type(inputs)(*(None if x is None else x.cuda() for x in inputs))
    cpu_metrics = make_updater(cpu_model)._gradients(inputs)
    cuda_metrics = cuda._gradients(cuda_inputs)
    for key, value in cpu_metrics.items():
        torch.testing.assert_close(cuda_metrics[key].cpu(), value, atol=1e-3, rtol=1e-4,
                                   msg=key)
    assert cuda.compiled == compile
    run_updates(cuda, cuda_batch, 2, "cuda")


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, fraction: float,
                          what: str) -> None:
    """|actual - expected| <= fraction * max |expected| everywhere (rounding in long sums is
    relative to the terms summed, not to each small or cancelled result)."""
    scale = expected.abs().max().item()
    error = (actual.cpu() - expected).abs().max().item()
    assert error <= fraction * scale + 1e-12, f"{what}: error {error:.3g}, scale {scale:.3g}"


@needs_cuda
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_gradients_and_fused_adam_steps_match_cpu(request, monkeypatch, compile):
    """Same weights and draws on both devices, TF32 off, three whole `Updater` steps: after
    each, every parameter's gradient (clipped, as the step used it) and the gradient norm on
    CUDA match the CPU's, and after fused Adam (CUDA) and the CPU's Adam the parameters,
    both moment estimates and the step counts are the same. Rounding in long sums differs
    between the devices by about 1e-6 of a tensor's scale; asserted: 1e-4 (2e-4 for the
    squared moments); parameters to 1e-5, a hundredth of one Adam step (learning rate)."""
    if compile:
        request.getfixturevalue("cxx_compiler")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cpu_model, cuda_model = make_model(), make_model(device="cuda")
    cpu, cuda = make_updater(cpu_model), make_updater(cuda_model, compile=compile)
    assert cuda.optimizer.defaults["fused"] and not cpu.optimizer.defaults["fused"]
    batch = random_batch()
    generator = torch.Generator().manual_seed(2)
    pairs = list(zip(cpu_model.named_parameters(), cuda_model.parameters(), strict=True))
    for step in range(1, 4):
        # Same draws on both devices: drawn on the CPU, handed to both updaters' prepare.
        inputs = cpu_model.prepare(batch, DEBUG.objective, generator)
        cuda_inputs = ModelInputs(*(None if x is None else x.cuda() for x in inputs))
        monkeypatch.setattr(cpu_model, "prepare", lambda *args, inputs=inputs: inputs)
        monkeypatch.setattr(cuda_model, "prepare", lambda *args, inputs=cuda_inputs: inputs)
        cpu_metrics = cpu(batch)
        cuda_metrics = cuda(TorchBatch(*(x.cuda() for x in batch)))
        torch.testing.assert_close(cuda_metrics["model/grad_norm"].cpu(),
                                   cpu_metrics["model/grad_norm"], atol=0, rtol=1e-4)
        for (name, p), q in pairs:
            assert_close_to_scale(q.grad, p.grad, 1e-4, f"step {step}, grad of {name}")
            torch.testing.assert_close(q.detach().cpu(), p.detach(), atol=1e-5, rtol=1e-5,
                                       msg=f"step {step}, {name}")
            cpu_state, cuda_state = cpu.optimizer.state[p], cuda.optimizer.state[q]
            assert float(cpu_state["step"]) == float(cuda_state["step"]) == step
            assert_close_to_scale(cuda_state["exp_avg"], cpu_state["exp_avg"], 1e-4,
                                  f"step {step}, first moment of {name}")
            assert_close_to_scale(cuda_state["exp_avg_sq"], cpu_state["exp_avg_sq"], 2e-4,
                                  f"step {step}, second moment of {name}")
    assert cuda.compiled == compile
    initial = make_model().state_dict()
    moved = [name for (name, p), _ in pairs if not torch.equal(p.detach(), initial[name])]
    assert len(moved) > len(pairs) / 2, moved  # the weights compared are not the initial ones
