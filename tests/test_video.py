"""Tiling, upscaling and writing of videos (`planet_torch.video`)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from planet_torch.video import fit_for_codecs, stack_episodes, tile, upscale, write_videos


def frames(n: int, t: int, h: int = 4, w: int = 4) -> np.ndarray:
    """(n, t, h, w, 3) uint8 where every pixel of sequence i, frame j holds 10 * i + j."""
    values = 10 * np.arange(n)[:, None] + np.arange(t)[None, :]
    return np.broadcast_to(values[:, :, None, None, None], (n, t, h, w, 3)).astype(np.uint8)


def test_stack_episodes_repeats_the_last_frame_of_shorter_ones() -> None:
    stacked = stack_episodes([frames(1, 3)[0], frames(1, 5)[0]])
    assert stacked.shape == (2, 5, 4, 4, 3)
    assert stacked[0, :, 0, 0, 0].tolist() == [0, 1, 2, 2, 2]


def test_tile_places_sequences_row_major_and_fills_with_black() -> None:
    grid = tile(frames(3, 2) + 1)  # +1 so that no real cell is black
    assert grid.shape == (2, 8, 8, 3)  # 2x2 grid of 4x4 cells
    assert grid[1, 0, 0, 0] == 2 and grid[1, 0, 4, 0] == 12 and grid[1, 4, 0, 0] == 22
    assert grid[1, 4, 4, 0] == 0  # the empty fourth cell
    assert tile(frames(3, 2), columns=3).shape == (2, 4, 12, 3)


def test_upscale_repeats_pixels() -> None:
    image = np.arange(4, dtype=np.uint8).reshape(1, 2, 2, 1)
    assert upscale(image, 2)[0, :, :, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                      [2, 2, 3, 3], [2, 2, 3, 3]]
    with pytest.raises(ValueError, match="factor"):
        upscale(image, 0)


def test_fit_for_codecs_upscales_to_256_and_pads_to_multiples_of_16() -> None:
    image = np.full((1, 50, 70, 3), 255, np.uint8)
    fitted = fit_for_codecs(image)
    assert fitted.shape == (1, 304, 432, 3)  # x6 = 300 x 420, padded to 16-multiples
    assert fitted[0, 299, 419, 0] == 255 and fitted[0, 300, 420, 0] == 0


def test_write_videos_writes_mp4_and_gif_that_decode(tmp_path: Path) -> None:
    video = np.repeat(np.linspace(0, 255, 5).astype(np.uint8), 30 * 40 * 3).reshape(5, 30, 40, 3)
    mp4, gif = write_videos(video, tmp_path / "sub" / "clip", fps=5)
    assert (mp4.name, gif.name) == ("clip.mp4", "clip.gif")
    read_mp4 = iio.imread(mp4, plugin="FFMPEG", index=None)
    read_gif = iio.imread(gif, index=None)[..., :3]
    assert read_mp4.shape == read_gif.shape == (5, 272, 368, 3)  # x9: 270 x 360, padded
    assert abs(int(read_gif[4, 0, 0, 0]) - 255) <= 2 and int(read_mp4[0, 5, 5, 0]) < 10


def test_write_videos_rejects_frames_that_are_not_uint8_rgb(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8 frames"):
        write_videos(np.zeros((2, 8, 8, 3), np.float32), tmp_path / "x")
