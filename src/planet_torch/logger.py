"""Metrics to TensorBoard and to a plain JSON-lines file that every tool can read.

Scalars are namespaced (`train/`, `test/`, `model/`, `time/`) and logged against
environment steps (agent steps times the action repeat). Each line of `metrics.jsonl` is
`{"env_steps": ..., "name": value, ...}`; `planet plot` reads it with
`runs.read_metrics`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from planet_torch.runs import METRICS_NAME


class Logger:
    """Writes scalars and videos of one run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(str(self.run_dir))
        self._metrics = (self.run_dir / METRICS_NAME).open("a")

    def scalars(self, env_steps: int, values: Mapping[str, float]) -> None:
        """Log scalar values at an environment step, to TensorBoard and metrics.jsonl."""
        clean = {name: float(value) for name, value in values.items()}
        for name, value in clean.items():
            self.writer.add_scalar(name, value, env_steps)
        self._metrics.write(json.dumps({"env_steps": int(env_steps), **clean}) + "\n")
        self._metrics.flush()

    def video(self, env_steps: int, tag: str, frames: np.ndarray, fps: int = 10) -> None:
        """Log a video, uint8 (T, H, W, 3), as an animated GIF that TensorBoard plays."""
        buffer = io.BytesIO()
        iio.imwrite(buffer, frames, extension=".gif", duration=1000 / fps, loop=0)
        image = Summary.Image(height=frames.shape[1], width=frames.shape[2], colorspace=3,
                              encoded_image_string=buffer.getvalue())
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]),
                                            env_steps)

    def close(self) -> None:
        """Flush and close both outputs."""
        self.writer.close()
        self._metrics.close()
