"""The cpu preset runs end to end at its real sizes (model, planner, B = 16, L = 32) on a
cartpole-swingup episode shortened to 50 agent steps, with a test phase; the hour-long runs
are benchmarks (`benchmarks/learning.py`), not tests."""

from __future__ import annotations

from pathlib import Path

from processes import only_run

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.runs import load_config, read_metrics


def test_the_cpu_preset_trains_and_tests_at_its_real_sizes(tmp_path: Path,
                                                           one_thread: None) -> None:
    preset = config_lib.PRESETS["cpu"]()
    assert preset.task == "cartpole-swingup" and preset.train.episodes == 60
    assert main(["train", "--preset", "cpu", "--logdir", str(tmp_path), "--device", "cpu",
                 "--env.episode_steps", "400", "--train.seed_episodes", "1",
                 "--train.episodes", "2", "--train.collect_interval", "2",
                 "--train.test_every", "2", "--train.test_episodes", "1"]) == 0
    run = only_run(tmp_path)
    cfg = load_config(run)
    assert (cfg.model, cfg.planner, cfg.objective) == (preset.model, preset.planner,
                                                       preset.objective)
    assert (cfg.train.batch_size, cfg.train.chunk_length) == (16, 32)
    counters = checkpoint.load(run)["counters"]
    assert counters == {"episodes": 2, "env_steps": 800, "updates": 2, "test_phases": 1}
    tests = [r["test/return"] for r in read_metrics(run) if "test/return" in r]
    assert len(tests) == 1 and 0 <= tests[0] <= 400  # at most 1 per environment step
