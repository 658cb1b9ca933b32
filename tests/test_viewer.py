"""The live viewer (`planet_torch.viewer`): its pieces, and a real window on a virtual display."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageGrab

from planet_torch.viewer import NoDisplayError, Viewer, check_display, side_by_side


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


def test_window_shows_the_picture_and_reports_being_closed(virtual_display: str) -> None:
    """A TkAgg window on a real X server: the picture reaches the screen, as a screenshot
    of the display shows, and closing the window the way a window manager does ends it."""
    import matplotlib.pyplot as pyplot

    picture = np.zeros((64, 128, 3), np.uint8)
    picture[:, :64, 0] = 255  # a red half and a blue half, colours nothing else on screen has
    picture[:, 64:, 2] = 255
    viewer = Viewer("planet-torch test window")
    try:
        viewer.show(picture)
        for _ in range(20):
            viewer.figure.canvas.flush_events()
        screen = np.asarray(ImageGrab.grab(xdisplay=virtual_display))[..., :3]
        for colour in ([255, 0, 0], [0, 0, 255]):
            pixels = np.all(screen == colour, axis=-1).sum()
            assert 0.9 * 64 * 64 <= pixels <= 1.2 * 64 * 64, (colour, pixels)
        assert not viewer.closed
        window = viewer.figure.canvas.manager.window
        window.tk.eval(window.protocol("WM_DELETE_WINDOW"))  # the close button's handler
        viewer.figure.canvas.flush_events()
        assert viewer.closed
    finally:
        viewer.close()
        pyplot.switch_backend("Agg")
