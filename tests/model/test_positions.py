"""Rotary variants against transformers' own frequency functions; XPos, ALiBi, sinusoidal against their papers."""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from stellarbyte import ByteConfig, RoPEConfig
from stellarbyte.model.position import (
    ALiBi,
    RotaryEmbedding,
    SinusoidalPositions,
    XPosEmbedding,
    alibi_slopes,
    apply_rotary,
    rope_inv_freq,
)

HF_PARAMS = {
    "linear": dict(factor=4.0),
    "dynamic": dict(factor=2.0),
    "yarn": dict(factor=8.0, original_max_position_embeddings=64, beta_fast=16.0, beta_slow=2.0),
    "llama3": dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64),
}


@pytest.mark.parametrize("rope_type", sorted(HF_PARAMS))
def test_inv_freq_matches_transformers(rope_type):
    params = HF_PARAMS[rope_type]
    hf = LlamaConfig(hidden_size=128, num_attention_heads=4, max_position_embeddings=512,
                     rope_parameters=dict(rope_type=rope_type, rope_theta=10000.0, **params))
    ours = RoPEConfig(rope_type=rope_type, rope_theta=10000.0, **params)
    seq_lens = [None, 1000] if rope_type == "dynamic" else [None]
    for seq_len in seq_lens:
        ref, ref_scale = ROPE_INIT_FUNCTIONS[rope_type](hf, "cpu", seq_len=seq_len)
        inv, scale = rope_inv_freq(ours, 32, 512, seq_len)
        torch.testing.assert_close(inv, ref, rtol=1e-6, atol=0)
        assert scale == pytest.approx(ref_scale)


def test_yarn_mscale_all_dim_attention_factor():
    rope = RoPEConfig(rope_type="yarn", factor=40.0, mscale=1.0, mscale_all_dim=0.707)
    _, scale = rope_inv_freq(rope, 64, 4096)
    expected = (0.1 * math.log(40) + 1) / (0.1 * 0.707 * math.log(40) + 1)
    assert scale == pytest.approx(expected)


def test_rotary_table_is_cached_and_grown_on_demand():
    rope = RotaryEmbedding(ByteConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=4096))
    rope.rotary(torch.arange(10)[None])
    table = rope.cos_cached
    assert table.shape[0] == 256
    rope.rotary(torch.arange(5, 200)[None])
    assert rope.cos_cached is table  # no rebuild while it fits
    rope.rotary(torch.arange(300)[None])
    assert rope.cos_cached.shape[0] == 512
    torch.testing.assert_close(rope.cos_cached[:256], table)


def test_dynamic_ntk_rebuilds_past_the_context_and_resets():
    cfg = ByteConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=32,
                     rope_config=RoPEConfig(rope_type="dynamic", factor=2.0))
    rope = RotaryEmbedding(cfg)
    short = rope.rotary(torch.arange(16)[None]).cos.clone()
    rope.rotary(torch.arange(48)[None])
    assert rope.dynamic_len == 48
    expected, _ = rope_inv_freq(cfg.rope_config, 16, 32, 48)
    torch.testing.assert_close(rope.inv_freq, expected)
    torch.testing.assert_close(rope.rotary(torch.arange(16)[None]).cos, short)  # reset below the context


def test_rotation_preserves_norm_and_depends_on_relative_position():
    cfg = ByteConfig(hidden_size=64, num_attention_heads=4)
    rope = RotaryEmbedding(cfg)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        qm, _ = apply_rotary(q, q, rope.rotary(torch.tensor([[m]])))
        _, kn = apply_rotary(k, k, rope.rotary(torch.tensor([[n]])))
        return (qm * kn).sum()

    torch.testing.assert_close(score(7, 3), score(107, 103), rtol=1e-4, atol=1e-4)
    qr, _ = apply_rotary(q, q, rope.rotary(torch.tensor([[42]])))
    torch.testing.assert_close(qr.norm(), q.norm())


def test_partial_rotary_leaves_tail_untouched():
    cfg = ByteConfig(hidden_size=64, num_attention_heads=4, rope_config=RoPEConfig(partial_rotary_factor=0.5))
    rope = RotaryEmbedding(cfg)
    q = torch.randn(1, 2, 5, 16)
    qr, _ = apply_rotary(q, q, rope.rotary(torch.arange(5)[None]))
    torch.testing.assert_close(qr[..., 8:], q[..., 8:])
    assert not torch.allclose(qr[..., 1:, :8], q[..., 1:, :8])


def test_xpos_decay_is_relative_and_scale_is_learnable():
    cfg = ByteConfig(hidden_size=64, num_attention_heads=4, position_embedding_type="xpos", xpos_scale_base=64)
    xpos = XPosEmbedding(cfg)
    d = 16
    zeta = (torch.arange(0, d, 2) + 0.4 * d) / (1.4 * d)
    torch.testing.assert_close(xpos.scale.detach(), zeta)  # the paper's initial values
    q, k = torch.randn(1, 1, 1, d), torch.randn(1, 1, 1, d)

    def score(m, n):
        qm, _ = apply_rotary(q, q, xpos.rotary(torch.tensor([[m]])))
        _, kn = apply_rotary(k, k, xpos.rotary(torch.tensor([[n]])))
        return (qm * kn).sum()

    torch.testing.assert_close(score(9, 2), score(509, 502), rtol=1e-4, atol=1e-4)
    # with q = k the product after rotation by equal angles decays as zeta^(distance / scale_base)
    tables = xpos.rotary(torch.tensor([[100, 36]]))
    torch.testing.assert_close(tables.q_scale[0, 0] * tables.k_scale[0, 1],
                               (zeta ** (64 / 64)).repeat(2), rtol=1e-5, atol=1e-6)
    score(5, 1).backward()
    assert xpos.scale.grad is not None and xpos.scale.grad.abs().sum() > 0


def test_alibi_slopes_match_the_paper():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    # 12 heads: the 8-head slopes, then every other slope of the 16-head sequence
    expected = [2.0 ** -(i + 1) for i in range(8)] + [2.0 ** -(0.5 + i) for i in range(4)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))
    bias = ALiBi(ByteConfig(hidden_size=64, num_attention_heads=8)).attention_bias(torch.arange(4), torch.arange(4))
    assert bias.shape == (1, 8, 4, 4)
    assert bias[0, 0, 3, 0] == pytest.approx(-3 * 0.5) and bias[0, 7, 2, 2] == 0


def test_sinusoidal_table_matches_the_formula():
    pos = SinusoidalPositions(ByteConfig(hidden_size=64, num_attention_heads=4))
    table = pos.embed(torch.tensor([[0, 5, 300]]))[0]
    for row, n in enumerate([0, 5, 300]):
        for i in (0, 7, 31):
            angle = n / 10000 ** (2 * i / 64)
            assert table[row, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert table[row, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
