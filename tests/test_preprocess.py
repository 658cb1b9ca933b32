import pytest
import torch

from planet_torch.preprocess import postprocess, preprocess


def test_hand_computed_values_without_noise_range():
    obs = torch.tensor([0, 7, 8, 255, 128], dtype=torch.uint8).view(1, 1, 5, 1)
    x = preprocess(obs, bit_depth=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 1, 1, 5)
    level = torch.tensor([0, 0, 1, 31, 16], dtype=torch.float32)
    low = level / 32 - 0.5
    # floor(o/8)/32 - 0.5 <= x < floor(o/8)/32 + 1/32 - 0.5
    assert torch.all(x.flatten() >= low)
    assert torch.all(x.flatten() < low + 1 / 32)


def test_range_layout_and_noise_mean():
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (2, 3, 8, 8, 3), dtype=torch.uint8, generator=g)
    x = preprocess(obs, generator=g)
    assert x.shape == (2, 3, 3, 8, 8) and x.dtype == torch.float32
    assert x.min() >= -0.5 and x.max() < 0.5
    # the channel axis moved: pixel (y=1, x=2, c=0) lands at [c=0, y=1, x=2]
    base = torch.div(obs, 8, rounding_mode="floor").float() / 32 - 0.5
    delta = x - base.movedim(-1, -3)
    assert delta.min() >= 0 and delta.max() < 1 / 32
    assert abs(delta.mean().item() - 1 / 64) < 1e-3  # uniform noise on [0, 1/32) has mean 1/64


def test_generator_pins_noise():
    obs = torch.randint(0, 256, (4, 4, 3), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    a = preprocess(obs, generator=torch.Generator().manual_seed(3))
    b = preprocess(obs, generator=torch.Generator().manual_seed(3))
    c = preprocess(obs, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bits", range(1, 9))
def test_equals_the_formula_in_float64(bits):
    """x = floor(o / 2^(8-b)) / 2^b + floor(u * 2^16) / 2^16 / 2^b - 0.5, computed in float64
    from the same uniform draws u, is exactly the float32 value preprocess returns."""
    obs = torch.randint(0, 256, (2, 6, 5, 3), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(bits))
    u = torch.rand(obs.shape, generator=torch.Generator().manual_seed(7)).double()
    o = obs.double()
    expected = (torch.floor(o / 2 ** (8 - bits)) / 2**bits
                + torch.floor(u * 2**16) / 2**16 / 2**bits - 0.5)
    x = preprocess(obs, bit_depth=bits, generator=torch.Generator().manual_seed(7))
    assert torch.equal(x.double(), expected.movedim(-1, -3))


@pytest.mark.parametrize("bits", [1, 3, 5, 8])
def test_postprocess_inverts_to_quantised_levels(bits):
    obs = torch.arange(256, dtype=torch.uint8).view(16, 16, 1).expand(16, 16, 3).contiguous()
    back = postprocess(preprocess(obs, bit_depth=bits,
                                  generator=torch.Generator().manual_seed(bits)),
                       bit_depth=bits)
    assert back.dtype == torch.uint8 and back.shape == obs.shape
    mask = 256 - 2 ** (8 - bits)
    assert torch.equal(back, obs & mask)


LARGEST_BELOW_ONE = torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)).item()
"""The largest float32 draw torch.rand can return, 1 - 2^-24."""


@pytest.mark.parametrize("draw", [0.0, LARGEST_BELOW_ONE])
@pytest.mark.parametrize("bits", range(1, 9))
def test_extreme_noise_draws_stay_in_range_and_level(monkeypatch, bits, draw):
    """Every pixel value with the smallest and the largest noise draw: x stays in
    [-0.5, 0.5) and postprocess returns the pixel's own level, never the next one."""
    def fixed_draw(shape, generator=None, **kwargs):
        return torch.full(shape, draw, **kwargs)
    monkeypatch.setattr(torch, "rand", fixed_draw)
    obs = torch.arange(256, dtype=torch.uint8).view(16, 16, 1).expand(16, 16, 3).contiguous()
    x = preprocess(obs, bit_depth=bits)
    assert x.min() >= -0.5 and x.max() < 0.5
    assert torch.equal(postprocess(x, bit_depth=bits), obs & (256 - 2 ** (8 - bits)))


def test_postprocess_clips_model_outputs():
    x = torch.tensor([-3.0, 2.0]).view(1, 1, 2)
    assert postprocess(x).flatten().tolist() == [0, 248]


def test_bad_input():
    with pytest.raises(ValueError, match="bit_depth"):
        preprocess(torch.zeros(2, 2, 3, dtype=torch.uint8), bit_depth=0)
    with pytest.raises(TypeError, match="uint8"):
        preprocess(torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        preprocess(torch.zeros(3, dtype=torch.uint8))
