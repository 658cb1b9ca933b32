import pytest
import torch
from torch.distributions import Independent, Normal
from torch.nn import functional as F

from planet_torch.config import ModelConfig
from planet_torch.latent import LatentState
from planet_torch.rssm import RSSM

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
]
CFG = ModelConfig(belief_size=12, state_size=5, hidden_size=10, depth=1)
A, E = 2, 9
B, T = 3, 7


def make_rssm(seed: int = 0) -> RSSM:
    torch.manual_seed(seed)
    return RSSM(CFG, A, E)


def random_state(b: int = B, seed: int = 1) -> LatentState:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(b, CFG.state_size, generator=g)
    std = torch.rand(b, CFG.state_size, generator=g) + 0.1
    return LatentState(torch.randn(b, CFG.belief_size, generator=g),
                       mean + std * torch.randn(b, CFG.state_size, generator=g), mean, std)


def inputs(seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, E, generator=g), torch.randn(B, T, A, generator=g),
            torch.randn(B, T, CFG.state_size, generator=g))


# LatentState


def test_latent_state_helpers():
    steps = [random_state(seed=s) for s in range(4)]
    stacked = LatentState.stack(steps)
    assert stacked.belief.shape == (B, 4, CFG.belief_size)
    assert stacked.state.shape == stacked.mean.shape == stacked.std.shape == (B, 4, 5)
    for t, step in enumerate(steps):
        for field, whole in zip(step, stacked, strict=True):
            assert torch.equal(whole[:, t], field)
    assert LatentState.stack(steps, dim=0).belief.shape == (4, B, CFG.belief_size)

    last = stacked.map(lambda x: x[:, -1])
    assert all(torch.equal(a, b) for a, b in zip(last, steps[-1], strict=True))

    feat = stacked.feat()
    assert feat.shape == (B, 4, CFG.belief_size + CFG.state_size)
    assert torch.equal(feat[..., :CFG.belief_size], stacked.belief)   # [h, s], in that order
    assert torch.equal(feat[..., CFG.belief_size:], stacked.state)

    dist = stacked.dist()
    assert dist.batch_shape == (B, 4) and dist.event_shape == (5,)
    reference = Normal(stacked.mean, stacked.std).log_prob(stacked.state).sum(-1)
    torch.testing.assert_close(dist.log_prob(stacked.state), reference)


def test_latent_state_detach():
    state = random_state().map(lambda x: x.clone().requires_grad_())
    moved = state.map(lambda x: x * 2)
    detached = moved.detach()
    assert all(x.requires_grad for x in moved)
    assert not any(x.requires_grad for x in detached)
    assert all(torch.equal(a, b) for a, b in zip(moved, detached, strict=True))
    assert isinstance(detached, LatentState)


def test_initial_state():
    rssm = make_rssm()
    state = rssm.initial_state(4)
    assert state.belief.shape == (4, 12) and state.state.shape == (4, 5)
    assert not state.belief.any() and not state.state.any() and not state.mean.any()
    assert torch.equal(state.std, torch.ones(4, 5))


# The transition


def test_img_step_is_the_gru_on_the_previous_belief():
    """h_t = GRUCell(relu(dense([s_{t-1}, a_t])), h_{t-1}); the GRU gets h_{t-1}, not zeros."""
    rssm = make_rssm()
    prev = random_state()
    action = torch.randn(B, A)
    noise = torch.randn(B, 5)
    step = rssm.img_step(prev, action, noise)
    x = F.relu(rssm.state_action(torch.cat([prev.state, action], -1)))
    torch.testing.assert_close(step.belief, rssm.gru(x, prev.belief))
    mean, raw_std = rssm.prior_net(step.belief).chunk(2, -1)
    torch.testing.assert_close(step.mean, mean)
    torch.testing.assert_close(step.std, F.softplus(raw_std) + CFG.min_std)
    torch.testing.assert_close(step.state, step.mean + step.std * noise)

    # only the previous belief differs: the next belief (and prior) differ too
    other = prev._replace(belief=prev.belief + 1.0)
    step2 = rssm.img_step(other, action, noise)
    assert (step.belief - step2.belief).abs().min() > 1e-4
    assert not torch.allclose(step.mean, step2.mean)
    # and the previous state and the action matter as well
    assert not torch.allclose(rssm.img_step(prev._replace(state=prev.state + 1), action,
                                            noise).belief, step.belief)
    assert not torch.allclose(rssm.img_step(prev, action + 1, noise).belief, step.belief)


