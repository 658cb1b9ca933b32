"""scripts/install_torch.py picks the torch build for the machine (pip and nvidia-smi faked).

The real install runs in `make smoke` (CI runs it): these tests cover each branch of the
choice, which one machine cannot all reach.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_torch.py"


@pytest.fixture
def installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_torch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakePip:
    """Answers `pip index versions` with `listed` and records every `pip install`."""

    def __init__(self, listed: str | None, failing: tuple[str, ...] = ()) -> None:
        self.listed = listed
        self.failing = failing
        self.installed: list[list[str]] = []

    def __call__(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if args[0] == "nvidia-smi":
            return subprocess.CompletedProcess(args, 0, "GPU 0: NVIDIA H200 (UUID: x)\n", "")
        command = args[3]
        if command == "index":
            out = f"torch (9.9.9)\nAvailable versions: {self.listed}\n" if self.listed else ""
            return subprocess.CompletedProcess(args, 0 if self.listed else 1, out, "")
        assert command == "install", args
        self.installed.append(args[4:])
        return subprocess.CompletedProcess(args, 1 if args[4] in self.failing else 0, "", "")


def prepare(monkeypatch, installer, pip: FakePip, *, torch_present=False, gpu=False,
            system="Linux") -> None:
    monkeypatch.setattr(installer.subprocess, "run", pip)
    monkeypatch.setattr(installer.importlib.util, "find_spec",
                        lambda name: object() if torch_present else None)
    monkeypatch.setattr(installer.importlib.metadata, "version", lambda name: "2.13.0+cpu")
    monkeypatch.setattr(installer.shutil, "which", lambda name: "/usr/bin/nvidia-smi"
                        if gpu else None)
    monkeypatch.setattr(installer.platform, "system", lambda: system)


def test_linux_without_gpu_gets_the_newest_cpu_build(monkeypatch, installer, capsys) -> None:
    pip = FakePip("2.15.0, 2.14.1+cpu, 2.14.1, 2.13.0+cpu")
    prepare(monkeypatch, installer, pip)
    assert installer.main() == 0
    assert [args[0] for args in pip.installed] == ["torch==2.14.1+cpu"]
    assert installer.CPU_INDEX in pip.installed[0]
    assert "CPU build" in capsys.readouterr().out


def test_a_cpu_build_that_fails_to_install_falls_back_to_the_next(monkeypatch,
                                                                  installer) -> None:
    pip = FakePip("2.14.1+cpu, 2.13.0+cpu", failing=("torch==2.14.1+cpu",))
    prepare(monkeypatch, installer, pip)
    assert installer.main() == 0
    assert [args[0] for args in pip.installed] == ["torch==2.14.1+cpu", "torch==2.13.0+cpu"]


def test_no_cpu_build_says_so_once_and_installs_the_default(monkeypatch, installer,
                                                            capsys) -> None:
    pip = FakePip("2.15.0, 2.14.1")
    prepare(monkeypatch, installer, pip)
    assert installer.main() == 0
    assert [args[0] for args in pip.installed] == ["torch"]
    out = capsys.readouterr().out
    assert out.count("no CPU build of torch could be had") == 1 and "CUDA" in out


@pytest.mark.parametrize(("gpu", "system"), [(True, "Linux"), (False, "Darwin")])
def test_gpu_machines_and_other_systems_get_the_default_torch(monkeypatch, installer, gpu,
                                                              system) -> None:
    pip = FakePip("2.14.1+cpu")
    prepare(monkeypatch, installer, pip, gpu=gpu, system=system)
    assert installer.main() == 0
    assert pip.installed == [["torch"]]


def test_an_installed_torch_is_kept(monkeypatch, installer, capsys) -> None:
    pip = FakePip("2.14.1+cpu")
    prepare(monkeypatch, installer, pip, torch_present=True)
    assert installer.main() == 0
    assert pip.installed == []
    assert "keeping the installed torch 2.13.0+cpu" in capsys.readouterr().out
