"""The live viewer (`planet_torch.viewer`): its pieces, and a real window on a virtual display."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
from PIL import ImageGrab

from planet_torch import config as config_lib
from planet_torch.agent import Agent
from planet_torch.envs import ToyReachEnv
from planet_torch.planner import CEMPlanner
from planet_torch.preprocess import postprocess
from planet_torch.viewer import (
    WINDOW_SCALE,
    NoDisplayError,
    Viewer,
    check_display,
    reconstruct,
    side_by_side,
)
from planet_torch.world_model import WorldModel

WINDOW_TIMEOUT = 30
"""Seconds the window test waits for the window to be mapped and its picture drawn."""


def test_side_by_side_pairs_real_and_model_frames_per_environment() -> None:
    real = np.full((3, 64, 64, 3), 200, np.uint8)
    model = np.full((3, 64, 64, 3), 100, np.uint8)
    picture = side_by_side(real, model, scale=2)
    assert picture.shape == (2 * 128, 2 * 256, 3)  # 2x2 grid of 64 x 128 pairs, doubled
    assert picture[0, 0, 0] == 200 and picture[0, 128, 0] == 100  # real left, model right
    assert picture[-1, -1, 0] == 0  # the fourth cell is empty


@pytest.mark.skipif("not sys.platform.startswith('linux')")
def test_check_display_needs_display_or_wayland(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NoDisplayError, match="xvfb-run"):
        check_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    check_display()


def colour_counts(display: str) -> list[int]:
    """Pixels of pure red and of pure blue in a screenshot of the whole X display."""
    screen = np.asarray(ImageGrab.grab(xdisplay=display))[..., :3]
    return [int(np.all(screen == colour, axis=-1).sum()) for colour in ([255, 0, 0], [0, 0, 255])]


def test_window_shows_the_picture_and_reports_being_closed(virtual_display: str) -> None:
    """A TkAgg window on a real X server: the picture reaches the screen, as a screenshot
    of the display shows, and closing the window the way a window manager does ends it.

    The screenshot is polled until the window is mapped and both colours are drawn (or
    `WINDOW_TIMEOUT` passes): mapping and drawing happen in the X server, after `show`."""
    import matplotlib.pyplot as pyplot

    picture = np.zeros((64, 128, 3), np.uint8)
    picture[:, :64, 0] = 255  # a red half and a blue half, colours nothing else on screen has
    picture[:, 64:, 2] = 255
    expected = 64 * 64
    viewer = Viewer("planet-torch test window")
    try:
        viewer.show(picture)
        window = viewer.figure.canvas.manager.window
        deadline = time.monotonic() + WINDOW_TIMEOUT
        while True:
            viewer.figure.canvas.flush_events()
            mapped = bool(window.winfo_ismapped())
            counts = colour_counts(virtual_display) if mapped else [0, 0]
            if all(0.9 * expected <= n for n in counts):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"after {WINDOW_TIMEOUT} s the window is "
                            f"{'mapped' if mapped else 'not mapped'} and shows {counts} red "
                            f"and blue pixels of {expected} each")
            time.sleep(0.05)
        for colour, pixels in zip(("red", "blue"), counts, strict=True):
            assert pixels <= 1.2 * expected, (colour, pixels)
        assert not viewer.closed
        window.tk.eval(window.protocol("WM_DELETE_WINDOW"))  # the close button's handler
        viewer.figure.canvas.flush_events()
        assert viewer.closed
    finally:
        viewer.close()
        pyplot.switch_backend("Agg")


def frames_of_two_starts() -> np.ndarray:
    """Reset frames of toy-reach from two seeds (the dot in two places): (2, 64, 64, 3)."""
    env = ToyReachEnv()
    return np.stack([env.reset(seed=seed)[0] for seed in (0, 1)])


@pytest.mark.filterwarnings("ignore:.*non-interactive")  # Agg stands in for a window
def test_the_reconstruction_shown_is_the_decoded_posterior_of_each_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After the agent observed a step, each cell of the window shows that environment's
    frame on the left and, on the right, exactly the decoder's mean image for the agent's
    posterior state (h_t and the sample s_t ~ q) of that environment at the run's bit
    depth: not another environment's, not one of the posterior's mean. A second step, with
    the environments' frames swapped, replaces the picture."""
    monkeypatch.setenv("DISPLAY", ":0")  # check_display; the Agg backend needs no server
    debug = config_lib.PRESETS["debug"]()
    torch.manual_seed(0)
    bit_depth = 4
    model = WorldModel(dataclasses.replace(debug.model, bit_depth=bit_depth), 2).eval()
    planner = CEMPlanner(debug.planner, -torch.ones(2), torch.ones(2))
    agent = Agent(model, planner, torch.Generator().manual_seed(0))
    agent.reset(2)
    viewer = Viewer("test", backend="Agg")
    try:
        obs = frames_of_two_starts()
        for step in range(2):
            agent.act(obs)
            with torch.inference_mode():
                posterior = postprocess(model.decoder(agent.state.feat()), bit_depth).numpy()
                at_mean = agent.state._replace(state=agent.state.mean)
                other = postprocess(model.decoder(at_mean.feat()), bit_depth).numpy()
            viewer.on_step(obs, agent)
            shown = viewer.image.get_array()[::WINDOW_SCALE, ::WINDOW_SCALE]
            assert shown.shape == (64, 4 * 64, 3)  # one row of two [real | model] cells
            for n in range(2):
                np.testing.assert_array_equal(shown[:, 128 * n:128 * n + 64], obs[n])
                np.testing.assert_array_equal(shown[:, 128 * n + 64:128 * (n + 1)],
                                              posterior[n], err_msg=f"step {step}, env {n}")
            np.testing.assert_array_equal(reconstruct(agent), posterior)
            assert not np.array_equal(posterior[0], posterior[1])  # a swap would show
            assert not np.array_equal(posterior, other)  # the sample matters to the picture
            obs = obs[::-1].copy()
    finally:
        viewer.close()
