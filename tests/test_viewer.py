"""The live viewer's pieces that need no window (`planet_torch.viewer`)."""

from __future__ import annotations

import numpy as np
import pytest

from planet_torch.viewer import NoDisplayError, check_display, side_by_side


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
