"""Run folders of config version 1 still resume, test and predict.

`tests/data/v1-run` was written by planet-torch at config version 1 (commit aabd90f):
`planet train --preset debug --task toy-reach --train.episodes 3 --train.test_every 0
--env.episode_steps 30 --train.checkpoint_every 3 --objective.bit_depth 4`. Version 2 moved
`objective.bit_depth` to `model.bit_depth`; the folder's config.yaml and its checkpoint's
config are migrated when read, and the non-default bit depth 4 must come through.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.runs import CONFIG_NAME, load_config
from planet_torch.trained import load_run

V1_RUN = Path(__file__).parent / "data" / "v1-run"


@pytest.fixture
def v1_run(tmp_path: Path) -> Path:
    return Path(shutil.copytree(V1_RUN, tmp_path / "v1-run"))


def test_the_kept_folder_is_version_1() -> None:
    saved = yaml.safe_load((V1_RUN / CONFIG_NAME).read_text())
    assert saved["version"] == 1 and saved["objective"]["bit_depth"] == 4
    assert "bit_depth" not in saved["model"]


def test_a_version_1_config_is_migrated_when_read() -> None:
    cfg = load_config(V1_RUN)
    assert cfg.model.bit_depth == 4
    assert not hasattr(cfg.objective, "bit_depth")
    assert config_lib.to_dict(cfg)["version"] == config_lib.CONFIG_VERSION == 3
    trained_cfg, model = checkpoint.restore_model(checkpoint.load(V1_RUN))
    assert trained_cfg.model.bit_depth == 4 and model.cfg.bit_depth == 4


def test_an_unknown_version_is_refused() -> None:
    data = config_lib.to_dict(config_lib.Config())
    for version in (0, 4, None, "3"):
        with pytest.raises(ValueError, match=f"config version {version} is not supported"):
            config_lib.from_dict({**data, "version": version})


@pytest.mark.parametrize(("saved", "read"), [(None, "paper"), ("paper", "paper"),
                                             ("reference", "reference")])
def test_a_version_2_config_keeps_its_overshooting_weighting(saved: str | None,
                                                               read: str) -> None:
    # Written before the field existed (None), a version 2 run was trained with equation 7 as
    # written, today's `paper`, whatever the default is now.
    data = config_lib.to_dict(config_lib.Config())
    objective = {k: v for k, v in data["objective"].items() if k != "overshooting_weighting"}
    if saved is not None:
        objective["overshooting_weighting"] = saved
    cfg = config_lib.from_dict({**data, "version": 2, "objective": objective})
    assert cfg.objective.overshooting_weighting == read


def test_a_version_1_run_tests_and_predicts(v1_run: Path, capsys) -> None:
    run = load_run(v1_run, device="cpu")
    assert run.model.cfg.bit_depth == 4 and run.counters["episodes"] == 3
    assert main(["test", str(v1_run), "--episodes", "1", "--device", "cpu"]) == 0
    assert main(["predict", str(v1_run), "--sequences", "1", "--context", "3", "--horizon", "5",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "toy-reach: return" in out and "open-loop MSE" in out


def test_a_version_1_run_resumes_and_is_saved_as_version_3(v1_run: Path) -> None:
    before = sorted(p.name for p in (v1_run / "episodes").iterdir())
    assert main(["train", "--resume", str(v1_run), "--train.episodes", "4",
                 "--device", "cpu"]) == 0
    saved = yaml.safe_load((v1_run / CONFIG_NAME).read_text())
    assert saved["version"] == 3 and saved["model"]["bit_depth"] == 4
    assert saved["objective"]["overshooting_weighting"] == "paper"  # all there was then
    assert "bit_depth" not in saved["objective"]
    after = sorted(p.name for p in (v1_run / "episodes").iterdir())
    assert after[:3] == before and len(after) == 4
    assert checkpoint.load(v1_run)["counters"]["episodes"] == 4
