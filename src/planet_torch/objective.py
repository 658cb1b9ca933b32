"""The training objective: the negative evidence lower bound of paper equation 3.

For a chunk of T steps the model maximises

    sum_t  E_q[ ln p(o_t | h_t, s_t) ]                         image term
         + E_q[ ln p(r_t | h_t, s_t) ] * reward_scale          reward term
         - max( KL( q(s_t | h_t, e_t) || p(s_t | h_t) ), F )   KL term with free nats F

so the loss is its negative, averaged over batch and time. The KL is summed over the state
dimensions first and free nats clamp that sum, per (batch, time) element: below F nats the
KL term is constant and gives no gradient. The KL runs from posterior to prior. A model
without a stochastic state (`model.kind drnn`) has no KL term: its loss is the two
likelihood terms alone, evaluated on the states the model names (`likelihood_states`).

Latent overshooting (paper section 4, equation 7) replaces the KL term by one over
distances d = 1..D of the KL between the posterior and the d-step prior
p(s_t | s_{t-d}), the d-step terms weighted by beta and their posterior targets held fixed
(stop-gradient). `objective.overshooting_weighting` says how the distances add up: `paper`
averages them, equation 7 as written; `reference` keeps the one-step KL at full weight and
adds beta times the mean of the others, the official code's form. With D = 1 both are the
KL term above. docs/elbo.md derives all of this.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from planet_torch.config import ObjectiveConfig
from planet_torch.latent import LatentDynamics, LatentState

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Loss(NamedTuple):
    """The scalar to minimise and detached per-term metrics (tensors, read when logged)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def gaussian_log_likelihood(mean: torch.Tensor, target: torch.Tensor, event_dims: int
                            ) -> torch.Tensor:
    """ln Normal(target; mean, 1) summed over the last `event_dims` dimensions (n elements):

        -(1/2) sum (target - mean)^2 - n ln(2 pi) / 2.

    The squares come from `mse_loss`, one fused pass forward and one backward over the
    elements; written as `(target - mean) ** 2` with the constant added per element, the
    image term took about a third of a cpu-preset update on a 2-core CPU.
    """
    squared = nn.functional.mse_loss(mean, target, reduction="none")
    if event_dims:
        squared = squared.sum(dim=tuple(range(-event_dims, 0)))
    return -0.5 * squared - math.prod(mean.shape[mean.dim() - event_dims:]) * _HALF_LOG_2PI


