"""scripts/readme_figures.py draws its three pictures from a run folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from planet_torch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_draws_curves_prediction_and_episode_from_a_run(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("readme_figures",
                                                  ROOT / "scripts" / "readme_figures.py")
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    assert main(["train", "--preset", "debug", "--task", "toy-reach", "--logdir",
                 str(tmp_path / "runs"), "--train.episodes", "4"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    written = figures.draw([run], "toy", tmp_path / "figures")
    assert sorted(p.name for p in written) == ["episode-toy.gif", "learning-toy.png",
                                               "learning-toy.svg", "prediction-toy.gif"]
    for path in written:
        assert 0 < path.stat().st_size < 1_000_000, path
    assert (tmp_path / "figures" / "prediction-toy.gif").read_bytes()[:6] == b"GIF89a"


def test_the_readmes_show_the_committed_pictures_of_real_learning() -> None:
    names = ["learning-cartpole-swingup.png", "prediction-cartpole-swingup.gif",
             "episode-cartpole-swingup.gif"]
    for name in names:
        path = ROOT / "docs" / "figures" / name
        assert 10_000 < path.stat().st_size < 600_000, path  # real pictures, a few hundred KB
    for readme in ("README.md", "README.zh-CN.md"):
        text = (ROOT / readme).read_text()
        assert all(f"(docs/figures/{name})" in text for name in names), readme
    assert "(figures/learning-cartpole-swingup.png)" in (ROOT / "docs" / "results.md").read_text()
