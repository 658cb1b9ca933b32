"""The README's Python example is a script that runs: on a debug run, from the README's text.

The code block under "Use it from Python" in both READMEs must be the script itself (less its
docstring), so the text a user copies is the code that is tested here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from planet_torch.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "python_api.py"


def script_body() -> str:
    text = SCRIPT.read_text()
    return text[text.index('"""', 3) + 3:].lstrip("\n")


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_readme_shows_the_script(readme: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / readme).read_text(), re.DOTALL)
    assert script_body() in blocks, f"{readme} does not show examples/python_api.py as it is"


def test_the_script_runs_on_a_debug_run(tmp_path: Path) -> None:
    assert main(["train", "--preset", "debug", "--task", "toy-reach", "--logdir",
                 str(tmp_path), "--train.episodes", "3", "--train.test_every", "0"]) == 0
    (run,) = tmp_path.iterdir()
    result = subprocess.run([sys.executable, str(SCRIPT), str(run)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "toy-reach: 3 training episodes"
    assert lines[1].startswith("returns: [") and lines[2].startswith("own loop return: ")
    errors = [float(x) for x in lines[3].split("[")[1].rstrip("]").split(", ")]
    assert len(errors) == 15 and all(0 <= e <= 1 for e in errors)
