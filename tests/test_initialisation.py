"""`--model.init glorot`: the official code's starting weights (Glorot uniform kernels, zero
biases, GRUBlockCell's gate bias 1), checked against the bound computed by hand, and a model
so drawn trains; `torch`, the default, keeps PyTorch's layer defaults."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from planet_torch import config as config_lib
from planet_torch import world_model
from planet_torch.config import ModelConfig, ObjectiveConfig
from planet_torch.initialisation import glorot_gru, glorot_layer
from planet_torch.world_model import DYNAMICS, TorchBatch, WorldModel

SMALL = ModelConfig(belief_size=16, state_size=4, hidden_size=16, depth=2, reward_units=16)


def _model(init: str, kind: str = "rssm", seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(dataclasses.replace(SMALL, kind=kind, init=init), 2)


def test_glorot_dense_layer_matches_the_hand_bound() -> None:
    """Linear(100, 300): a = sqrt(6 / 400) = 0.1225; 30,000 draws fill (-a, a) evenly, so
    their variance is a^2 / 3 to within a few per cent, and the bias is zero."""
    torch.manual_seed(0)
    layer = nn.Linear(100, 300)
    glorot_layer(layer)
    a = math.sqrt(6 / 400)
    w = layer.weight
    assert w.abs().max() <= a and w.abs().max() > 0.99 * a
    assert w.var().item() == pytest.approx(a * a / 3, rel=0.03)
    assert torch.count_nonzero(layer.bias) == 0


def test_glorot_convolutions_use_their_receptive_fields() -> None:
    """Conv2d(3, 8, k4): fan_in 3*16, fan_out 8*16; ConvTranspose2d(8, 3, k6): 3*36 and 8*36."""
    torch.manual_seed(0)
    for layer, fans in ((nn.Conv2d(3, 8, 4), (48, 128)), (nn.ConvTranspose2d(8, 3, 6), (108, 288))):
        glorot_layer(layer)
        a = math.sqrt(6 / sum(fans))
        assert layer.weight.abs().max() <= a and layer.weight.abs().max() > 0.95 * a
        assert torch.count_nonzero(layer.bias) == 0


def test_glorot_gru_is_the_block_cell_start() -> None:
    """GRUCell(I=10, H=20): gate rows in +-sqrt(6 / (30 + 40)), candidate rows in
    +-sqrt(6 / (30 + 20)), biases 1 for the gates (once, in bias_ih) and 0 elsewhere."""
    torch.manual_seed(0)
    cell = nn.GRUCell(10, 20)
    glorot_gru(cell)
    gates, candidate = math.sqrt(6 / 70), math.sqrt(6 / 50)
    for weight in (cell.weight_ih, cell.weight_hh):
        assert weight[:40].abs().max() <= gates and weight[:40].abs().max() > 0.95 * gates
        assert weight[40:].abs().max() <= candidate
        assert weight[40:].abs().max() > 0.95 * candidate
    assert torch.equal(cell.bias_ih[:40], torch.ones(40))
    assert torch.count_nonzero(cell.bias_ih[40:]) == 0
    assert torch.count_nonzero(cell.bias_hh) == 0


@pytest.mark.parametrize("kind", sorted(DYNAMICS))
def test_glorot_reaches_every_layer_of_every_kind(kind: str) -> None:
    """No dense or convolution layer keeps PyTorch's nonzero default bias."""
    model = _model("glorot", kind)
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                           nn.ConvTranspose2d))]
    assert layers and all(torch.count_nonzero(m.bias) == 0 for m in layers)
    torch_biases = [m.bias for m in _model("torch", kind).modules()
                    if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert all(torch.count_nonzero(b) > 0 for b in torch_biases)


def test_torch_init_keeps_the_layer_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """`torch` draws exactly what the layers drew when built: the same seed, the same weights
    as a model whose initialisation step is skipped."""
    built = _model("torch")
    glorot = _model("glorot")
    assert not torch.equal(built.reward_model.net[0].bias, glorot.reward_model.net[0].bias)
    monkeypatch.setattr(world_model, "initialise", lambda model, init: None)
    again = _model("torch")
    for a, b in zip(built.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_glorot_model_trains() -> None:
    model = _model("glorot")
    g = torch.Generator().manual_seed(0)
    batch = TorchBatch(torch.randint(0, 256, (3, 5, 64, 64, 3), dtype=torch.uint8, generator=g),
                       torch.rand(3, 5, 2, generator=g) * 2 - 1, torch.rand(3, 5, generator=g))
    loss = model.loss(batch, ObjectiveConfig(free_nats=0.0))[0].loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_an_unknown_init_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"model\.init must be one of torch, glorot, got 'xavier'"):
        ModelConfig(init="xavier")
    assert config_lib.Config().model.init == "torch"
