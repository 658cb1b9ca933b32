import pytest
import torch

from planet_torch import checkpoint
from planet_torch import config as config_lib
from planet_torch.checkpoint import CheckpointError
from planet_torch.world_model import WorldModel


def _payload(cfg):
    model = WorldModel(cfg.model, action_size=2)
    return {"config": config_lib.to_dict(cfg), "model": model.state_dict(), "action_size": 2}, model


def test_round_trip_rebuilds_an_identical_model(tmp_path):
    cfg = config_lib.PRESETS["debug"]()
    payload, model = _payload(cfg)
    checkpoint.save(tmp_path / "checkpoint.pt", payload)
    restored_cfg, restored = checkpoint.restore_model(checkpoint.load(tmp_path))
    assert restored_cfg == cfg
    for (name, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(tmp_path)
    cfg = config_lib.PRESETS["debug"]()
    payload, _ = _payload(cfg)
    checkpoint.save(tmp_path / "checkpoint.pt", payload)
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoints_cannot_run_code(tmp_path, capsys):
    torch.save({"format": checkpoint.FORMAT, "x": _Evil()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path)
    assert "must never run" not in capsys.readouterr().out


def test_incompatible_format_config_and_shapes(tmp_path):
    cfg = config_lib.PRESETS["debug"]()
    payload, _ = _payload(cfg)
    torch.save({**payload, "format": 99}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.load(tmp_path)
    checkpoint.save(tmp_path / "checkpoint.pt", {**payload, "config": {
        **payload["config"], "version": 0}})
    with pytest.raises(CheckpointError, match="version"):
        checkpoint.restore_model(checkpoint.load(tmp_path))
    bigger = config_lib.to_dict(config_lib.override(cfg, {"model.belief_size": 32}))
    checkpoint.save(tmp_path / "checkpoint.pt", {**payload, "config": bigger})
    with pytest.raises(CheckpointError, match="does not fit"):
        checkpoint.restore_model(checkpoint.load(tmp_path))
