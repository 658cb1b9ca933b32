"""The world model: encoder, latent dynamics, observation and reward models, and one update.

Data flow of an update on a (B, L) batch of chunks:

    obs uint8 (B, L, 64, 64, 3) --preprocess--> (B, L, 3, 64, 64)
      --Encoder, one call over B*L images--> embed (B, L, E)
      --dynamics.observe, a loop over L--> posterior, prior (B, L, ...)
      --ObservationDecoder / RewardModel on the likelihood states, one call each-->
        image and reward means
      --negative_elbo--> loss --backward, clip at 1000, Adam-->

The random draws of an update (dequantisation noise, posterior samples, latent overshooting
samples) are made first, in `WorldModel.prepare`; everything after them, `WorldModel.elbo`,
is a deterministic function of its inputs. So `Updater` can hand `elbo` to torch.compile and
get, from the same draws, the same update as the eager code up to float rounding. No step
reads a tensor's value on the host (tests/test_acceleration.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from planet_torch.acceleration import Fallback, autocast, check_precision, compile_or_none
from planet_torch.config import ModelConfig, ObjectiveConfig, OptimConfig
from planet_torch.drnn import DRNN
from planet_torch.initialisation import initialise
from planet_torch.latent import LatentDynamics, LatentState
from planet_torch.networks import Encoder, ObservationDecoder, RewardModel
from planet_torch.objective import Loss, negative_elbo
from planet_torch.preprocess import postprocess, preprocess
from planet_torch.rssm import RSSM
from planet_torch.ssm import SSM

__all__ = ["DYNAMICS", "ModelInputs", "TorchBatch", "Updater", "WorldModel", "check_model_kind",
           "make_optimizer"]

DYNAMICS: dict[str, type[LatentDynamics]] = {"rssm": RSSM, "ssm": SSM, "drnn": DRNN}
"""`model.kind` -> the latent dynamics model: the paper's RSSM (the default), its purely
stochastic SSM or its purely deterministic recurrent model (the model designs of paper
figure 2). Each is built as `(ModelConfig, action_size, embed_size)`."""


def check_model_kind(kind: str) -> None:
    """Raise ValueError unless `kind` names a model of `DYNAMICS`."""
    if kind not in DYNAMICS:
        raise ValueError(f"unknown model.kind {kind!r}; choose one of "
                         f"{', '.join(sorted(DYNAMICS))}")


class TorchBatch(NamedTuple):
    """A replay batch on the training device."""

    obs: torch.Tensor
    """uint8 (B, L, 64, 64, 3)."""
    action: torch.Tensor
    """float32 (B, L, A): action[t] led to obs[t]."""
    reward: torch.Tensor
    """float32 (B, L): reward[t] came with obs[t]."""


class ModelInputs(NamedTuple):
    """A batch ready for `WorldModel.elbo`, the update's random draws already made."""

    obs: torch.Tensor
    """float32 (B, L, 3, 64, 64) in [-0.5, 0.5): preprocessed, dequantisation noise added."""
    action: torch.Tensor
    """float32 (B, L, A)."""
    reward: torch.Tensor
    """float32 (B, L)."""
    state_noise: torch.Tensor
    """float32 (B, L, state_size): standard-normal draws for the posterior samples s_t."""
    overshooting_noise: torch.Tensor | None = None
    """float32 (D, B * (L - 1), state_size): draws of the latent overshooting rollout, if D > 1."""


