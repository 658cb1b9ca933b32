"""Install the torch build that fits this machine into the running Python (used by `make`).

usage: .venv/bin/python scripts/install_torch.py

- torch already importable: kept as it is (a build you chose yourself is never replaced).
- An NVIDIA GPU (`nvidia-smi -L` lists one) or not Linux: the default torch from PyPI, which
  is the CUDA build on Linux and the CPU build on macOS and Windows.
- Linux without an NVIDIA GPU: the CPU build (about 200 MB instead of several GB of CUDA
  libraries that would never run). It is looked for on PyTorch's CPU index, added to the
  indexes pip is configured with (a local mirror may carry it too); the newest version
  with the `+cpu` label wins.
- No CPU build reachable: the default torch, after one line that says so and why.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import re
import shutil
import subprocess
import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
"""PyTorch's own index of CPU-only builds."""
CPU_INDEX_ARGS = ["--extra-index-url", CPU_INDEX]
PIP = [sys.executable, "-m", "pip"]
QUICK = ["--retries", "1", "--timeout", "20"]
"""An unreachable index should cost seconds, not pip's default minutes of retries."""


def say(message: str) -> None:
    print(f"install_torch: {message}", flush=True)


def has_nvidia_gpu() -> bool:
    """Whether the NVIDIA driver lists a GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return result.returncode == 0 and "GPU" in result.stdout


def cpu_versions() -> list[str]:
    """Versions labelled `+cpu` on the CPU index or pip's configured indexes, newest first."""
    result = subprocess.run([*PIP, "index", "versions", "torch", *QUICK, *CPU_INDEX_ARGS],
                            capture_output=True, text=True, check=False)
    match = re.search(r"^Available versions: (.+)$", result.stdout, re.MULTILINE)
    found = match.group(1).split(", ") if match else []
    return [v for v in found if v.endswith("+cpu")]


def pip_install(requirement: str, *options: str) -> bool:
    return subprocess.run([*PIP, "install", requirement, *options], check=False).returncode == 0


def install_cpu_build() -> bool:
    """Install the newest `+cpu` torch that installs; False when there is none."""
    for version in cpu_versions()[:3]:
        say(f"no NVIDIA GPU: installing the CPU build of torch, torch=={version}")
        if pip_install(f"torch=={version}", *QUICK, *CPU_INDEX_ARGS):
            return True
    return False


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        say(f"keeping the installed torch {importlib.metadata.version('torch')}")
        return 0
    if platform.system() != "Linux" or has_nvidia_gpu():
        say("installing the default torch from PyPI")
        return 0 if pip_install("torch") else 1
    if install_cpu_build():
        return 0
    say(f"no CPU build of torch could be had (looked on {CPU_INDEX} and pip's configured "
        "indexes): installing the default torch, whose CUDA libraries (several GB) this "
        "machine without an NVIDIA GPU will not use")
    return 0 if pip_install("torch") else 1


if __name__ == "__main__":
    sys.exit(main())
