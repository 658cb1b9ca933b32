from dataclasses import FrozenInstanceError

import pytest

from planet_torch import config as config_lib
from planet_torch.config import Config


def test_defaults_are_the_papers_numbers():
    cfg = Config()
    assert cfg.model.belief_size == 200 and cfg.model.state_size == 30
    assert cfg.model.embed_size == 1024 and cfg.model.feature_size == 230
    assert (cfg.planner.horizon, cfg.planner.iterations, cfg.planner.candidates,
            cfg.planner.elites) == (12, 10, 1000, 100)
    assert (cfg.train.batch_size, cfg.train.chunk_length, cfg.train.collect_interval,
            cfg.train.seed_episodes) == (50, 50, 100, 5)
    assert cfg.train.exploration_noise == 0.3 and cfg.train.replay_capacity == 1_000_000
    assert (cfg.optim.learning_rate, cfg.optim.adam_eps, cfg.optim.grad_clip) == (1e-3, 1e-4, 1000)
    assert cfg.objective.free_nats == 3 and cfg.objective.bit_depth == 5
    assert cfg.objective.overshooting_distance == 1  # latent overshooting off


def test_frozen():
    with pytest.raises(FrozenInstanceError):
        Config().seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("preset", sorted(config_lib.PRESETS))
def test_yaml_round_trip(tmp_path, preset):
    cfg = config_lib.PRESETS[preset]()
    config_lib.save(cfg, tmp_path / "c.yaml")
    assert config_lib.load(tmp_path / "c.yaml") == cfg


def test_override_top_level_and_sections():
    cfg = config_lib.override(Config(), {"task": "walker-walk", "train.batch_size": 7,
                                         "planner.horizon": 5})
    assert cfg.task == "walker-walk" and cfg.train.batch_size == 7 and cfg.planner.horizon == 5
    assert cfg.train.chunk_length == 50  # untouched fields keep their values


@pytest.mark.parametrize("changes, match", [
    ({"precision": "fp16"}, "precision"),
    ({"objective.bit_depth": 9}, "bit_depth"),
    ({"planner.elites": 2000}, "elites"),
    ({"objective.overshooting_distance": 50}, "overshooting_distance"),
    ({"train.chunk_length": 1}, "chunk_length"),
])
def test_invalid_settings_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        config_lib.override(Config(), changes)


def test_unknown_fields_and_versions(tmp_path):
    data = config_lib.to_dict(Config())
    data["train"]["batch_sise"] = 3
    with pytest.raises(ValueError, match=r"train\.batch_sise"):
        config_lib.from_dict(data)
    data = config_lib.to_dict(Config())
    data["version"] = 999
    with pytest.raises(ValueError, match="version 999"):
        config_lib.from_dict(data)
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="not a mapping"):
        config_lib.load(tmp_path / "bad.yaml")
