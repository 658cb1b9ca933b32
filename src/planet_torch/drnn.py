"""The purely deterministic recurrent model (paper figure 2a), `--model.kind drnn`.

The model state is the belief h_t alone, the state of a GRU; there is no stochastic state,
so the bound has no KL term and the loss is the log-likelihood of images and rewards. The
encoder's embedding enters the recurrence, as in the official code's models, where the
prior is the same step with a zero embedding:

    filtering (posterior)  h_t = f(h_{t-1}, a_t, e_t)    e_t = enc(o_t)
    prediction (prior)     h~_t = f(h_{t-1}, a_t, 0)     no observation

The decoder and reward model read the prediction h~_t, not h_t: with e_t inside h_t, decoding
h_t would train an autoencoder that copies the embedding, and leave the prediction that
planning rolls out untrained. So the loss is -ln p(o_t, r_t | o_{<t}, a_{<=t}), the exact
log-likelihood of a deterministic model one step ahead; the filtered h_t is trained through
the next step's prediction. The first frame of a chunk is predicted from h_0 = 0 alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from planet_torch.config import ModelConfig
from planet_torch.latent import LatentDynamics, LatentState, standard_normal


class DRNN(LatentDynamics):
    """GRU transition h_t = f(h_{t-1}, a_t, e_t), with e_t = 0 when imagining; no state s_t."""

    def __init__(self, cfg: ModelConfig, action_size: int, embed_size: int | None = None) -> None:
        super().__init__(cfg, action_size, cfg.belief_size, 0)
        self.embed_size = cfg.embed_size if embed_size is None else embed_size
        self.input_net = nn.Linear(action_size + self.embed_size, cfg.hidden_size)
        self.gru = nn.GRUCell(cfg.hidden_size, cfg.belief_size)

    def _step(self, prev: LatentState, action: torch.Tensor, embed: torch.Tensor
              ) -> LatentState:
        """h_t = GRU(relu(W [a_t, e_t] + b), h_{t-1}), with the empty state of this model."""
        self.check(prev, action)
        x = F.relu(self.input_net(torch.cat([action, embed], dim=-1)))
        return prev._replace(belief=self.gru(x, prev.belief))

    def img_step(self, prev: LatentState, action: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LatentState:
        """One prediction step h~_t = f(h_{t-1}, a_t, 0); noise, if given, is (B, 0)."""
        standard_normal(noise, tuple(prev.state.shape), action, generator)
        zero = action.new_zeros(action.shape[0], self.embed_size)
        return self._step(prev, action, zero)

    def obs_step(self, prev: LatentState, action: torch.Tensor, embed: torch.Tensor,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[LatentState, LatentState]:
        """(prior, posterior) = (f(h_{t-1}, a_t, 0), f(h_{t-1}, a_t, e_t))."""
        return self.img_step(prev, action, noise), self._step(prev, action, embed)

    def likelihood_states(self, posterior: LatentState, prior: LatentState) -> LatentState:
        """The predictions h~_t: images and rewards are predicted before o_t is seen."""
        return prior
