import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Independent, Normal
from torch.distributions import kl_divergence as torch_kl

from planet_torch.config import ModelConfig, ObjectiveConfig
from planet_torch.latent import LatentState
from planet_torch.objective import (
    free_nats,
    gaussian_log_likelihood,
    image_log_likelihood,
    kl_divergence,
    negative_elbo,
    overshooting_kl,
    reward_log_likelihood,
)
from planet_torch.rssm import RSSM

B, T, A, E = 2, 6, 2, 7
CFG = ModelConfig(belief_size=10, state_size=4, hidden_size=8, depth=1)


def gaussian_state(shape: tuple[int, ...], seed: int) -> LatentState:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(shape, generator=g) * 2
    std = torch.rand(shape, generator=g) * 2 + 0.1
    belief = torch.randn(*shape[:-1], 3, generator=g)
    return LatentState(belief, mean, mean, std)


def diagonal(state: LatentState) -> Independent:
    return Independent(Normal(state.mean, state.std), 1)


def test_kl_matches_torch_distributions_in_the_posterior_to_prior_direction():
    q, p = gaussian_state((3, 7, 5), 0), gaussian_state((3, 7, 5), 1)
    kl = kl_divergence(q, p)
    assert kl.shape == (3, 7)
    torch.testing.assert_close(kl, torch_kl(diagonal(q), diagonal(p)), rtol=1e-5, atol=1e-5)
    # the case is asymmetric, so the test tells KL(q || p) from KL(p || q)
    assert (kl - torch_kl(diagonal(p), diagonal(q))).abs().max() > 1.0
    assert torch.all(kl_divergence(q, q).abs() < 1e-5)


def test_log_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, target = torch.randn(2, 3, 3, 64, 64, generator=g), torch.rand(2, 3, 3, 64, 64) - 0.5
    image = image_log_likelihood(mean, target)
    assert image.shape == (2, 3)
    torch.testing.assert_close(image, Normal(mean, 1.0).log_prob(target).sum((-3, -2, -1)))
    r_mean, r = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    torch.testing.assert_close(reward_log_likelihood(r_mean, r), Normal(r_mean, 1.0).log_prob(r))
    torch.testing.assert_close(gaussian_log_likelihood(r_mean, r, 1),
                               Normal(r_mean, 1.0).log_prob(r).sum(-1))
    # a perfect prediction leaves only the normaliser: 3*64*64 * 0.5 ln(2 pi) nats
    perfect = image_log_likelihood(target, target)
    torch.testing.assert_close(perfect, torch.full((2, 3), -3 * 64 * 64 * 0.5 * math.log(
        2 * math.pi)))


def unit_prior(shape: tuple[int, ...]) -> LatentState:
    zeros = torch.zeros(shape)
    return LatentState(zeros, zeros, zeros, torch.ones(shape))


def kl_gradient(per_dim_kl: float, dims: int, nats: float = 3.0) -> tuple[float, torch.Tensor]:
    """KL term's gradient w.r.t. the posterior mean for q = N(mu, 1), p = N(0, 1).

    Each dimension then has KL mu^2 / 2; returns (summed KL, d kl_term / d mu) through
    `negative_elbo`, whose other terms do not depend on the posterior mean.
    """
    mean = torch.full((1, 1, dims), math.sqrt(2 * per_dim_kl), requires_grad=True)
    std = torch.ones(1, 1, dims)
    posterior = LatentState(torch.zeros(1, 1, 3), mean, mean, std)
    image = torch.zeros(1, 1, 3, 64, 64)
    reward = torch.zeros(1, 1)
    result = negative_elbo(image, image, reward, reward, posterior, unit_prior((1, 1, dims)),
                           ObjectiveConfig(free_nats=nats))
    (grad,) = torch.autograd.grad(result.loss, mean)
    return result.metrics["model/kl"].item(), grad


