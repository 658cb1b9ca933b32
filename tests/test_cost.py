"""The front door tells the cost: `planet train` with the paper's settings on a CPU says how
long the run would take, measured on the spot, and points to `--preset cpu`."""

from __future__ import annotations

import pytest
import torch

from planet_torch import bench, cli
from planet_torch import config as config_lib
from planet_torch.train import Counters, Trainer


def test_estimate_counts_the_runs_updates_and_planning_calls() -> None:
    cfg = config_lib.override(config_lib.PRESETS["debug"](), {"train.episodes": 6})
    state = torch.get_rng_state()
    estimate = bench.estimate_run(cfg, action_size=1, agent_steps=10, env_step_s=0.01)
    assert torch.equal(torch.get_rng_state(), state)  # the run's random stream is untouched
    t = cfg.train
    tests = t.episodes // t.test_every
    assert estimate.updates == (t.episodes - t.seed_episodes) * t.collect_interval == 8
    assert estimate.plans == (t.episodes - t.seed_episodes + tests * t.test_episodes) * 10
    steps = (t.episodes + tests * t.test_episodes) * 10
    assert estimate.update_s > 0 and estimate.plan_s > 0
    assert estimate.seconds == pytest.approx(estimate.updates * estimate.update_s
                                             + estimate.plans * estimate.plan_s + steps * 0.01)


@pytest.mark.parametrize(("preset", "shown"), [([], True), (["--preset", "paper"], True),
                                               (["--preset", "debug"], False)])
def test_the_paper_preset_on_a_cpu_prints_one_cost_line(tmp_path, monkeypatch, capsys,
                                                        preset, shown) -> None:
    monkeypatch.setattr(bench, "estimate_run", lambda *args: bench.RunEstimate(
        4.5 * 86400, 16.0, 2.2, 99_500, 150_000))
    monkeypatch.setattr(Trainer, "run", lambda self: Counters())
    assert cli.main(["train", *preset, "--device", "cpu", "--task", "toy-reach",
                     "--logdir", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "take about" in line]
    if shown:
        assert lines == ["planet train: the paper's settings on this CPU take about 4.5 days "
                         "(99,500 updates at 16.0 s, 150,000 planning calls at 2.20 s, "
                         "measured just now); --preset cpu is sized for a CPU"]
    else:
        assert lines == []
