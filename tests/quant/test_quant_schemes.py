"""Round-trip error bounds of every scheme (stated in stellarbyte/infer/quant/schemes.py) and exact int4 packing."""

import pytest
import torch

from stellarbyte.infer.quant import (
    dequantize_int4_groupwise,
    dequantize_int8_per_channel,
    pack_int4,
    quantize_int4_groupwise,
    quantize_int8_per_channel,
    quantize_int8_per_token,
    unpack_int4,
)

EPS = 1e-6  # float32 rounding of w / s and q * s


def weights(n=48, k=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.logspace(-3, 1, n)[:, None]  # rows of very different scales
    w[3] = 0.0  # an all-zero row must not divide by zero
    w[5, 7] = 40.0  # an outlier sets its row's scale
    return w


def test_int8_per_channel_bound_is_half_a_step():
    w = weights()
    q, s = quantize_int8_per_channel(w)
    assert q.dtype == torch.int8 and s.shape == (w.shape[0],)
    assert int(q.abs().max()) == 127  # absmax maps to +-127
    torch.testing.assert_close(s[5], torch.tensor(40.0 / 127))
    err = (dequantize_int8_per_channel(q, s) - w).abs()
    assert torch.all(err <= s[:, None] / 2 * (1 + EPS) + 1e-12)
    assert torch.all(dequantize_int8_per_channel(q, s)[3] == 0)


def test_int8_per_token_matches_formula():
    x = torch.randn(7, 64)
    q, a = quantize_int8_per_token(x)
    torch.testing.assert_close(a, x.abs().amax(1) / 127)
    assert torch.equal(q, torch.round(x / a[:, None]).to(torch.int8))
    assert torch.all((q.float() * a[:, None] - x).abs() <= a[:, None] / 2 * (1 + EPS))


@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [True, False])
def test_int4_group_bound_is_half_a_step(group_size, symmetric):
    w = weights()
    w[9] = w[9].abs() + 0.5  # a row with no negative value: the asymmetric range must still hold 0
    qw = quantize_int4_groupwise(w, group_size, symmetric)
    n, k = w.shape
    assert qw.codes.shape == (n, k) and int(qw.codes.max()) <= 15
    assert qw.scales.shape == qw.zeros.shape == (n, k // group_size)
    deq = dequantize_int4_groupwise(qw.codes, qw.scales, qw.zeros, group_size)
    step = qw.scales.repeat_interleave(group_size, dim=1)  # (N, K): each weight's group scale
    err = (deq - w).abs()
    assert torch.all(err <= step / 2 * (1 + EPS) + 1e-12)
    if symmetric:
        assert torch.all(qw.zeros == 8)
        g = w.reshape(n, -1, group_size)
        torch.testing.assert_close(qw.scales, torch.where(g.abs().amax(-1) > 0, g.abs().amax(-1) / 7, 1.0))
    else:  # the asymmetric grid uses all 16 codes: its step is (max - min) / 15, finer than absmax / 7
        g = w.reshape(n, -1, group_size)
        span = g.amax(-1).clamp(min=0) - g.amin(-1).clamp(max=0)
        torch.testing.assert_close(qw.scales, torch.where(span > 0, span / 15, 1.0))
    assert torch.all(deq[3] == 0)


def test_asymmetric_beats_symmetric_on_one_sided_groups():
    w = torch.rand(16, 128) + 1.0  # all positive: symmetric wastes the negative half of its grid
    sym = quantize_int4_groupwise(w, 32, True)
    asym = quantize_int4_groupwise(w, 32, False)
    e_sym = (dequantize_int4_groupwise(sym.codes, sym.scales, sym.zeros, 32) - w).pow(2).mean()
    e_asym = (dequantize_int4_groupwise(asym.codes, asym.scales, asym.zeros, 32) - w).pow(2).mean()
    assert e_asym < e_sym


def test_pack_int4_is_exact_and_low_nibble_first():
    codes = torch.randint(0, 16, (37, 64), dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (37, 32) and packed.dtype == torch.uint8
    assert torch.equal(unpack_int4(packed), codes)
    assert torch.equal(packed[:, 0], codes[:, 0] | (codes[:, 1] << 4))
    every_byte = torch.arange(256, dtype=torch.uint8)[None]  # all 256 byte values survive unpack -> pack
    assert torch.equal(pack_int4(unpack_int4(every_byte)), every_byte)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="group_size=48"):
        quantize_int4_groupwise(torch.randn(4, 96), 48)
    with pytest.raises(ValueError, match="multiple of group_size"):
        quantize_int4_groupwise(torch.randn(4, 96), 64)
    with pytest.raises(ValueError, match="2-D floating"):
        quantize_int8_per_channel(torch.randn(4))
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        pack_int4(torch.tensor([[3, 16]]))
    with pytest.raises(ValueError, match="even number of columns"):
        pack_int4(torch.zeros(2, 3, dtype=torch.uint8))
