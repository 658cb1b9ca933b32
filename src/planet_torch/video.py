"""Videos of episodes and predictions: tiling, upscaling, and MP4 + GIF files.

Frames are uint8 (T, H, W, 3). The 64x64 observations are too small for most players and
codecs, so `write_videos` upscales them by an integer factor (nearest neighbour, so pixels
stay sharp) and pads to a multiple of 16 pixels, the macro block of H.264 (which also needs
even sizes). MP4 goes through imageio's ffmpeg plugin with the binary that imageio-ffmpeg
ships; GIF through imageio's pillow plugin. Neither needs a display or ImageMagick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np

VIDEOS_DIR = "videos"
"""Subfolder of a run folder (or of `--output`) that the tools write videos to."""
MACRO_BLOCK = 16
"""Width and height of written videos are multiples of this (H.264 macro blocks)."""
MIN_VIDEO_SIZE = 256
"""Frames are upscaled until their smaller side reaches at least this many pixels."""
DEFAULT_FPS = 10.0
"""Frame rate when the environment does not say its own."""


def stack_episodes(frames: Sequence[np.ndarray]) -> np.ndarray:
    """N frame sequences of possibly different lengths -> (N, T_max, H, W, C).

    A sequence that ends early keeps showing its last frame, as `run_episodes` does.
    """
    if not frames:
        raise ValueError("need at least one frame sequence")
    longest = max(len(f) for f in frames)
    return np.stack([np.concatenate([f, np.repeat(f[-1:], longest - len(f), axis=0)])
                     for f in frames])


def tile(frames: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(N, T, H, W, C) -> (T, rows * H, columns * W, C), row-major, blank cells black.

    `columns` defaults to ceil(sqrt(N)), which keeps the grid close to square.
    """
    if frames.ndim != 5:
        raise ValueError(f"expected frames (N, T, H, W, C), got shape {frames.shape}")
    N, T, H, W, C = frames.shape
    columns = columns or math.ceil(math.sqrt(N))
    rows = math.ceil(N / columns)
    cells = np.zeros((rows * columns, T, H, W, C), frames.dtype)
    cells[:N] = frames
    grid = cells.reshape(rows, columns, T, H, W, C).transpose(2, 0, 3, 1, 4, 5)
    return grid.reshape(T, rows * H, columns * W, C)


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W, C) -> (..., factor * H, factor * W, C) by repeating pixels."""
    if factor < 1:
        raise ValueError(f"upscale factor must be >= 1, got {factor}")
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def fit_for_codecs(frames: np.ndarray, min_size: int = MIN_VIDEO_SIZE) -> np.ndarray:
    """(T, H, W, C) upscaled to a smaller side >= min_size, padded to multiples of 16."""
    H, W = frames.shape[1:3]
    frames = upscale(frames, max(1, math.ceil(min_size / min(H, W))))
    pad_h = -frames.shape[1] % MACRO_BLOCK
    pad_w = -frames.shape[2] % MACRO_BLOCK
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


def write_videos(frames: np.ndarray, stem: Path, fps: float | None = None) -> list[Path]:
    """Write uint8 frames (T, H, W, 3) as `stem.mp4` and `stem.gif`; returns both paths.

    Frames are first passed through `fit_for_codecs`, so both files hold the same, larger
    pictures. `fps` defaults to `DEFAULT_FPS`.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} "
                         f"{frames.shape}")
    fps = fps or DEFAULT_FPS
    frames = fit_for_codecs(frames)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    mp4, gif = stem.with_name(stem.name + ".mp4"), stem.with_name(stem.name + ".gif")
    iio.imwrite(mp4, frames, plugin="FFMPEG", fps=fps, macro_block_size=MACRO_BLOCK)
    iio.imwrite(gif, frames, extension=".gif", duration=1000 / fps, loop=0)
    return [mp4, gif]
