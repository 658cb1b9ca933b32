"""Images in and out of the model: bit-depth reduction with dequantisation noise, and back.

The paper (appendix A) reduces images to 5 bits per channel and adds uniform noise so that
the model cannot put infinite density on the discrete pixel levels:

    x = floor(x_uint8 / 2^(8-b)) / 2^b + U(0, 1/2^b) - 0.5,        x in [-0.5, 0.5)

with b = 5 by default. The noise is drawn on a grid of 2^16 steps per level, u = k / 2^16
with k uniform in 0..2^16 - 1: then every value above is exact in float32 (at most 8 + 16
significant bits), so x never rounds up to 0.5 or into the next level, which a continuous
draw close to 1 does (in float32, 31 + 0.99999994 is 32).

`postprocess` maps a model output (or a preprocessed image) back to uint8:
level = floor((x + 0.5) * 2^b), clipped to [0, 2^b - 1], times 2^(8-b). So
`postprocess(preprocess(o))` is `o` with its low 8-b bits cleared.
"""

from __future__ import annotations

import torch

NOISE_STEPS = 2**16
"""Grid steps of the dequantisation noise per level; 8 + 16 bits fit float32's 24 exactly."""


def _check_bit_depth(bit_depth: int) -> None:
    if not 1 <= bit_depth <= 8:
        raise ValueError(f"bit_depth must be in 1..8, got {bit_depth}")


def preprocess(obs: torch.Tensor, bit_depth: int = 5,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 images (..., H, W, C) -> float (..., C, H, W) in [-0.5, 0.5), on obs's device.

    Implements x = floor(o / 2^(8-b)) / 2^b + U(0, 1/2^b) - 0.5 (paper, appendix A).
    """
    _check_bit_depth(bit_depth)
    if obs.dtype != torch.uint8:
        raise TypeError(f"preprocess expects uint8 images, got {obs.dtype}")
    if obs.dim() < 3:
        raise ValueError(f"preprocess expects (..., H, W, C) images, got shape {tuple(obs.shape)}")
    level = torch.bitwise_right_shift(obs, 8 - bit_depth).float()  # floor(o / 2^(8-b))
    # In place on the noise, in steps of 1 / (2^b * NOISE_STEPS): (level * NOISE_STEPS + k)
    # is an integer below 2^24, so every step is exact and equals the formula above; one
    # buffer instead of five makes it 2 to 3 times faster on a CPU.
    x = torch.rand(obs.shape, generator=generator, device=obs.device)
    x.mul_(NOISE_STEPS).floor_().add_(level, alpha=NOISE_STEPS)
    x.mul_(1 / (2**bit_depth * NOISE_STEPS)).sub_(0.5)
    return x.movedim(-1, -3)


def postprocess(x: torch.Tensor, bit_depth: int = 5) -> torch.Tensor:
    """float (..., C, H, W) around [-0.5, 0.5) -> uint8 (..., H, W, C) for pictures.

    Implements o = clip(floor((x + 0.5) * 2^b), 0, 2^b - 1) * 2^(8-b).
    """
    _check_bit_depth(bit_depth)
    levels = 2**bit_depth
    level = torch.floor((x.detach().float() + 0.5) * levels).clamp(0, levels - 1)
    return (level * 2 ** (8 - bit_depth)).to(torch.uint8).movedim(-3, -1)