def test_free_nats_clamp_the_summed_kl_not_each_dimension():
    # each of 4 dimensions has KL 1 < 3, but the sum 4 > 3: the plain KL gradient, mu per dim
    kl, grad = kl_gradient(per_dim_kl=1.0, dims=4)
    assert kl == pytest.approx(4.0)
    torch.testing.assert_close(grad, torch.full((1, 1, 4), math.sqrt(2.0)))
    # each dimension 0.5, sum 2 < 3: no gradient from the KL term
    kl, grad = kl_gradient(per_dim_kl=0.5, dims=4)
    assert kl == pytest.approx(2.0)
    assert torch.equal(grad, torch.zeros(1, 1, 4))
    # the threshold moves with the setting
    assert kl_gradient(per_dim_kl=0.5, dims=4, nats=1.0)[1].abs().min() > 0.5


def test_free_nats_per_element_gradient_equals_plain_kl_above_threshold():
    """Mixed batch: elements below F get zero gradient, elements above the plain KL gradient."""
    p = gaussian_state((4, 5, 3), 3)
    scale = torch.linspace(0.2, 3.0, 20).view(4, 5, 1)
    delta = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(2)) * scale
    mean = (p.mean + p.std * delta).requires_grad_()
    q = LatentState(p.belief, mean, mean, p.std * 0.8)
    kl = kl_divergence(q, p)
    above = kl.detach() > 3.0
    assert above.any() and (~above).any()
    (grad,) = torch.autograd.grad(free_nats(kl, 3.0).sum(), mean, retain_graph=True)
    (plain,) = torch.autograd.grad(kl.sum(), mean)
    torch.testing.assert_close(grad, plain * above[..., None])
    torch.testing.assert_close(free_nats(kl, 3.0), kl.clamp(min=3.0))


def test_negative_elbo_adds_up_from_torch_distributions():
    g = torch.Generator().manual_seed(0)
    image_mean, obs = torch.randn(B, T, 3, 64, 64, generator=g), torch.rand(B, T, 3, 64, 64)
    reward_mean, reward = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    q, p = gaussian_state((B, T, 4), 4), gaussian_state((B, T, 4), 5)
    cfg = ObjectiveConfig()
    result = negative_elbo(image_mean, obs, reward_mean, reward, q, p, cfg)
    image_nll = -Normal(image_mean, 1.0).log_prob(obs).sum((-3, -2, -1)).mean()
    reward_nll = -Normal(reward_mean, 1.0).log_prob(reward).mean()
    kl = torch_kl(diagonal(q), diagonal(p))
    expected = image_nll + 10.0 * reward_nll + kl.clamp(min=3.0).mean()
    torch.testing.assert_close(result.loss, expected)
    m = result.metrics
    assert set(m) == {"model/loss", "model/image_nll", "model/reward_nll", "model/kl_term",
                      "model/kl", "model/prior_entropy", "model/posterior_entropy"}
    torch.testing.assert_close(m["model/image_nll"], image_nll)
    torch.testing.assert_close(m["model/reward_nll"], reward_nll)
    torch.testing.assert_close(m["model/kl"], kl.mean())
    torch.testing.assert_close(m["model/kl_term"], kl.clamp(min=3.0).mean())
    torch.testing.assert_close(m["model/prior_entropy"], diagonal(p).entropy().mean())
    assert not any(v.requires_grad for v in m.values())


# Latent overshooting


def observed(seed: int = 0) -> tuple[RSSM, LatentState, LatentState, torch.Tensor]:
    torch.manual_seed(seed)
    rssm = RSSM(CFG, A, E)
    g = torch.Generator().manual_seed(seed)
    embeds, actions = torch.randn(B, T, E, generator=g), torch.randn(B, T, A, generator=g)
    post, prior = rssm.observe(embeds, actions, generator=g)
    return rssm, post, prior, actions


def elbo(post, prior, cfg, rssm=None, actions=None):
    image = torch.zeros(B, T, 3, 64, 64)
    reward = torch.zeros(B, T)
    return negative_elbo(image, image, reward, reward, post, prior, cfg, rssm, actions)