def image_log_likelihood(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ln p(o_t | h_t, s_t) with unit variance, summed over the 3 x 64 x 64 pixels: (...)."""
    return gaussian_log_likelihood(mean, target, event_dims=3)


def reward_log_likelihood(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ln p(r_t | h_t, s_t) with unit variance: (...)."""
    return gaussian_log_likelihood(mean, target, event_dims=0)


def kl_divergence(posterior: LatentState, prior: LatentState) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, summed over state dimensions: (...).

    Per dimension: ln(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.
    """
    var_ratio = (posterior.std / prior.std) ** 2
    mean_term = ((posterior.mean - prior.mean) / prior.std) ** 2
    return 0.5 * (var_ratio + mean_term - 1 - var_ratio.log()).sum(-1)


def free_nats(kl: torch.Tensor, nats: float) -> torch.Tensor:
    """max(KL, F) element-wise, for KL already summed over state dimensions.

    Below F the value is the constant F, so the gradient is zero; above it the plain KL.
    """
    return kl.clamp(min=nats)


def overshooting_kl(dynamics: LatentDynamics, posterior: LatentState, actions: torch.Tensor,
                    cfg: ObjectiveConfig, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over d = 2..D of the mean of max(KL(sg(q(s_t)) || p(s_t | s_{t-d})), F): a scalar.

    posterior (B, T, ...) from `LatentDynamics.observe`, actions (B, T, A). Starting from the
    posterior sample at every t0 < T - 1, the prior is rolled forward open-loop; after d steps
    it is the d-step prior of time t0 + d, compared with the fixed posterior there while
    t0 + d < T.
    noise (D, B * (T - 1), state_size): standard-normal draws of the rollout's samples
    (fresh ones if None).
    """
    B, T = actions.shape[:2]
    starts = torch.arange(T - 1, device=actions.device)
    state = posterior.map(lambda x: x[:, :-1].reshape(B * (T - 1), -1))
    targets = posterior.detach()
    total = actions.new_zeros(())
    for d in range(1, cfg.overshooting_distance + 1):
        index = (starts + d).clamp(max=T - 1)
        step_actions = actions[:, index].reshape(B * (T - 1), -1)
        state = dynamics.img_step(state, step_actions, None if noise is None else noise[d - 1])
        if d == 1:
            continue  # the one-step prior is the standard KL term
        target = targets.map(lambda x, i=index: x[:, i].reshape(B * (T - 1), -1))
        kl = free_nats(kl_divergence(target, state), cfg.free_nats).view(B, T - 1)
        valid = (starts + d < T).to(kl.dtype)
        total = total + (kl * valid).sum() / (valid.sum() * B)
    return total


def negative_elbo(image_mean: torch.Tensor, obs: torch.Tensor, reward_mean: torch.Tensor,
                  reward: torch.Tensor, posterior: LatentState, prior: LatentState,
                  cfg: ObjectiveConfig, dynamics: LatentDynamics | None = None,
                  actions: torch.Tensor | None = None,
                  overshooting_noise: torch.Tensor | None = None) -> Loss:
    """The loss of paper equation 3 (with free nats), or equation 7 when D > 1.

    image_mean, obs (B, T, 3, 64, 64); reward_mean, reward (B, T); posterior and prior (B, T,
    ...) from `LatentDynamics.observe`. Latent overshooting (D > 1) also needs the dynamics
    and actions, and takes its rollout's draws from `overshooting_noise` (see
    `overshooting_kl`). Dynamics without a stochastic state (`stochastic` False) give no KL
    term and no KL or entropy metrics; without dynamics the KL term is there.

        loss = mean_{b,t}[ -ln p(o) - reward_scale ln p(r) ] + KL term

    with K_1 = mean_{b,t} max(KL_1, F) and K_d = mean_{b,t} max(KL_d, F) for d = 2..D (each
    over the pairs with a d-step prior in the chunk, see `overshooting_kl`), the KL term of
    `cfg.overshooting_weighting`:

        paper        (1/D) (K_1 + beta sum_{d=2..D} K_d)          equation 7 as written
        reference    K_1 + beta (1/(D-1)) sum_{d=2..D} K_d        the official code's form

    Both are K_1 for D = 1.
    """
    image_ll = image_log_likelihood(image_mean, obs).mean()
    reward_ll = reward_log_likelihood(reward_mean, reward).mean()
    loss = -image_ll - cfg.reward_scale * reward_ll
    metrics = {"model/image_nll": -image_ll, "model/reward_nll": -reward_ll}
    if dynamics is None or dynamics.stochastic:
        kl = kl_divergence(posterior, prior)
        kl_term = free_nats(kl, cfg.free_nats).mean()
        distance = cfg.overshooting_distance
        if distance > 1:
            if dynamics is None or actions is None:
                raise ValueError("latent overshooting (overshooting_distance > 1) needs the "
                                 "dynamics and actions")
            overshoot = overshooting_kl(dynamics, posterior, actions, cfg, overshooting_noise)
            if cfg.overshooting_weighting == "reference":
                kl_term = kl_term + cfg.overshooting_kl_scale * overshoot / (distance - 1)
            else:
                kl_term = (kl_term + cfg.overshooting_kl_scale * overshoot) / distance
        loss = loss + kl_term
        metrics |= {"model/kl_term": kl_term, "model/kl": kl.mean(),
                    "model/prior_entropy": prior.dist().entropy().mean(),
                    "model/posterior_entropy": posterior.dist().entropy().mean()}
    return Loss(loss, {k: v.detach() for k, v in {"model/loss": loss, **metrics}.items()})
