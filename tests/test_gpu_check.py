"""benchmarks/gpu_check.sh, the GPU checks in one script, stays runnable without a GPU to try
it on: valid bash, a usage line, every file it names present, every flag it passes known."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from planet_torch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def commands() -> list[list[str]]:
    """The commands of the script's `step` lines, continuation lines joined."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    return [shlex.split(line.split("step ", 1)[1].replace('"$out', '"/tmp/out'))[1:]
            for line in text.splitlines() if line.startswith("step ")]


def test_the_script_is_valid_bash_with_a_usage_line() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert "# usage: bash benchmarks/gpu_check.sh" in SCRIPT.read_text()
    assert len(commands()) == 5


def test_every_file_it_names_exists() -> None:
    named = re.findall(r"(?:tests|benchmarks)/[\w/]+\.(?:py|sh)", SCRIPT.read_text())
    assert named and [n for n in named if not (ROOT / n).is_file()] == []


def test_every_flag_it_passes_is_known() -> None:
    for command in commands():
        assert command[0] == "python3"
        if command[1:3] == ["-m", "planet_torch.cli"]:
            build_parser().parse_args(command[3:])  # exits 2 on an unknown flag
        elif command[1] == "benchmarks/acceleration.py":
            usage = subprocess.run([sys.executable, str(ROOT / command[1]), "--help"],
                                   capture_output=True, text=True, check=True).stdout
            flags = [word for word in command[2:] if word.startswith("--")]
            assert [f for f in flags if f not in usage] == [], command
        else:
            assert command[1:3] == ["-m", "pytest"], command