def test_overshooting_distance_one_is_the_standard_kl_and_three_differs():
    rssm, post, prior, actions = observed()
    plain = elbo(post, prior, ObjectiveConfig(free_nats=0.0))
    one = elbo(post, prior, ObjectiveConfig(free_nats=0.0, overshooting_distance=1), rssm,
               actions)
    torch.testing.assert_close(one.loss, plain.loss, rtol=0, atol=0)
    torch.testing.assert_close(one.metrics["model/kl_term"],
                               kl_divergence(post, prior).mean().detach())
    torch.manual_seed(0)
    three = elbo(post, prior, ObjectiveConfig(free_nats=0.0, overshooting_distance=3), rssm,
                 actions)
    assert abs(three.loss.item() - plain.loss.item()) > 1e-3
    # the image and reward terms are untouched; only the KL term changes
    torch.testing.assert_close(three.metrics["model/image_nll"], plain.metrics["model/image_nll"])
    with pytest.raises(ValueError, match="dynamics and actions"):
        elbo(post, prior, ObjectiveConfig(overshooting_distance=2))


def reference_overshooting_terms(rssm, post, actions, cfg, noises):
    """Equation 7's d = 2..D terms K_d, one per distance, by a loop over start times t0.

    K_d is the mean over b and t0 of max(KL(q_{t0+d} || p(s_{t0+d} | s_{t0})), F); noises[d - 1]
    is the (B, T - 1, S) standard normal draw used for the d-th prior step.
    """
    per_distance = []
    for d in range(2, cfg.overshooting_distance + 1):
        terms = []
        for t0 in range(T - d):
            state = post.map(lambda x, t=t0: x[:, t])
            for k in range(1, d + 1):
                state = rssm.img_step(state, actions[:, t0 + k], noises[k - 1][:, t0])
            target = post.map(lambda x, t=t0 + d: x[:, t])
            terms.append(kl_divergence(target, state).clamp(min=cfg.free_nats))
        per_distance.append(torch.stack(terms).mean())
    return per_distance


def reference_overshooting(rssm, post, actions, cfg, noises):
    """Sum over d = 2..D of `reference_overshooting_terms`."""
    return sum(reference_overshooting_terms(rssm, post, actions, cfg, noises))


@pytest.mark.parametrize("free", [0.0, 3.0])
def test_overshooting_matches_a_loop_over_start_times(free):
    """d-step priors p(s_t | s_{t-d}) from every start, KL to the posterior at t, averaged.

    The implementation draws its noise from the global generator, one (B * (T - 1), S)
    draw per distance, in order d = 1..D; the reference replays the same draws.
    """
    rssm, post, prior, actions = observed()
    cfg = ObjectiveConfig(free_nats=free, overshooting_distance=3, overshooting_kl_scale=0.5,
                          overshooting_weighting="paper")
    torch.manual_seed(7)
    got = overshooting_kl(rssm, post, actions, cfg)
    torch.manual_seed(7)
    noises = [torch.randn(B * (T - 1), CFG.state_size).view(B, T - 1, -1) for _ in range(3)]
    expected = reference_overshooting(rssm, post, actions, cfg, noises)
    torch.testing.assert_close(got, expected)

    plain = free_nats(kl_divergence(post, prior), free).mean()
    torch.manual_seed(7)
    loss = elbo(post, prior, cfg, rssm, actions)
    torch.testing.assert_close(loss.metrics["model/kl_term"],
                               ((plain + 0.5 * expected) / 3).detach())


