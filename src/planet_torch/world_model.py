"""The world model: encoder, RSSM, observation and reward models, and one training update.

Data flow of an update on a (B, L) batch of chunks:

    obs uint8 (B, L, 64, 64, 3) --preprocess--> (B, L, 3, 64, 64)
      --Encoder, one call over B*L images--> embed (B, L, E)
      --RSSM.observe, a loop over L--> posterior, prior (B, L, ...)
      --ObservationDecoder / RewardModel, one call each--> image and reward means
      --negative_elbo--> loss --backward, clip at 1000, Adam-->
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import nn

from planet_torch.config import ModelConfig, ObjectiveConfig, OptimConfig
from planet_torch.networks import Encoder, ObservationDecoder, RewardModel
from planet_torch.objective import Loss, negative_elbo
from planet_torch.preprocess import preprocess
from planet_torch.rssm import RSSM, LatentState


class TorchBatch(NamedTuple):
    """A replay batch on the training device."""

    obs: torch.Tensor
    """uint8 (B, L, 64, 64, 3)."""
    action: torch.Tensor
    """float32 (B, L, A): action[t] led to obs[t]."""
    reward: torch.Tensor
    """float32 (B, L): reward[t] came with obs[t]."""


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device when precision is `bf16`, otherwise nothing."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")


class WorldModel(nn.Module):
    """Encoder, RSSM, observation decoder and reward model of one task."""

    def __init__(self, cfg: ModelConfig, action_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.action_size = action_size
        self.encoder = Encoder(cfg.depth)
        self.rssm = RSSM(cfg, action_size, self.encoder.embed_size)
        self.decoder = ObservationDecoder(cfg.feature_size, cfg.depth)
        self.reward_model = RewardModel(cfg.feature_size, cfg.reward_layers, cfg.reward_units)

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return next(self.parameters()).device

    def loss(self, batch: TorchBatch, cfg: ObjectiveConfig, precision: str = "fp32",
             generator: torch.Generator | None = None) -> tuple[Loss, LatentState]:
        """Negative ELBO of a batch; also returns the posterior states (B, L, ...).

        Convolutions run under `precision`; the RSSM, KL and log-likelihoods run in fp32.
        """
        self._check_batch(batch)
        obs = preprocess(batch.obs, cfg.bit_depth, generator)
        with autocast(obs.device, precision):
            embed = self.encoder(obs)
        posterior, prior = self.rssm.observe(embed.float(), batch.action, generator=generator)
        feat = posterior.feat()
        with autocast(obs.device, precision):
            image_mean = self.decoder(feat)
        reward_mean = self.reward_model(feat)
        loss = negative_elbo(image_mean.float(), obs, reward_mean, batch.reward, posterior,
                             prior, cfg, self.rssm, batch.action)
        return loss, posterior

    def _check_batch(self, batch: TorchBatch) -> None:
        B, L = batch.obs.shape[:2]
        expected = {"obs": (B, L, 64, 64, 3), "action": (B, L, self.action_size),
                    "reward": (B, L)}
        for name, shape in expected.items():
            actual = tuple(getattr(batch, name).shape)
            if actual != shape:
                raise ValueError(f"batch.{name} must have shape {shape}, got {actual}")


def make_optimizer(model: WorldModel, cfg: OptimConfig) -> torch.optim.Adam:
    """Adam with the paper's learning rate and epsilon."""
    return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)


def update(model: WorldModel, optimizer: torch.optim.Optimizer, batch: TorchBatch,
           objective: ObjectiveConfig, grad_clip: float, precision: str = "fp32",
           generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One gradient step on the negative ELBO; returns detached metrics (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    result, _ = model.loss(batch, objective, precision, generator)
    result.loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {**result.metrics, "model/grad_norm": grad_norm.detach()}
