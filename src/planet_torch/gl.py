"""Headless rendering: the GL backend MuJoCo uses, and keeping triton's LLVM out of Mesa's way.

`prepare()` runs when `planet_torch` is imported, before anything of ours can create a GL
context. It does two things:

1. Unless `MUJOCO_GL` is already set, it sets `MUJOCO_GL=egl`, which renders without a
   display on Mesa (CPU) or on an NVIDIA driver.
2. It loads triton's native library, when triton is installed, before any GL context exists.

Why 2: on Mesa, EGL and OSMesa render with llvmpipe, which loads the system's `libLLVM` into
the process with global symbol visibility. triton's `libtriton.so` carries its own, newer
LLVM; if it is loaded afterwards (by `import triton`, which `torch._dynamo`, and so the first
`torch.optim.Adam`, does), its static constructors call LLVM functions that the dynamic
linker resolves to Mesa's older `libLLVM` (`llvm::cl::Option::addArgument`), and the process
dies with a segmentation fault. Loaded first, `libtriton.so` stays private to itself
(Python loads extensions with RTLD_LOCAL) and Mesa later binds to its own `libLLVM`: both
work. If a GL context was made before `planet_torch` was imported, it is too late for that;
then triton is hidden from torch instead (it needs triton only for CUDA kernels), with one
warning, because importing it would crash.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

_MAPS = Path("/proc/self/maps")


def system_llvm_loaded() -> bool:
    """Whether a shared `libLLVM` (Mesa's, through a GL context) is mapped into this process."""
    try:
        return "/libLLVM" in _MAPS.read_text()
    except OSError:  # no /proc (not Linux): the clash is a Linux one
        return False


def preload_triton() -> str:
    """Load triton's native library before any GL context exists, if triton is installed.

    Returns what was done: "absent", "loaded" (now or before), or "hidden" when Mesa's LLVM
    was already in the process and triton is kept from being imported at all.
    """
    if "triton._C.libtriton" in sys.modules:
        return "loaded"
    if "triton" in sys.modules and sys.modules["triton"] is None:
        return "hidden"
    if importlib.util.find_spec("triton") is None:
        return "absent"
    if system_llvm_loaded():
        sys.modules["triton"] = None  # `import triton` now raises ImportError, as if absent
        warnings.warn("a GL context was created before planet_torch was imported, so triton "
                      "(whose LLVM clashes with Mesa's) is hidden from torch; import "
                      "planet_torch first to keep it", RuntimeWarning, stacklevel=2)
        return "hidden"
    try:
        importlib.import_module("triton._C.libtriton")
    except ImportError:  # a broken install: torch treats it as absent too
        return "absent"
    return "loaded"


def prepare() -> None:
    """Choose the headless backend and preload triton; safe to call more than once."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    preload_triton()


def backend() -> str:
    """The GL backend MuJoCo will use: the value of `MUJOCO_GL`."""
    return os.environ.get("MUJOCO_GL", "egl")


def display_missing() -> bool:
    """Whether the `glfw` backend is chosen on Linux without an X or Wayland display."""
    return (backend() == "glfw" and sys.platform.startswith("linux")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))


@contextlib.contextmanager
def quiet_backend_errors() -> Iterator[None]:
    """Silence the GL libraries' own warnings (GLFW's) while a context is being made.

    A failure still raises, and its message becomes the one line the user sees; the warnings
    would only bury it. After a failure they stay silenced, since the half-made context's
    clean-up at exit repeats them.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="glfw")
            yield
    except Exception:
        warnings.filterwarnings("ignore", module="glfw")
        raise


def _drop_half_built_context(unraisable: sys.UnraisableHookArgs) -> None:
    """Unraisable hook: drop the AttributeError of a dm_control `MjrContext` whose creation
    failed (its `__del__` then reads a field that was never set); pass on everything else."""
    if (getattr(unraisable.object, "__qualname__", "") == "MjrContext.__del__"
            and isinstance(unraisable.exc_value, AttributeError)):
        return
    _previous_unraisable_hook(unraisable)


_previous_unraisable_hook = sys.unraisablehook


def install_context_cleanup_hook() -> None:
    """Install `_drop_half_built_context` as `sys.unraisablehook`, once."""
    global _previous_unraisable_hook
    if sys.unraisablehook is not _drop_half_built_context:
        _previous_unraisable_hook = sys.unraisablehook
        sys.unraisablehook = _drop_half_built_context
