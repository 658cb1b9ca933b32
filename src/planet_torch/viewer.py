"""`planet test --render`: a live window of the episodes and of what the model sees.

Every planning step the window shows, for each environment, the real frame o_t next to the
model's reconstruction of it, the mean of p(o_t | h_t, s_t) decoded from the agent's
posterior state (h_t, s_t ~ q(s_t | h_t, e_t)) after it observed o_t, upscaled. The window
is a matplotlib figure on an interactive backend (TkAgg by default; tkinter ships with most
Pythons); matplotlib is imported only when a window opens. Without a display the tool
stops at once with a one-line hint: write files with `--video` instead, or run under a
virtual display (`xvfb-run planet test RUN_DIR --render`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch

from planet_torch.agent import Agent
from planet_torch.video import tile, upscale

WINDOW_SCALE = 3
"""Each 64x64 picture is shown this many times larger."""


class NoDisplayError(RuntimeError):
    """A window was asked for where none can open."""


def check_display() -> None:
    """Raise `NoDisplayError` on Linux when neither DISPLAY nor WAYLAND_DISPLAY is set."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "--render needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set; use "
            "--video to write the episodes to MP4 and GIF files, or run under a virtual "
            "display: xvfb-run planet test RUN_DIR --render")


@torch.inference_mode()
def reconstruct(agent: Agent) -> np.ndarray:
    """The decoded posterior of the agent's N environments: uint8 (N, 64, 64, 3).

    Decodes feat = [h_t, s_t] of the agent's current state with the observation model and
    maps the mean image back to pixels with the model's bit depth.
    """
    if agent.state is None:
        raise RuntimeError("the agent has not observed anything yet")
    return agent.model.decode_pixels(agent.state.feat()).cpu().numpy()


def side_by_side(real: np.ndarray, model: np.ndarray, scale: int = WINDOW_SCALE) -> np.ndarray:
    """Real and model frames (N, H, W, 3) -> one picture: a [real | model] pair per cell."""
    pairs = np.concatenate([real, model], axis=2)  # (N, H, 2W, 3)
    return upscale(tile(pairs[:, None])[0], scale)


class Viewer:
    """A window that shows each step's real frames beside the model's reconstructions.

    Pass `on_step` to `trained.play` (or `scoring.score`) and `closed` as its stop test:
    closing the window ends the episodes.
    """

    def __init__(self, title: str, backend: str = "TkAgg") -> None:
        check_display()
        import matplotlib.pyplot as pyplot  # only when a window is wanted

        try:
            pyplot.switch_backend(backend)
        except ImportError as error:
            raise NoDisplayError(f"cannot open a {backend} window ({error}); install tkinter "
                                 "(e.g. apt-get install python3-tk) or use --video") from error
        self._pyplot = pyplot
        self.figure = pyplot.figure(title)
        self.axes = self.figure.add_axes((0, 0, 1, 1))
        self.axes.set_axis_off()
        self.image: Any = None

    @property
    def closed(self) -> bool:
        """Whether the user closed the window."""
        return not self._pyplot.fignum_exists(self.figure.number)

    def show(self, picture: np.ndarray) -> None:
        """Draw a uint8 picture (H, W, 3) and let the window process its events."""
        if self.image is None:
            height, width = picture.shape[:2]
            self.figure.set_size_inches(width / self.figure.dpi, height / self.figure.dpi)
            self.image = self.axes.imshow(picture, interpolation="nearest")
            self._pyplot.show(block=False)
        else:
            self.image.set_data(picture)
        self.figure.canvas.draw_idle()
        self.figure.canvas.flush_events()

    def on_step(self, obs: np.ndarray, agent: Agent) -> None:
        """Show observations (N, 64, 64, 3) beside the agent's reconstruction of them."""
        if not self.closed:
            self.show(side_by_side(obs, reconstruct(agent)))

    def close(self) -> None:
        """Close the window if it is still open."""
        self._pyplot.close(self.figure)