def test_obs_step_posterior_reads_belief_and_embed():
    rssm = make_rssm()
    prev, action = random_state(), torch.randn(B, A)
    embed, noise = torch.randn(B, E), torch.randn(B, 5)
    prior, post = rssm.obs_step(prev, action, embed, noise)
    img = rssm.img_step(prev, action, noise)
    torch.testing.assert_close(prior.belief, img.belief)
    torch.testing.assert_close(prior.mean, img.mean)
    torch.testing.assert_close(prior.std, img.std)
    assert torch.equal(post.belief, prior.belief)
    mean, raw_std = rssm.posterior_net(torch.cat([prior.belief, embed], -1)).chunk(2, -1)
    torch.testing.assert_close(post.mean, mean)
    torch.testing.assert_close(post.std, F.softplus(raw_std) + CFG.min_std)
    torch.testing.assert_close(post.state, mean + post.std * noise)
    _, post2 = rssm.obs_step(prev, action, embed + 1, noise)
    assert not torch.allclose(post.mean, post2.mean)


# Sequences


@pytest.mark.parametrize("device", DEVICES)
def test_observe_and_imagine_shapes_and_dtypes(device):
    rssm = make_rssm().to(device)
    embeds, actions, noise = (x.to(device) for x in inputs())
    post, prior = rssm.observe(embeds, actions, noise=noise)
    for states in (post, prior):
        assert states.belief.shape == (B, T, 12)
        assert states.state.shape == states.mean.shape == states.std.shape == (B, T, 5)
        assert all(x.dtype == torch.float32 and x.device.type == device for x in states)
        assert states.std.min() >= CFG.min_std
    start = post.map(lambda x: x[:, -1])
    imagined = rssm.imagine(actions[:, :4], start, noise=noise[:, :4])
    assert imagined.belief.shape == (B, 4, 12) and imagined.state.shape == (B, 4, 5)
    assert all(x.device.type == device for x in imagined)


def test_observe_with_explicit_noise_is_deterministic_and_uses_it():
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    post1, prior1 = rssm.observe(embeds, actions, noise=noise)
    post2, prior2 = rssm.observe(embeds, actions, noise=noise)
    assert all(torch.equal(a, b) for a, b in zip(post1 + prior1, post2 + prior2, strict=True))
    torch.testing.assert_close(post1.state, post1.mean + post1.std * noise)
    post3, _ = rssm.observe(embeds, actions, noise=noise + 0.5)
    assert not torch.allclose(post1.state, post3.state)
    # the generator pins the noise just as well
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = rssm.observe(embeds, actions, generator=g1)[0]
    b = rssm.observe(embeds, actions, generator=g2)[0]
    assert torch.equal(a.state, b.state)


def test_imagine_with_explicit_noise_is_deterministic_and_matches_img_step():
    rssm = make_rssm()
    _, actions, noise = inputs()
    start = random_state()
    a = rssm.imagine(actions, start, noise=noise)
    b = rssm.imagine(actions, start, noise=noise)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    state = start
    for t in range(T):
        state = rssm.img_step(state, actions[:, t], noise[:, t])
        for whole, field in zip(a, state, strict=True):
            torch.testing.assert_close(whole[:, t], field)


def test_observe_starts_from_given_state():
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    zero = rssm.observe(embeds, actions, noise=noise)[0]
    same = rssm.observe(embeds, actions, rssm.initial_state(B), noise=noise)[0]
    assert torch.equal(zero.belief, same.belief)
    other = rssm.observe(embeds, actions, random_state(), noise=noise)[0]
    assert not torch.allclose(zero.belief[:, 0], other.belief[:, 0])


def test_observe_belief_carries_memory_of_early_actions():
    """Changing a_0 changes every later belief; steps before a change are untouched."""
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    post, prior = rssm.observe(embeds, actions, noise=noise)
    changed = actions.clone()
    changed[:, 0] += 1.0
    post2, prior2 = rssm.observe(embeds, changed, noise=noise)
    per_step = (post.belief - post2.belief).abs().amax(dim=(0, 2))
    assert torch.all(per_step > 1e-5), per_step          # all of t = 0..T-1, the last included
    assert not torch.allclose(prior.mean[:, -1], prior2.mean[:, -1])

    later = actions.clone()
    later[:, 4] += 1.0
    post3, _ = rssm.observe(embeds, later, noise=noise)
    assert torch.equal(post.belief[:, :4], post3.belief[:, :4])
    assert not torch.allclose(post.belief[:, 4:], post3.belief[:, 4:])


