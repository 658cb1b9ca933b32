"""Headless rendering next to triton, and GL backends that cannot start (planet_torch.gl).

triton's bundled LLVM clashes with the `libLLVM` that Mesa's EGL loads: importing triton after
a GL context exists kills the process with a segmentation fault. Every CUDA build of torch
brings triton, so these tests run with triton installed (the dev extra has it; under CI a
missing triton fails them instead of skipping them). Each case runs in its own process,
since a crash is the failure being tested and GL state cannot be undone.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None and not os.environ.get("CI"),
    reason="needs triton (pip install -e '.[dev]' installs it)")


def run_python(code: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "MUJOCO_GL": "egl", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ,
                          capture_output=True, text=True, timeout=timeout, check=False)


RENDER_RAW = """
    from dm_control import suite
    env = suite.load("cartpole", "swingup")
    env.physics.render(64, 64, camera_id=0)
"""
"""A GL context made by dm_control alone, as a user's own code would make it."""


@needs_triton
def test_the_clash_is_real_without_planet_torch() -> None:
    """The control: plain dm_control, then `import triton`, crashes where Mesa's LLVM is loaded.

    This is what the fix prevents; if it stops crashing here, the tests below prove nothing on
    this machine, and the skip says so.
    """
    result = run_python(RENDER_RAW + """
    print("llvm", "/libLLVM" in open("/proc/self/maps").read(), flush=True)
    import triton
    print("survived", flush=True)
    """)
    if "llvm False" in result.stdout:
        pytest.skip("this machine's GL does not load a system libLLVM")
    if result.returncode == 0:
        pytest.skip("triton and this machine's Mesa no longer clash")
    assert result.returncode == -signal.SIGSEGV, result.stderr[-2000:]


@needs_triton
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_update_after_a_dm_control_env_exists(compile: bool) -> None:
    """An environment renders, then the optimiser is built and one update runs (compiled too).

    Adam's first use imports torch._dynamo and with it triton: without `gl.prepare`, this
    process dies with SIGSEGV.
    """
    if compile and shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("torch.compile on a CPU needs a C++ compiler")
    result = run_python(f"""
    import torch
    from planet_torch.config import PRESETS
    from planet_torch.envs import make_env
    from planet_torch.world_model import TorchBatch, Updater, WorldModel, make_optimizer

    env = make_env("cartpole-swingup", seed=0)
    obs, _ = env.reset(seed=0)
    cfg = PRESETS["debug"]()
    model = WorldModel(cfg.model, env.action_space.shape[0])
    updater = Updater(model, make_optimizer(model, cfg.optim), cfg.objective,
                      cfg.optim.grad_clip, "fp32", {compile})
    frames = torch.from_numpy(obs.copy()).expand(1, 3, 64, 64, 3).contiguous()
    batch = TorchBatch(frames, torch.zeros(1, 3, 1), torch.zeros(1, 3))
    loss = updater(batch, torch.Generator().manual_seed(0))["model/loss"]
    import triton  # loaded by planet_torch before the GL context, so it is safe here
    assert updater.compiled == {compile}
    print("update ok", float(loss))
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert "update ok" in result.stdout


@needs_triton
def test_gl_context_before_planet_torch_hides_triton_with_one_warning() -> None:
    """A context made before `import planet_torch`: too late to preload triton, so torch is
    kept from importing it (it would crash), and training still runs, compiled included."""
    result = run_python(RENDER_RAW + """
    import planet_torch, sys, torch
    m = torch.nn.Linear(3, 3)
    optimizer = torch.optim.Adam(m.parameters())
    m(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    print("step ok", sys.modules["triton"] is None)
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert "step ok True" in result.stdout
    assert result.stderr.count("RuntimeWarning") == 1
    assert "import planet_torch first" in result.stderr


def cli_stderr(tmp_path, **env: str) -> tuple[int, list[str]]:
    """Exit code and non-empty stderr lines of a debug run on cartpole-swingup."""
    result = subprocess.run(
        [sys.executable, "-m", "planet_torch.cli", "train", "--preset", "debug",
         "--task", "cartpole-swingup", "--logdir", str(tmp_path)],
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
        capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()]


def test_glfw_without_a_display_is_one_line(tmp_path) -> None:
    """No GLFW warnings and no "Exception ignored in MjrContext.__del__": the error alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code, lines = cli_stderr(tmp_path, **{**env, "MUJOCO_GL": "glfw"})
    assert code == 1
    assert len(lines) == 1, lines
    assert "MUJOCO_GL='glfw'" in lines[0] and "no display" in lines[0]


def test_glfw_with_an_unusable_display_is_one_line(tmp_path) -> None:
    """DISPLAY names a server that does not exist: GLFW fails inside dm_control, and its
    warnings and dm_control's half-built context stay out of sight."""
    code, lines = cli_stderr(tmp_path, MUJOCO_GL="glfw", DISPLAY=":987")
    assert code == 1
    assert len(lines) == 1, lines
    assert "MUJOCO_GL='glfw'" in lines[0] and "Traceback" not in lines[0]


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is not None,
                    reason="libOSMesa is installed here, so osmesa starts")
def test_osmesa_without_the_library_is_one_line(tmp_path) -> None:
    code, lines = cli_stderr(tmp_path, MUJOCO_GL="osmesa")
    assert code == 1
    assert len(lines) == 1, lines
    assert "MUJOCO_GL='osmesa'" in lines[0] and "libosmesa6" in lines[0]
