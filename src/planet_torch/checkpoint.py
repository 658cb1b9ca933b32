"""Checkpoints: everything to continue a run exactly, written atomically, loaded safely.

A checkpoint is a dict of tensors and plain Python values (state_dicts, the config as a
dict, counters, RNG states). It is written to a temporary file in the same folder and then
renamed over the old one, so an interruption never leaves a half-written checkpoint. It is
read with `torch.load(weights_only=True)`, so a checkpoint cannot run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from planet_torch import config as config_lib
from planet_torch.runs import CHECKPOINT_NAME
from planet_torch.world_model import WorldModel

FORMAT = 1
"""Layout version of the checkpoint dict."""


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit."""


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus the format number) to path atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def resolve(path: Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint file or a run folder's latest one onto the CPU, checking its format."""
    path = resolve(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the file is unusable
        raise CheckpointError(f"checkpoint {path} is corrupt or not a checkpoint: "
                              f"{type(error).__name__}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {path} has format {found}, expected {FORMAT}")
    missing = {"config", "model", "action_size"} - set(payload)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(sorted(missing))}")
    return payload


def restore_model(payload: dict[str, Any], device: torch.device | str = "cpu"
                  ) -> tuple[config_lib.Config, WorldModel]:
    """Rebuild the config and world model of a loaded checkpoint on `device`."""
    try:
        cfg = config_lib.from_dict(payload["config"])
        model = WorldModel(cfg.model, int(payload["action_size"]))
        model.load_state_dict(payload["model"])
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint does not fit this planet-torch: {error}") from error
    return cfg, model.to(device)