def test_observe_feeds_posterior_samples_forward():
    """e_t reaches q(s_t) and, through the posterior sample s_t, p(s_{t+1} | h_{t+1})."""
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    post, prior = rssm.observe(embeds, actions, noise=noise)
    changed = embeds.clone()
    changed[:, 3] += 1.0
    post2, prior2 = rssm.observe(changed, actions, noise=noise)
    assert torch.equal(prior.mean[:, :4], prior2.mean[:, :4])    # p(s_3 | h_3) cannot see e_3
    assert torch.equal(post.mean[:, :3], post2.mean[:, :3])
    assert not torch.allclose(post.mean[:, 3], post2.mean[:, 3])
    assert not torch.allclose(prior.mean[:, 4], prior2.mean[:, 4])
    assert not torch.allclose(post.belief[:, -1], post2.belief[:, -1])


def test_imagine_belief_carries_memory_of_early_actions():
    rssm = make_rssm()
    _, actions, noise = inputs()
    start = random_state()
    a = rssm.imagine(actions, start, noise=noise)
    changed = actions.clone()
    changed[:, 0] -= 1.0
    b = rssm.imagine(changed, start, noise=noise)
    assert torch.all((a.belief - b.belief).abs().amax(dim=(0, 2)) > 1e-5)
    assert not torch.allclose(a.mean[:, -1], b.mean[:, -1])


# Bad input


def test_wrong_noise_shape_raises():
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    with pytest.raises(ValueError, match=r"noise must have shape \(3, 7, 5\), got \(3, 6, 5\)"):
        rssm.observe(embeds, actions, noise=noise[:, :6])
    with pytest.raises(ValueError, match=r"got \(3, 7, 4\)"):
        rssm.imagine(actions, random_state(), noise=noise[..., :4])
    with pytest.raises(ValueError, match=r"got \(2, 5\)"):
        rssm.img_step(random_state(), actions[:, 0], noise=noise[:2, 0])


def test_bad_action_shape_raises_with_actual_shape():
    rssm = make_rssm()
    embeds, actions, _ = inputs()
    with pytest.raises(ValueError, match=r"got \(3, 3\)"):
        rssm.img_step(random_state(), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"got \(4, 2\)"):      # batch differs from the state's
        rssm.img_step(random_state(), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"got \(3, 3\)"):
        rssm.obs_step(random_state(), torch.zeros(3, 3), torch.zeros(3, E))
    with pytest.raises(ValueError, match=r"\(3, 7\)"):          # actions without the A axis
        rssm.observe(embeds, actions[..., 0])
    with pytest.raises(ValueError, match=r"\(3, 6, 2\)"):       # T differs from the embeds'
        rssm.observe(embeds, actions[:, :6])
    with pytest.raises(ValueError, match=r"\(3, 7, 4\)"):   # wrong A, the whole shape reported
        rssm.observe(embeds, torch.zeros(3, 7, 4))
    with pytest.raises(ValueError, match=r"got \(3, 7\)"):
        rssm.imagine(actions[..., 0], random_state())
    with pytest.raises(ValueError, match=r"got \(3, 7, 1\)"):
        rssm.imagine(torch.zeros(3, 7, 1), random_state())


def test_dist_is_the_diagonal_gaussian_used_for_samples():
    rssm = make_rssm()
    embeds, actions, noise = inputs()
    post, _ = rssm.observe(embeds, actions, noise=noise)
    dist = post.dist()
    assert isinstance(dist, Independent)
    reference = Independent(Normal(post.mean, post.std), 1)
    torch.testing.assert_close(dist.log_prob(post.state), reference.log_prob(post.state))
    torch.testing.assert_close(dist.entropy(), reference.entropy())


def test_sequence_methods_report_the_whole_action_shape():
    rssm = RSSM(ModelConfig(belief_size=8, state_size=3, hidden_size=8, depth=1), action_size=2,
                embed_size=5)
    with pytest.raises(ValueError, match=r"got \(4, 6, 5\) and \(4, 6, 3\)"):
        rssm.observe(torch.zeros(4, 6, 5), torch.zeros(4, 6, 3))
    with pytest.raises(ValueError, match=r"got \(4, 6, 3\)"):
        rssm.imagine(torch.zeros(4, 6, 3), rssm.initial_state(4))
