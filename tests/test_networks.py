import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from planet_torch.config import ModelConfig
from planet_torch.networks import Encoder, ObservationDecoder, RewardModel
from planet_torch.world_model import WorldModel

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(c_in: int, c_out: int, k: int) -> int:
    """Weights and biases of a (transposed) convolution with a k x k kernel."""
    return c_in * c_out * k * k + c_out


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_encoder_parameter_count_depth_32():
    expected = (3 * 32 * 16 + 32) + (32 * 64 * 16 + 64) + (64 * 128 * 16 + 128) \
        + (128 * 256 * 16 + 256)
    assert expected == 690_144
    assert count(Encoder(32)) == expected


def test_decoder_parameter_count_depth_32():
    feature = 200 + 30
    expected = (dense(feature, 1024) + conv(1024, 128, 5) + conv(128, 64, 5) + conv(64, 32, 6)
                + conv(32, 3, 6))
    assert expected == 236_544 + 3_276_928 + 204_864 + 73_760 + 3_459
    assert count(ObservationDecoder(feature, 32)) == expected
    # the model built from the default config has the same decoder and encoder
    model = WorldModel(ModelConfig(), action_size=6)
    assert count(model.decoder) == expected
    assert count(model.encoder) == count(Encoder(32))


@pytest.mark.parametrize(("cfg", "hidden"), [
    (ModelConfig(), [200, 200]),                                   # paper text
    (ModelConfig(reward_layers=3, reward_units=300), [300, 300, 300]),  # official code
])
def test_reward_model_parameter_count(cfg, hidden):
    sizes = [230, *hidden, 1]
    expected = sum(dense(a, b) for a, b in itertools.pairwise(sizes))
    model = WorldModel(cfg, action_size=6).reward_model
    assert count(model) == expected
    assert count(RewardModel(230, cfg.reward_layers, cfg.reward_units)) == expected
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert [m.out_features for m in linears] == [*hidden, 1]
    assert len(relus) == len(hidden)


def test_intermediate_spatial_sizes():
    """Encoder 64 -> 31 -> 14 -> 6 -> 2 (no padding); decoder 1 -> 5 -> 13 -> 30 -> 64."""
    encoder, decoder = Encoder(4), ObservationDecoder(10, 4)
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
             for m in [*encoder.convs, *decoder.deconvs[1:]]]
    encoder(torch.zeros(2, 3, 64, 64))
    decoder(torch.zeros(2, 10))
    for hook in hooks:
        hook.remove()
    assert sizes == [(4, 31, 31), (8, 14, 14), (16, 6, 6), (32, 2, 2),
                     (8, 13, 13), (4, 30, 30), (3, 64, 64)]


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_and_dtypes_odd_batch(device):
    B, L, feature = 3, 7, 230
    encoder, decoder = Encoder(32).to(device), ObservationDecoder(feature, 32).to(device)
    reward = RewardModel(feature).to(device)
    obs = torch.rand(B, L, 3, 64, 64, device=device) - 0.5
    embed = encoder(obs)
    assert embed.shape == (B, L, 1024) and embed.dtype == torch.float32
    assert embed.device.type == device
    feat = torch.randn(B, L, feature, device=device)
    image = decoder(feat)
    assert image.shape == (B, L, 3, 64, 64) and image.dtype == torch.float32
    r = reward(feat)
    assert r.shape == (B, L) and r.dtype == torch.float32
    # a single image without a time axis works as well
    assert encoder(obs[0, 0]).shape == (1024,)
    assert decoder(feat[0, 0]).shape == (3, 64, 64)


def test_encoder_treats_images_independently():
    """One call over B*L images equals a call per image (the reshape keeps images apart)."""
    torch.manual_seed(0)
    encoder = Encoder(8)
    obs = torch.rand(3, 5, 3, 64, 64) - 0.5
    batched = encoder(obs)
    single = torch.stack([torch.stack([encoder(obs[b, t]) for t in range(5)]) for b in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batched[0, 0], batched[0, 1])


def test_encoder_embedding_layout_is_channel_major():
    """The 1024-vector flattens the last (256, 2, 2) activation in (C, H, W) order."""
    torch.manual_seed(0)
    encoder = Encoder(8)
    obs = torch.rand(4, 3, 64, 64) - 0.5
    x = obs
    for c in encoder.convs:
        x = F.relu(F.conv2d(x, c.weight, c.bias, stride=2))
    torch.testing.assert_close(encoder(obs), x.reshape(4, -1), rtol=1e-5, atol=1e-5)


def test_decoder_first_layer_matmul_equals_conv_transpose():
    """Ground truth for the optimisation: the 1x1 -> 5x5 deconvolution as a matrix product."""
    torch.manual_seed(0)
    feature = 17
    decoder = ObservationDecoder(feature, 8)
    feat = torch.randn(6, feature)
    first, rest = decoder.deconvs[0], decoder.deconvs[1:]
    x = decoder.dense(feat)[:, :, None, None]                        # (N, C, 1, 1)
    x = F.relu(F.conv_transpose2d(x, first.weight, first.bias, stride=2))
    assert x.shape == (6, 4 * 8, 5, 5)
    for i, deconv in enumerate(rest):
        x = F.conv_transpose2d(x, deconv.weight, deconv.bias, stride=2)
        x = F.relu(x) if i < len(rest) - 1 else x
    torch.testing.assert_close(decoder(feat), x, rtol=1e-5, atol=1e-5)


def test_decoder_has_no_activation_on_output():
    """The image mean is unbounded (a Normal mean), not squashed by a final ReLU or tanh."""
    torch.manual_seed(0)
    image = ObservationDecoder(10, 4)(torch.randn(8, 10) * 10)
    assert image.min() < 0 < image.max()


def test_bad_shapes_raise_with_actual_shape():
    with pytest.raises(ValueError, match=r"got \(2, 64, 64, 3\)"):
        Encoder(4)(torch.zeros(2, 64, 64, 3))


def test_decoder_and_reward_model_check_the_feature_size():
    decoder = ObservationDecoder(feature_size=12, depth=2)
    reward = RewardModel(feature_size=12, layers=2, units=8)
    for net in (decoder, reward):
        with pytest.raises(ValueError, match=r"got \(3, 5, 11\)"):
            net(torch.zeros(3, 5, 11))
