"""Open-loop video prediction, as in the paper's figures 4 and 7.

For a window of an episode, the first C frames are filtered with the posterior
q(s_t | h_t, e_t); from the last filtered state the prior p(s_t | h_t) alone is rolled
forward under the executed actions for the remaining frames, and both are decoded:

    frames 0..C-1   reconstructions   mean of p(o_t | h_t, s_t), s_t ~ q
    frames C..T-1   open-loop prediction   mean of p(o_t | h_t, s_t), s_t ~ p, no images seen

`planet predict` takes one window of context + horizon frames from each of several
noise-free episodes of the trained agent (`predict_episodes`), and reports the error of
each step ahead (`Prediction.ahead_mse`, `write_error_csv`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from planet_torch.replay import Episode
from planet_torch.world_model import WorldModel


class Prediction(NamedTuple):
    """Ground truth and model frames of S windows, uint8 (S, T, 64, 64, 3)."""

    truth: np.ndarray
    model: np.ndarray
    context: int = 0
    """C: the first C frames of `model` are reconstructions, the rest predictions."""

    def error(self) -> np.ndarray:
        """Absolute difference per pixel, uint8 (S, T, 64, 64, 3)."""
        return np.abs(self.truth.astype(np.int16) - self.model.astype(np.int16)).astype(np.uint8)

    def mse(self) -> np.ndarray:
        """Mean squared error per step in [0, 1] pixel units, averaged over windows: (T,)."""
        diff = (self.truth.astype(np.float32) - self.model.astype(np.float32)) / 255
        return (diff**2).mean(axis=(0, 2, 3, 4))

    def ahead_mse(self) -> np.ndarray:
        """`mse` of the open-loop frames only: (T - C,), entry k for k + 1 steps ahead."""
        return self.mse()[self.context:]

    def grid(self) -> np.ndarray:
        """Frames (T, 64 * S, 64 * 3, 3): truth | model | error per row, windows stacked."""
        rows = np.concatenate([self.truth, self.model, self.error()], axis=3)  # (S,T,H,3W,C)
        return np.concatenate(list(rows), axis=1)


@torch.inference_mode()
def open_loop(model: WorldModel, obs: np.ndarray, actions: np.ndarray, context: int,
              generator: torch.Generator | None = None) -> Prediction:
    """Filter `context` frames, then predict the rest of each window open-loop.

    obs uint8 (S, T, 64, 64, 3) and actions (S, T, A) in the replay's row convention.
    """
    if obs.ndim != 5 or actions.ndim != 3 or obs.shape[:2] != actions.shape[:2]:
        raise ValueError(f"expected obs (S, T, 64, 64, 3) and actions (S, T, A), got "
                         f"{obs.shape} and {actions.shape}")
    if not 1 <= context < obs.shape[1]:
        raise ValueError(f"context must be in 1..{obs.shape[1] - 1}, got {context}")
    device = model.device
    pixels = torch.as_tensor(obs, device=device)
    action = torch.as_tensor(actions, device=device, dtype=torch.float32)
    embed = model.encode_pixels(pixels[:, :context], generator)
    posterior, prior = model.dynamics.observe(embed, action[:, :context], generator=generator)
    last = posterior.map(lambda x: x[:, -1])
    imagined = model.dynamics.imagine(action[:, context:], last, generator=generator)
    seen = model.dynamics.likelihood_states(posterior, prior)
    feat = torch.cat([seen.feat(), imagined.feat()], dim=1)
    frames = model.decode_pixels(feat)
    return Prediction(np.asarray(obs), frames.cpu().numpy(), context)


def fit_horizon(rows: int, context: int, horizon: int) -> int:
    """The horizon that fits after `context` frames in episodes of `rows` frames.

    Returns `horizon` itself when context + horizon <= rows, otherwise the shorter horizon
    rows - context; raises ValueError when not even one frame is left to predict.
    """
    if context < 1 or horizon < 1:
        raise ValueError(f"context and horizon must be >= 1, got {context} and {horizon}")
    if rows <= context:
        raise ValueError(f"the episodes have {rows} frames, too few for {context} context "
                         "frames and one predicted frame; lower --context")
    return min(horizon, rows - context)


def predict_episodes(model: WorldModel, episodes: Sequence[Episode], context: int,
                     horizon: int, seed: int = 0) -> Prediction:
    """Open-loop prediction on one window of context + horizon rows per episode.

    Each window starts at a uniformly random row (seeded) of its episode, so the sequences
    show different phases of the task; all windows are predicted in one batched call.
    """
    length = context + horizon
    short = min(e.length for e in episodes)
    if short < length:
        raise ValueError(f"an episode has {short} frames, fewer than context + horizon = "
                         f"{length}; use fit_horizon to shorten the horizon")
    rng = np.random.default_rng(seed)
    starts = [int(rng.integers(e.length - length + 1)) for e in episodes]
    obs = np.stack([e.obs[s:s + length] for e, s in zip(episodes, starts, strict=True)])
    actions = np.stack([e.action[s:s + length] for e, s in zip(episodes, starts, strict=True)])
    generator = torch.Generator(model.device).manual_seed(seed)
    return open_loop(model, obs, actions, context, generator)


def write_error_csv(prediction: Prediction, path: Path) -> Path:
    """Write `steps_ahead,mse` rows, one per predicted frame, to a CSV file; returns path.

    MSE is in [0, 1] pixel units, averaged over pixels, channels and sequences.
    """
    with Path(path).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["steps_ahead", "mse"])
        for k, value in enumerate(prediction.ahead_mse(), start=1):
            writer.writerow([k, f"{value:.6g}"])
    return Path(path)
