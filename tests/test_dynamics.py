"""The three model designs of paper figure 2 behind one interface (`--model.kind`): the RSSM,
the purely stochastic SSM and the purely deterministic DRNN. Each trains, plans, filters
and predicts; each provides the terms of the bound it should; and each has exactly the
parts it claims (the SSM no belief, the DRNN no stochastic state and no KL term)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from planet_torch import assembly, predict
from planet_torch import config as config_lib
from planet_torch.cli import main
from planet_torch.config import ModelConfig, ObjectiveConfig, PlannerConfig
from planet_torch.latent import LatentState
from planet_torch.objective import image_log_likelihood, reward_log_likelihood
from planet_torch.world_model import DYNAMICS, TorchBatch, WorldModel

KINDS = sorted(DYNAMICS)
SMALL = ModelConfig(belief_size=16, state_size=4, hidden_size=16, depth=2, reward_units=16)
B, L, A = 3, 6, 2


def _model(kind: str, seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(dataclasses.replace(SMALL, kind=kind), A)


def _batch(seed: int = 0) -> TorchBatch:
    g = torch.Generator().manual_seed(seed)
    return TorchBatch(torch.randint(0, 256, (B, L, 64, 64, 3), dtype=torch.uint8, generator=g),
                      torch.rand(B, L, A, generator=g) * 2 - 1, torch.rand(B, L, generator=g))


def test_every_kind_is_known_and_rssm_is_the_default() -> None:
    assert KINDS == ["drnn", "rssm", "ssm"]
    assert ModelConfig().kind == "rssm"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_the_parts_it_claims(kind: str) -> None:
    dynamics = _model(kind).dynamics
    belief, state = {"rssm": (16, 4), "ssm": (0, 4), "drnn": (16, 0)}[kind]
    assert (dynamics.belief_size, dynamics.state_size) == (belief, state)
    assert dynamics.feature_size == belief + state
    assert dynamics.stochastic == (kind != "drnn")
    embed = torch.randn(B, L, 2 * 32)
    posterior, prior = dynamics.observe(embed, torch.zeros(B, L, A))
    for states in (posterior, prior):
        assert states.belief.shape == (B, L, belief) and states.state.shape == (B, L, state)
        assert states.feat().shape == (B, L, belief + state)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains(kind: str) -> None:
    """The loss is finite and every parameter of the dynamics gets a gradient (free nats 0,
    which would otherwise hold the KL's gradient at zero below 3 nats)."""
    model = _model(kind)
    loss, _ = model.loss(_batch(), ObjectiveConfig(free_nats=0.0),
                         generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss.loss)
    loss.loss.backward()
    for name, p in model.dynamics.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_drnn_has_no_kl_term_and_predicts_from_the_state_before_each_frame() -> None:
    """loss = -ln p(o) - 10 ln p(r), evaluated on the predictions h~_t = f(h_{t-1}, a_t, 0),
    recomputed here step by step from the cell itself."""
    model = _model("drnn")
    batch = _batch()
    cfg = ObjectiveConfig()
    inputs = model.prepare(batch, cfg, torch.Generator().manual_seed(1))
    loss, _ = model.elbo(inputs, cfg)
    assert not any(k.startswith(("model/kl", "model/prior", "model/posterior"))
                   for k in loss.metrics)
    dynamics = model.dynamics
    embed = model.encoder(inputs.obs)
    h = dynamics.initial_state(B)
    predictions = []
    for t in range(L):
        predictions.append(dynamics.img_step(h, inputs.action[:, t]))
        _, h = dynamics.obs_step(h, inputs.action[:, t], embed[:, t])
    feat = LatentState.stack(predictions).feat()
    expected = (-image_log_likelihood(model.decoder(feat), inputs.obs).mean()
                - cfg.reward_scale * reward_log_likelihood(model.reward_model(feat),
                                                            inputs.reward).mean())
    torch.testing.assert_close(loss.loss, expected)


@pytest.mark.parametrize("kind, sees_its_own_frame", [("rssm", True), ("ssm", True),
                                                      ("drnn", False)])
def test_which_frames_the_image_model_reads(kind: str, sees_its_own_frame: bool) -> None:
    """Change frame t of a chunk: the states the RSSM's and SSM's likelihoods read at t
    change (their posterior reads e_t); the DRNN's do not (it predicts o_t before seeing
    it), but its state at t + 1 does."""
    model = _model(kind).eval()
    cfg = ObjectiveConfig()
    batch = _batch()
    changed = batch.obs.clone()
    t = 2
    changed[:, t] = 255 - changed[:, t]

    def likelihood_features(obs: torch.Tensor) -> torch.Tensor:
        inputs = model.prepare(batch._replace(obs=obs), cfg, torch.Generator().manual_seed(3))
        embed = model.encoder(inputs.obs)
        posterior, prior = model.dynamics.observe(embed, inputs.action,
                                                  noise=inputs.state_noise)
        return model.dynamics.likelihood_states(posterior, prior).feat()

    with torch.no_grad():
        before, after = likelihood_features(batch.obs), likelihood_features(changed)
    torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=0)
    assert (not torch.equal(before[:, t], after[:, t])) == sees_its_own_frame
    assert not torch.equal(before[:, t + 1], after[:, t + 1])


