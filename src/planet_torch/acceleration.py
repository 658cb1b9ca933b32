"""Speed switches shared by the update and the planner: precision, torch.compile, backends.

Precision: `bf16` runs the networks under autocast (matrix products and convolutions in
bfloat16); whatever computes a loss, a KL, a log-likelihood or a planning return reads fp32.

Compiling: `torch.compile` (Dynamo + Inductor) turns a Python function into fused kernels on
its first call. It can fail for reasons that have nothing to do with the agent: no C++
compiler for Inductor's CPU kernels, an unsupported Python, a bug in the compiler stack.
None of these may stop a run, so compiling is wrapped twice:

    compile_or_none(fn)        torch.compile(fn), or None with a warning when it cannot work
    Fallback(fast, eager)      calls fast until its first failure, then eager for good,
                               warning once; the failed call is redone eagerly

Backends: on CUDA, float32 matrix products and convolutions use TF32 tensor cores and cuDNN
picks the fastest convolution algorithm for the (fixed) shapes once; CPU settings are left as
they are, so CPU results do not change.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

import torch

from planet_torch.config import PRECISIONS

P = ParamSpec("P")
R = TypeVar("R")


def check_precision(precision: str) -> None:
    """Raise ValueError unless precision is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be {' or '.join(PRECISIONS)}, got {precision!r}")


def autocast(device: torch.device, precision: str, cache_enabled: bool = True
             ) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device when precision is `bf16`, otherwise nothing.

    `cache_enabled=False` recasts the weights on every use instead of caching the casts for
    the region; a CUDA graph needs that (a cached cast would be captured once and go stale).
    """
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache_enabled)


def missing_compiler() -> str | None:
    """Why Inductor cannot build kernels here (no C++ compiler found), or None if it can.

    Inductor compiles its CPU kernels with `$CXX` (else g++, c++ or clang++); on CUDA, Triton
    builds its kernel launcher with a C compiler, which every system with one of those has.
    """
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    if any(shutil.which(name) for name in names):
        return None
    return f"no C++ compiler found (looked for {', '.join(names)}; set CXX or install g++)"


def compile_or_none(fn: Callable[P, R], what: str) -> Callable[P, R] | None:
    """torch.compile(fn) for fixed shapes, or None with a warning when it cannot work here.

    torch.compile is lazy: most failures only show on the first call (see `Fallback`).
    """
    problem = missing_compiler()
    if problem is None:
        try:
            return torch.compile(fn, dynamic=False)
        except Exception as error:  # any failure of the compiler stack means: run eagerly
            problem = f"{type(error).__name__}: {error}"
    warnings.warn(f"cannot compile {what} ({problem}); running it eagerly", RuntimeWarning,
                  stacklevel=2)
    return None


class Fallback(Generic[P, R]):
    """Call `fast` (compiled, graph-captured) until it fails once, then `eager` for good.

    A failure of `fast` is answered by redoing the same call with `eager`. If that succeeds,
    the failure was the fast path's own: it is dropped with one RuntimeWarning. If `eager`
    fails too, the fault is in the call itself: its error propagates and `fast` is kept.
    Both must compute the same function of their arguments (no hidden random draws), so a
    redone call returns what the fast one would have.
    """

    def __init__(self, fast: Callable[P, R] | None, eager: Callable[P, R], what: str) -> None:
        self.fast = fast
        self.eager = eager
        self.what = what

    @property
    def active(self) -> bool:
        """Whether calls still go to the fast path."""
        return self.fast is not None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """fast(*args, **kwargs), or eager(*args, **kwargs) once fast has failed."""
        if self.fast is None:
            return self.eager(*args, **kwargs)
        try:
            return self.fast(*args, **kwargs)
        except Exception as error:  # compiler and graph-capture errors have many types
            result = self.eager(*args, **kwargs)
            self.fast = None
            message = str(error).strip().splitlines()
            warnings.warn(f"{self.what} failed ({type(error).__name__}: "
                          f"{message[0] if message else ''}); continuing eagerly",
                          RuntimeWarning, stacklevel=2)
            return result


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; anything else as torch understands it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def configure_backends(device: torch.device) -> None:
    """On CUDA: TF32 for float32 matrix products and convolutions, cuDNN autotuning.

    TF32 keeps float32's range with a 10-bit mantissa in the tensor cores' products (sums
    stay float32); it is what makes an fp32 update fast on an Ampere or newer GPU. Nothing
    changes on other devices.
    """
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