class WorldModel(nn.Module):
    """Encoder, latent dynamics (`model.kind`), observation decoder and reward model of one
    task."""

    def __init__(self, cfg: ModelConfig, action_size: int) -> None:
        super().__init__()
        check_model_kind(cfg.kind)
        self.cfg = cfg
        self.action_size = action_size
        self.encoder = Encoder(cfg.depth)
        self.dynamics = DYNAMICS[cfg.kind](cfg, action_size, self.encoder.embed_size)
        features = self.dynamics.feature_size
        self.decoder = ObservationDecoder(features, cfg.depth)
        self.reward_model = RewardModel(features, cfg.reward_layers, cfg.reward_units)
        initialise(self, cfg.init)
        self.register_load_state_dict_pre_hook(_rssm_to_dynamics)

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return next(self.parameters()).device

    def encode_pixels(self, obs: torch.Tensor, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
        """uint8 images (..., 64, 64, 3) -> embeddings e_t = enc(x_t) (..., E), where x_t is
        the image at the model's bit depth with dequantisation noise (`preprocess`)."""
        return self.encoder(preprocess(obs, self.cfg.bit_depth, generator))

    def decode_pixels(self, feat: torch.Tensor) -> torch.Tensor:
        """Model states [h_t, s_t] (..., |h| + |s|) -> uint8 images (..., 64, 64, 3): the mean
        of p(o_t | h_t, s_t) at the model's bit depth (`postprocess`)."""
        return postprocess(self.decoder(feat), self.cfg.bit_depth)

    def prepare(self, batch: TorchBatch, cfg: ObjectiveConfig,
                generator: torch.Generator | None = None) -> ModelInputs:
        """Check the batch, preprocess its images and draw the posterior noise, then (for
        latent overshooting, D > 1) the overshooting rollout's noise, in that order."""
        self._check_batch(batch)
        obs = preprocess(batch.obs, self.cfg.bit_depth, generator)
        B, L = batch.reward.shape
        S = self.dynamics.state_size
        state_noise = torch.randn((B, L, S), generator=generator, device=obs.device)
        overshooting_noise = None
        if cfg.overshooting_distance > 1:
            overshooting_noise = torch.randn((cfg.overshooting_distance, B * (L - 1), S),
                                             generator=generator, device=obs.device)
        return ModelInputs(obs, batch.action, batch.reward, state_noise, overshooting_noise)

    def elbo(self, inputs: ModelInputs, cfg: ObjectiveConfig, precision: str = "fp32"
             ) -> tuple[Loss, LatentState]:
        """Negative ELBO of prepared inputs, and the posterior states (B, L, ...).

        Deterministic given the inputs. The convolutional encoder and decoder run under
        `precision`; the dynamics, the reward model, the KL and the log-likelihoods in fp32.
        """
        obs = inputs.obs
        with autocast(obs.device, precision):
            embed = self.encoder(obs)
        posterior, prior = self.dynamics.observe(embed.float(), inputs.action,
                                                 noise=inputs.state_noise)
        feat = self.dynamics.likelihood_states(posterior, prior).feat()
        with autocast(obs.device, precision):
            image_mean = self.decoder(feat)
        reward_mean = self.reward_model(feat)
        loss = negative_elbo(image_mean.float(), obs, reward_mean, inputs.reward, posterior,
                             prior, cfg, self.dynamics, inputs.action,
                             inputs.overshooting_noise)
        return loss, posterior

    def loss(self, batch: TorchBatch, cfg: ObjectiveConfig, precision: str = "fp32",
             generator: torch.Generator | None = None) -> tuple[Loss, LatentState]:
        """Negative ELBO of a batch; also returns the posterior states (B, L, ...).

        `prepare` then `elbo`: convolutions run under `precision`; the dynamics, KL and
        log-likelihoods run in fp32.
        """
        return self.elbo(self.prepare(batch, cfg, generator), cfg, precision)

    def _check_batch(self, batch: TorchBatch) -> None:
        B, L = batch.obs.shape[:2]
        expected = {"obs": (B, L, 64, 64, 3), "action": (B, L, self.action_size),
                    "reward": (B, L)}
        for name, shape in expected.items():
            actual = tuple(getattr(batch, name).shape)
            if actual != shape:
                raise ValueError(f"batch.{name} must have shape {shape}, got {actual}")


def _rssm_to_dynamics(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str,
                      *_: object) -> None:
    """Rename the keys `rssm.*` of a state dict saved before the dynamics became a choice
    (`model.kind`) to `dynamics.*`, so that older checkpoints load."""
    old = prefix + "rssm."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "dynamics." + key[len(old):]] = state_dict.pop(key)


def make_optimizer(model: WorldModel, cfg: OptimConfig) -> torch.optim.Adam:
    """Adam with the paper's learning rate and epsilon.

    On CUDA the fused implementation (one kernel for all parameters) does the same step.
    """
    fused = all(p.device.type == "cuda" for p in model.parameters())
    return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps,
                            fused=fused or None)


class Updater:
    """One Adam step on the negative ELBO, with the forward and backward pass optionally compiled.

    Per call: draw the batch's noise (`WorldModel.prepare`), zero the gradients, loss and
    backward through `WorldModel.elbo` (compiled if asked), clip the gradient norm, Adam step.
    Metrics come back as detached device tensors, to be read once per logging interval.
    With `compile=True` a failure of the compiled step (also on its first call, where the
    compiling happens) redoes that step eagerly and keeps training eagerly, with one warning.
    """

    def __init__(self, model: WorldModel, optimizer: torch.optim.Optimizer,
                 objective: ObjectiveConfig, grad_clip: float, precision: str = "fp32",
                 compile: bool = False) -> None:
        check_precision(precision)
        self.model = model
        self.optimizer = optimizer
        self.objective = objective
        self.grad_clip = grad_clip
        self.precision = precision
        elbo = compile_or_none(model.elbo, "the world-model update") if compile else None
        self._gradients: Fallback[[ModelInputs], dict[str, torch.Tensor]] = Fallback(
            None if elbo is None else partial(self._loss_backward, elbo),
            partial(self._loss_backward, model.elbo), "the compiled world-model update")

    @property
    def compiled(self) -> bool:
        """Whether updates still run the compiled forward and backward pass."""
        return self._gradients.active

    def _loss_backward(self, elbo: Callable[..., tuple[Loss, LatentState]],
                       inputs: ModelInputs) -> dict[str, torch.Tensor]:
        """Fresh gradients of the loss in the parameters' .grad; returns the loss metrics."""
        self.optimizer.zero_grad(set_to_none=True)
        result, _ = elbo(inputs, self.objective, self.precision)
        result.loss.backward()
        return result.metrics

    def __call__(self, batch: TorchBatch, generator: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns detached metrics, still on the device."""
        inputs = self.model.prepare(batch, self.objective, generator)
        metrics = self._gradients(inputs)
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return {**metrics, "model/grad_norm": grad_norm.detach()}

