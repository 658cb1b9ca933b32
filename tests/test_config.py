from dataclasses import FrozenInstanceError

import pytest

from planet_torch import config as config_lib
from planet_torch.config import Config


def test_defaults_are_the_papers_numbers():
    cfg = Config()
    assert cfg.model.belief_size == 200 and cfg.model.state_size == 30
    assert cfg.model.embed_size == 1024
    assert (cfg.planner.horizon, cfg.planner.iterations, cfg.planner.candidates,
            cfg.planner.elites) == (12, 10, 1000, 100)
    assert (cfg.train.batch_size, cfg.train.chunk_length, cfg.train.collect_interval,
            cfg.train.seed_episodes) == (50, 50, 100, 5)
    assert cfg.train.exploration_noise == 0.3 and cfg.train.replay_capacity == 1_000_000
    assert (cfg.optim.learning_rate, cfg.optim.adam_eps, cfg.optim.grad_clip) == (1e-3, 1e-4, 1000)
    assert cfg.objective.free_nats == 3 and cfg.model.bit_depth == 5
    assert cfg.objective.overshooting_distance == 1  # latent overshooting off
    assert cfg.objective.overshooting_weighting == "reference"  # learned better (docs/elbo.md)
    assert cfg.planner.kind == "cem" and cfg.train.collection == "planner"


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
    ({"model.bit_depth": 9}, "bit_depth"),
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


@pytest.mark.parametrize(("key", "value", "says"), [
    ("train.collect_interval", 0, "train.collect_interval must be an integer >= 1, got 0"),
    ("train.test_episodes", 0, "train.test_episodes must be an integer >= 1 while testing"),
    ("train.seed_episodes", 5000, "train.episodes must be >= train.seed_episodes (5000)"),
    ("train.chunk_length", 1, "train.chunk_length must be an integer >= 2, got 1"),
    ("train.checkpoint_every", 0, "train.checkpoint_every must be an integer >= 1"),
    ("train.env_steps", 0, "train.env_steps must be an integer >= 1, or none, got 0"),
    ("train.replay_capacity", 0, "train.replay_capacity must be an integer >= 1"),
    ("train.exploration_noise", -0.5, "train.exploration_noise must be >= 0, got -0.5"),
    ("optim.learning_rate", 0.0, "optim.learning_rate must be > 0, got 0.0"),
    ("optim.adam_eps", -1e-4, "optim.adam_eps must be > 0"),
    ("optim.grad_clip", 0.0, "optim.grad_clip must be > 0"),
    ("model.min_std", 0.0, "model.min_std must be > 0"),
    ("model.reward_units", 0, "model.reward_units must be an integer >= 1"),
    ("model.depth", "32", "model.depth must be an integer >= 1, got '32'"),
    ("objective.free_nats", -1.0, "objective.free_nats must be >= 0"),
    ("model.bit_depth", 9, "model.bit_depth must be an integer in 1..8, got 9"),
    ("planner.elites", 2000, "planner.elites must be in 1..planner.candidates (1000), got 2000"),
    ("planner.horizon", 0, "planner.horizon must be an integer >= 1, got 0"),
    ("env.action_repeat", 0, "env.action_repeat must be an integer >= 1, or none, got 0"),
    ("objective.overshooting_weighting", "mean",
     "objective.overshooting_weighting must be one of paper, reference, got 'mean'"),
    ("train.collection", "planned", "train.collection must be one of planner, random, got "
     "'planned'"),
])
def test_each_field_refuses_values_out_of_range(key, value, says):
    """Each section checks its own fields; the error names the field, value and range."""
    with pytest.raises(ValueError) as error:
        config_lib.override(config_lib.Config(), {key: value})
    assert says in str(error.value)


def test_testing_off_needs_no_test_episodes():
    cfg = config_lib.override(config_lib.Config(), {"train.test_every": 0,
                                                    "train.test_episodes": 0})
    assert cfg.train.test_episodes == 0


@pytest.mark.parametrize(("changes", "says"), [
    ({"train.chunk_length": 127}, "train.chunk_length must be at most 126"),
    ({"train.replay_capacity": 100}, "train.replay_capacity must be at least one episode"),
    ({"env.action_repeat": 4, "train.chunk_length": 252}, "at most 251"),
])
def test_chunks_and_replay_must_fit_the_task_episode(changes, says):
    """cartpole-swingup: 1000 environment steps at R = 8 are 125 agent steps, 126 rows."""
    from planet_torch.assembly import check_config

    cfg = config_lib.override(config_lib.Config(), changes)
    with pytest.raises(ValueError, match=says):
        check_config(cfg)


@pytest.mark.parametrize(("key", "value"), [("planner.kind", "random_shooting"),
                                            ("objective.overshooting_weighting", "paper"),
                                            ("train.collection", "random")])
def test_the_experiment_choices_round_trip_and_old_files_take_their_defaults(tmp_path, key,
                                                                            value):
    """The choices save and load; a config file written before they existed (no such key)
    loads with the default, without a version bump."""
    cfg = config_lib.override(Config(), {key: value})
    config_lib.save(cfg, tmp_path / "c.yaml")
    assert config_lib.load(tmp_path / "c.yaml") == cfg
    section, _, name = key.partition(".")
    data = config_lib.to_dict(cfg)
    del data[section][name]
    assert config_lib.from_dict(data) == Config()


def test_a_wrong_choice_is_a_one_line_cli_error(tmp_path, capsys):
    from planet_torch.cli import main

    for flag, value in (("--train.collection", "planned"),
                        ("--objective.overshooting_weighting", "mean")):
        assert main(["train", "--preset", "debug", flag, value, "--logdir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag[2:] in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
