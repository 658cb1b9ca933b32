"""Draw the README's pictures of learning from run folders: curves, a prediction, an episode.

usage: python scripts/readme_figures.py RUN_DIR [RUN_DIR ...] [--name NAME] [--output DIR]

From the given runs of one task (every seed, not the best one) it writes into DIR (default
docs/figures):
- `learning-NAME.png` and `.svg`: test and train return of every run, their mean and spread,
  random play and the paper's score (`planet plot`'s figure);
- `prediction-NAME.gif`: open-loop prediction by the first run's model, truth | prediction |
  difference, two sequences (`planet predict --context 5 --horizon 45`);
- `episode-NAME.gif`: one noise-free test episode of the first run's agent (`planet test`).
Each file's size is printed; the GIFs are shrunk to a few hundred KB (`shrink`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio

from planet_torch import plot
from planet_torch.cli import main as planet

ROOT = Path(__file__).resolve().parents[1]


def newest(folder: Path, pattern: str) -> Path:
    (path,) = sorted(folder.glob(pattern))[-1:]
    return path


def draw(runs: list[Path], name: str, output: Path) -> list[Path]:
    """Write the three pictures of `runs` into `output`; returns the files written."""
    output.mkdir(parents=True, exist_ok=True)
    written = plot.learning_curves(runs, output / f"learning-{name}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for command, pattern, target in (
                (["predict", str(runs[0]), "--sequences", "2", "--context", "5",
                  "--horizon", "45"], "open_loop-*.gif", f"prediction-{name}.gif"),
                (["test", str(runs[0]), "--episodes", "1", "--video"], "test-*.gif",
                 f"episode-{name}.gif")):
            if planet([*command, "--output", str(scratch)]) != 0:
                raise SystemExit(f"readme_figures.py: planet {command[0]} failed")
            written.append(shrink(newest(scratch / "videos", pattern), output / target))
    return written


def shrink(gif: Path, target: Path, frame_step: int = 2) -> Path:
    """`gif` at half the size of `planet`'s videos (which upscale by 2 or more, nearest
    neighbour, so every other pixel loses nothing) and every `frame_step`-th frame, played
    as fast as the original: a few hundred KB for the README."""
    frames = iio.imread(gif, index=None)
    duration = iio.immeta(gif).get("duration", 100)
    iio.imwrite(target, frames[::frame_step, ::2, ::2], extension=".gif",
                duration=duration * frame_step, loop=0)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of one task")
    parser.add_argument("--name", default=None, help="file name part (default: the task)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args(argv)
    name = args.name or plot.read_run(args.runs[0]).task
    for path in draw(args.runs, name, args.output):
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
