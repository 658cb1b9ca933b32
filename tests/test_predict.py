"""Open-loop prediction (`planet_torch.predict`): which state and action each frame comes
from, and the error per step ahead with hand-computed values.

A window of T rows with C context rows: rows 0..C-1 are decoded from the posterior after
filtering obs[0..t]; row t >= C is decoded from the prior rolled forward from the last
filtered state under action[C..t] (action[t] led to obs[t], the replay's convention) and
never sees obs[C..]. A tiny untrained model is enough to check that: with the same seeded
generator every call makes the same random draws, so any change in what a frame is decoded
from comes from the inputs alone. What a frame is decoded from is read at the decoder's
input (the quantised frames of an untrained model hide small changes).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from planet_torch import config as config_lib
from planet_torch.latent import LatentState
from planet_torch.predict import Prediction, open_loop, write_error_csv
from planet_torch.preprocess import postprocess
from planet_torch.world_model import WorldModel

S, T, C, A = 2, 7, 3, 2
"""Windows, rows per window, context rows and action size of the tests below."""
BIT_DEPTH = 4
"""Not the default 5: predictions are drawn at the model's own bit depth."""


class Recorder:
    """A tiny world model whose RSSM calls (arguments and results) and decoder inputs are
    recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        torch.manual_seed(0)
        model_cfg = dataclasses.replace(config_lib.PRESETS["debug"]().model, bit_depth=BIT_DEPTH)
        self.model = WorldModel(model_cfg, A).eval()
        self.calls: dict[str, list[tuple[tuple[Any, ...], Any]]] = {"observe": [],
                                                                    "imagine": []}
        self.decoded: list[torch.Tensor] = []
        rssm = self.model.dynamics
        for name in self.calls:
            monkeypatch.setattr(rssm, name, self._spy(name, getattr(rssm, name)))
        self.model.decoder.register_forward_hook(
            lambda module, args, output: self.decoded.append(args[0]))

    def _spy(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            self.calls[name].append((args, result))
            return result
        return spy

    def predict(self, obs: np.ndarray, actions: np.ndarray) -> tuple[Prediction, torch.Tensor]:
        """open_loop with a freshly seeded generator; also the decoder's input (S, T, F)."""
        for calls in self.calls.values():
            calls.clear()
        self.decoded.clear()
        prediction = open_loop(self.model, obs, actions, C, torch.Generator().manual_seed(0))
        (feat,) = self.decoded
        return prediction, feat


def window() -> tuple[np.ndarray, np.ndarray]:
    """Random frames (S, T, 64, 64, 3) and actions (S, T, A), seeded, zero first action."""
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (S, T, 64, 64, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (S, T, A)).astype(np.float32)
    actions[:, 0] = 0
    return obs, actions