def test_ssm_is_markov_in_its_sample() -> None:
    """Without a belief, the prior at t + 1 depends on the past only through s_t: one prior
    step from the posterior at t gives the filtered prior at t + 1 exactly."""
    dynamics = _model("ssm").dynamics
    embed, actions = torch.randn(B, L, 64), torch.rand(B, L, A)
    posterior, prior = dynamics.observe(embed, actions, generator=torch.Generator().manual_seed(0))
    for t in range(L - 1):
        step = dynamics.img_step(posterior.map(lambda x, t=t: x[:, t]), actions[:, t + 1],
                                 noise=torch.zeros(B, 4))
        torch.testing.assert_close(step.mean, prior.mean[:, t + 1])
        torch.testing.assert_close(step.std, prior.std[:, t + 1])


def test_ssm_kl_term_matches_torch_distributions() -> None:
    model = _model("ssm")
    cfg = ObjectiveConfig(free_nats=0.0)
    inputs = model.prepare(_batch(), cfg, torch.Generator().manual_seed(0))
    loss, posterior = model.elbo(inputs, cfg)
    embed = model.encoder(inputs.obs)
    _, prior = model.dynamics.observe(embed, inputs.action, noise=inputs.state_noise)
    expected = torch.distributions.kl_divergence(posterior.dist(), prior.dist()).mean()
    torch.testing.assert_close(loss.metrics["model/kl_term"], expected)


def test_ssm_supports_latent_overshooting() -> None:
    model = _model("ssm")
    overshooting = ObjectiveConfig(free_nats=0.0, overshooting_distance=3)
    inputs = model.prepare(_batch(), overshooting, torch.Generator().manual_seed(0))
    one, _ = model.elbo(inputs._replace(overshooting_noise=None), ObjectiveConfig(free_nats=0.0))
    three, _ = model.elbo(inputs, overshooting)
    torch.testing.assert_close(one.metrics["model/image_nll"], three.metrics["model/image_nll"])
    assert abs(one.loss.item() - three.loss.item()) > 1e-4


def test_drnn_refuses_latent_overshooting_and_unknown_kinds_are_named() -> None:
    cfg = config_lib.PRESETS["debug"]()
    with pytest.raises(ValueError, match=r"model\.kind drnn"):
        dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="drnn"),
                            objective=ObjectiveConfig(overshooting_distance=3))
    unknown = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="rnn"))
    with pytest.raises(ValueError, match=r"unknown model\.kind 'rnn'; choose one of drnn, rssm"):
        assembly.check_config(unknown)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_plans_filters_and_predicts(kind: str) -> None:
    cfg = dataclasses.replace(config_lib.PRESETS["debug"](),
                              model=dataclasses.replace(SMALL, kind=kind),
                              planner=PlannerConfig(horizon=3, iterations=2, candidates=16,
                                                    elites=4))
    model = assembly.make_world_model(cfg, A)
    low, high = -torch.ones(A), torch.ones(A)
    agent = assembly.make_agent(cfg, model, low, high, torch.Generator().manual_seed(0))
    agent.reset(2)
    obs = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    for _ in range(3):
        action = agent.act(obs)
        assert action.shape == (2, A) and np.all(np.abs(action) <= 1)
    frames = np.random.default_rng(1).integers(0, 256, (2, 7, 64, 64, 3), dtype=np.uint8)
    prediction = predict.open_loop(model, frames, np.zeros((2, 7, A), np.float32), context=3)
    assert prediction.model.shape == frames.shape


def test_checkpoints_from_before_the_choice_load() -> None:
    """State dicts saved when the dynamics lived at `model.rssm` load into `model.dynamics`."""
    saved = {k.replace("dynamics.", "rssm.", 1): v for k, v in _model("rssm", 1).state_dict()
             .items()}
    assert any(k.startswith("rssm.") for k in saved)
    model = _model("rssm", 2)
    model.load_state_dict(saved)
    torch.testing.assert_close(model.dynamics.gru.weight_ih, saved["rssm.gru.weight_ih"])


@pytest.mark.parametrize("kind", ["drnn", "ssm"])
def test_a_debug_run_trains_tests_and_predicts_with_each_kind(kind: str, tmp_path: Path,
                                                              one_thread: None) -> None:
    assert main(["train", "--preset", "debug", "--task", "toy-reach", "--model.kind", kind,
                 "--logdir", str(tmp_path)]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert main(["test", str(run), "--episodes", "1", "--output", str(tmp_path / "t")]) == 0
    assert main(["predict", str(run), "--sequences", "1", "--context", "3", "--horizon", "6",
                 "--output", str(tmp_path / "p")]) == 0
    assert list((tmp_path / "p" / "videos").glob("open_loop-*.gif"))


def test_the_help_names_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """`planet train --help` shows a field's whole first paragraph, here all three kinds."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    kind = text[text.index("--model.kind STR Latent"):text.rindex("--model.belief_size INT")]
    assert all(f"`{k}`" in kind for k in KINDS) and "(default: rssm)" in kind


@pytest.mark.parametrize("kind", KINDS)
def test_bench_planning_states_fit_each_kind(kind: str) -> None:
    """`planet bench`'s planning start states draw noise of the model's own state size."""
    from planet_torch import bench

    state = bench.planning_states(_model(kind), 3, torch.Generator().manual_seed(0))
    dynamics = _model(kind).dynamics
    assert state.belief.shape == (3, dynamics.belief_size)
    assert state.state.shape == (3, dynamics.state_size)