def test_overshooting_stops_gradient_into_the_posterior_targets():
    """The d-step KL trains the prior rollout, not the posterior it is compared with.

    With every posterior field a leaf, the posterior mean and std (used only as targets)
    get no gradient, while the start beliefs and samples do, except at the last two
    steps, whose rollouts reach no target within the chunk.
    """
    _, _, _, actions = observed()
    torch.manual_seed(0)
    rssm = RSSM(CFG, A, E)
    post = gaussian_state((B, T, CFG.state_size), 9)
    post = LatentState(torch.randn(B, T, CFG.belief_size), *post[1:])
    post = post.map(lambda x: x.clone().requires_grad_())
    cfg = ObjectiveConfig(free_nats=0.0, overshooting_distance=3)
    overshoot = overshooting_kl(rssm, post, actions, cfg)
    grads = torch.autograd.grad(overshoot, list(post), allow_unused=True)
    belief_grad, state_grad, mean_grad, std_grad = grads
    assert mean_grad is None or not mean_grad.any()
    assert std_grad is None or not std_grad.any()
    # the d = 2 term has targets for starts t0 <= T - 3; later starts reach none
    assert belief_grad[:, :T - 2].abs().amax(dim=(0, 2)).min() > 0
    assert state_grad[:, :T - 2].abs().amax(dim=(0, 2)).min() > 0
    assert not belief_grad[:, T - 2:].any() and not state_grad[:, T - 2:].any()
    # without the stop-gradient the targets would receive one: KL(q || p) depends on q
    kl = kl_divergence(post.map(lambda x: x[:, 2:]), gaussian_state((B, T - 2, 4), 1)).mean()
    assert torch.autograd.grad(kl, post.mean)[0].abs().max() > 0


def test_overshooting_weightings_follow_their_formulas():
    """D = 3, beta = 0.5, free nats F = 0.4 (some one-step KLs below it, some above), from
    the per-distance terms K_1, K_2, K_3 computed by hand:

        paper       (K_1 + beta (K_2 + K_3)) / 3
        reference   K_1 + beta (K_2 + K_3) / 2
    """
    F = 0.4
    rssm, post, prior, actions = observed()
    kl_1 = kl_divergence(post, prior)
    assert (kl_1 < F).any() and (kl_1 > F).any()  # free nats bite on some elements only
    k_1 = kl_1.clamp(min=F).mean()
    torch.manual_seed(7)
    noises = [torch.randn(B * (T - 1), CFG.state_size).view(B, T - 1, -1) for _ in range(3)]
    base = ObjectiveConfig(free_nats=F, overshooting_distance=3, overshooting_kl_scale=0.5)
    k_2, k_3 = reference_overshooting_terms(rssm, post, actions, base, noises)
    expected = {"paper": (k_1 + 0.5 * (k_2 + k_3)) / 3,
                "reference": k_1 + 0.5 * (k_2 + k_3) / 2}
    losses = {}
    for weighting, kl_term in expected.items():
        cfg = replace(base, overshooting_weighting=weighting)
        torch.manual_seed(7)
        result = elbo(post, prior, cfg, rssm, actions)
        torch.testing.assert_close(result.metrics["model/kl_term"], kl_term.detach())
        plain = elbo(post, prior, ObjectiveConfig(free_nats=F))
        torch.testing.assert_close(result.loss, plain.loss - plain.metrics["model/kl_term"]
                                   + kl_term)
        losses[weighting] = result.loss.item()
    # the case tells the two weightings apart
    assert abs(losses["paper"] - losses["reference"]) > 0.1


@pytest.mark.parametrize("free", [0.0, 3.0])
def test_both_overshooting_weightings_are_the_standard_kl_at_distance_one(free):
    rssm, post, prior, actions = observed()
    losses = [elbo(post, prior, ObjectiveConfig(free_nats=free, overshooting_weighting=w,
                                                overshooting_kl_scale=0.5), rssm, actions)
              for w in ("paper", "reference")]
    torch.testing.assert_close(losses[0].loss, losses[1].loss, rtol=0, atol=0)
    torch.testing.assert_close(losses[1].metrics["model/kl_term"],
                               free_nats(kl_divergence(post, prior), free).mean().detach())


def test_an_unknown_overshooting_weighting_is_refused_in_one_line():
    with pytest.raises(ValueError) as error:
        ObjectiveConfig(overshooting_weighting="mean")
    assert str(error.value) == ("objective.overshooting_weighting must be one of paper, "
                                "reference, got 'mean'")
    assert ObjectiveConfig().overshooting_weighting == "reference"  # learned better