def test_context_frames_are_filtered_and_the_rest_is_the_prior_under_each_action(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The posterior filters the C context rows with action[0..C-1] only; the prior starts
    from the posterior at row C-1 and is rolled under action[C..T-1], one action per row;
    the frames are the decoded posterior rows, then the decoded prior rows, in order."""
    recorder = Recorder(monkeypatch)
    obs, actions = window()
    prediction, feat = recorder.predict(obs, actions)
    ((embed, observed_actions), (posterior, _)), = recorder.calls["observe"]
    assert embed.shape[:2] == (S, C)
    np.testing.assert_array_equal(observed_actions.numpy(), actions[:, :C])
    ((imagined_actions, start), prior), = recorder.calls["imagine"]
    np.testing.assert_array_equal(imagined_actions.numpy(), actions[:, C:])
    for got, want in zip(start, posterior.map(lambda x: x[:, C - 1]), strict=True):
        assert torch.equal(got, want)
    assert isinstance(prior, LatentState) and prior.belief.shape[:2] == (S, T - C)
    assert torch.equal(feat, torch.cat([posterior.feat(), prior.feat()], dim=1))
    with torch.inference_mode():
        frames = postprocess(recorder.model.decoder(feat), BIT_DEPTH).numpy()
    np.testing.assert_array_equal(prediction.model, frames)
    np.testing.assert_array_equal(prediction.truth, obs)
    assert prediction.context == C and prediction.model.shape == obs.shape


def test_predicted_frames_never_see_the_frames_they_predict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Other pictures in rows C..T-1 change nothing (the prior, not the posterior, predicts
    them); another picture in the last context row changes every predicted row."""
    recorder = Recorder(monkeypatch)
    obs, actions = window()
    reference, feat = recorder.predict(obs, actions)
    later = obs.copy()
    later[:, C:] = 255 - later[:, C:]
    changed, changed_feat = recorder.predict(later, actions)
    assert torch.equal(changed_feat, feat)
    np.testing.assert_array_equal(changed.model, reference.model)
    last_context = obs.copy()
    last_context[:, C - 1] = 255 - last_context[:, C - 1]
    _, context_feat = recorder.predict(last_context, actions)
    assert torch.equal(context_feat[:, :C - 1], feat[:, :C - 1])
    for t in range(C - 1, T):
        assert not torch.equal(context_feat[:, t], feat[:, t]), t


@pytest.mark.parametrize("row", range(C, T))
def test_predicted_row_k_uses_action_k_and_none_after_it(
        monkeypatch: pytest.MonkeyPatch, row: int) -> None:
    """Another action in row k (k >= C) leaves every row before k as it was and changes
    row k and every row after it: row k's prediction is made under action k."""
    recorder = Recorder(monkeypatch)
    obs, actions = window()
    _, feat = recorder.predict(obs, actions)
    other = actions.copy()
    other[:, row] = -other[:, row]
    _, other_feat = recorder.predict(obs, other)
    assert torch.equal(other_feat[:, :row], feat[:, :row])
    for t in range(row, T):
        assert not torch.equal(other_feat[:, t], feat[:, t]), t


def hand_made_prediction(context: int) -> Prediction:
    """Truth grey (100) everywhere; the model off by known amounts, in 2 windows of 4 rows.

    Squared errors per pixel in [0, 1] units, (51 / 255)^2 = 0.04 and (102 / 255)^2 = 0.16:

        row       0      1        2                     3
        window 0  0      +51 all  -51 all               +102 on the top half
                  0      0.04     0.04                  0.16 / 2 = 0.08
        window 1  0      0        +51 in channel 0      +51 all
                  0      0        0.04 / 3              0.04
        mean      0      0.02     0.02 + 0.02 / 3       0.06
    """
    truth = np.full((2, 4, 64, 64, 3), 100, np.uint8)
    model = truth.copy()
    model[0, 1] += 51
    model[0, 2] -= 51
    model[0, 3, :32] += 102
    model[1, 2, ..., 0] += 51
    model[1, 3] += 51
    return Prediction(truth, model, context)


@pytest.mark.parametrize("context, expected", [
    (1, [0.02, 0.02 + 0.02 / 3, 0.06]),
    (2, [0.02 + 0.02 / 3, 0.06]),
])
def test_ahead_mse_by_hand(context: int, expected: list[float]) -> None:
    """`mse` averages over pixels, channels and windows per row; `ahead_mse` keeps the rows
    after the context, entry k for k + 1 steps ahead."""
    prediction = hand_made_prediction(context)
    np.testing.assert_allclose(prediction.mse(), [0.0, 0.02, 0.02 + 0.02 / 3, 0.06],
                               rtol=1e-6)
    np.testing.assert_allclose(prediction.ahead_mse(), expected, rtol=1e-6)


def test_error_frames_and_csv_by_hand(tmp_path: Path) -> None:
    """The error frames are |truth - model| without uint8 wrap-around (100 - 49 is 51, not
    205), and the CSV has one `steps_ahead,mse` row per predicted row."""
    prediction = hand_made_prediction(context=1)
    error = prediction.error()
    assert np.all(error[0, 1] == 51) and np.all(error[0, 2] == 51)
    assert np.all(error[0, 3, :32] == 102) and np.all(error[0, 3, 32:] == 0)
    assert np.all(error[1, 2, ..., 0] == 51) and np.all(error[1, 2, ..., 1:] == 0)
    with write_error_csv(prediction, tmp_path / "error.csv").open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["steps_ahead", "mse"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]],
                               [0.02, 0.02 + 0.02 / 3, 0.06], rtol=1e-5)
