"""The convolutional encoder, the observation model p(o_t | h_t, s_t) and the reward model
p(r_t | h_t, s_t) (paper appendix A).

All take and return batch-major tensors with any number of leading dimensions, so a (B, L)
batch of images goes through each network as one call over B * L images.

Sizes at depth d (the paper's d = 32), for 64x64x3 images:

    encoder:  3 -> conv d (k4 s2) 31x31 -> 2d 14x14 -> 4d 6x6 -> 8d 2x2 -> flatten 32d (1024)
    decoder:  [h, s] -> dense 32d -> 1x1 -> deconv 4d (k5 s2) 5x5 -> 2d 13x13 -> d (k6) 30x30
              -> 3 (k6) 64x64
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_SHAPE = (3, 64, 64)
"""Channels, height and width of the images the networks are built for."""


def _check_trailing(x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"{what} expects (..., {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}")


class Encoder(nn.Module):
    """e_t = enc(o_t): four stride-2 convolutions with ReLU, flattened to 32 * depth features."""

    def __init__(self, depth: int = 32) -> None:
        super().__init__()
        self.depth = depth
        channels = [3, depth, 2 * depth, 4 * depth, 8 * depth]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=4, stride=2)
            for c_in, c_out in itertools.pairwise(channels))
        self.to(memory_format=torch.channels_last)

    @property
    def embed_size(self) -> int:
        """Size of e_t: 8 * depth channels on a 2x2 grid."""
        return 32 * self.depth

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., 3, 64, 64) preprocessed image -> embed (..., 32 * depth)."""
        _check_trailing(obs, IMAGE_SHAPE, "Encoder")
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *IMAGE_SHAPE).contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            x = F.relu(conv(x))
        return x.reshape(*lead, self.embed_size)


class ObservationDecoder(nn.Module):
    """Mean of p(o_t | h_t, s_t) = Normal(dec(h_t, s_t), 1): dense, then four deconvolutions."""

    def __init__(self, feature_size: int, depth: int = 32) -> None:
        super().__init__()
        self.depth = depth
        self.dense = nn.Linear(feature_size, 32 * depth)
        channels = [32 * depth, 4 * depth, 2 * depth, depth, 3]
        kernels = [5, 5, 6, 6]
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, kernel_size=k, stride=2)
            for c_in, c_out, k in zip(channels[:-1], channels[1:], kernels, strict=True))
        self.to(memory_format=torch.channels_last)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """feat (..., |h| + |s|) -> image mean (..., 3, 64, 64)."""
        _check_trailing(feat, (self.dense.in_features,), "ObservationDecoder")
        lead = feat.shape[:-1]
        x = self.dense(feat.reshape(-1, feat.shape[-1]))
        # The first deconvolution sees a 1x1 input, so it is exactly a matrix product with its
        # (in, out * 5 * 5) weight: computed as one, which is cheaper than the convolution.
        first = self.deconvs[0]
        x = x @ first.weight.flatten(1)
        x = x.view(-1, first.out_channels, *first.kernel_size) + first.bias[:, None, None]
        x = F.relu(x).contiguous(memory_format=torch.channels_last)
        for i, deconv in enumerate(self.deconvs[1:], start=1):
            x = deconv(x)
            if i < len(self.deconvs) - 1:
                x = F.relu(x)
        return x.reshape(*lead, *IMAGE_SHAPE)


class RewardModel(nn.Module):
    """Mean of p(r_t | h_t, s_t) = Normal(mlp(h_t, s_t), 1): ReLU MLP to one output."""

    def __init__(self, feature_size: int, layers: int = 2, units: int = 200) -> None:
        super().__init__()
        sizes = [feature_size] + [units] * layers
        hidden = [m for a, b in itertools.pairwise(sizes)
                  for m in (nn.Linear(a, b), nn.ReLU())]
        self.net = nn.Sequential(*hidden, nn.Linear(sizes[-1], 1))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """feat (..., |h| + |s|) -> reward mean (...)."""
        _check_trailing(feat, (self.net[0].in_features,), "RewardModel")
        return self.net(feat).squeeze(-1)

