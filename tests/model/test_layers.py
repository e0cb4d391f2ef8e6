"""Norms, MLPs, residual layouts and attention backends against independent formulas or transformers."""

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_config, tiny_model
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from stellarbyte.model.attention import Attention, eager_attention, repeat_kv, sdpa_attention
from stellarbyte.model.block import ParallelBlock, PostNormBlock, PreNormBlock, build_block
from stellarbyte.model.mlp import build_mlp
from stellarbyte.model.norm import LayerNorm, RMSNorm
from stellarbyte.model.position import RotaryEmbedding
from stellarbyte.model.residual import DropPath


def test_rmsnorm_matches_transformers_in_float32_and_bfloat16():
    x = torch.randn(3, 7, 64)
    ours, ref = RMSNorm(64, eps=1e-6), LlamaRMSNorm(64, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        ref.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    ours, ref = ours.to(torch.bfloat16), ref.to(torch.bfloat16)
    torch.testing.assert_close(ours(x.bfloat16()), ref(x.bfloat16()), rtol=0, atol=0)


def test_offset_rmsnorm_and_layernorm():
    x = torch.randn(4, 32)
    norm = RMSNorm(32, offset=True)
    assert torch.all(norm.weight == 0)
    with torch.no_grad():
        norm.weight.uniform_(-0.5, 0.5)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + norm.weight)
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(LayerNorm(32, eps=1e-5)(x), F.layer_norm(x, (32,), eps=1e-5))


@pytest.mark.parametrize("mlp_type, formula", [
    ("swiglu", lambda m, x: m.down_proj(F.silu(m.gate_proj(x)) * m.up_proj(x))),
    ("geglu", lambda m, x: m.down_proj(0.5 * m.gate_proj(x) * (1 + torch.tanh(
        math.sqrt(2 / math.pi) * (m.gate_proj(x) + 0.044715 * m.gate_proj(x) ** 3))) * m.up_proj(x))),
    ("gelu", lambda m, x: m.down_proj(0.5 * m.up_proj(x) * (1 + torch.erf(m.up_proj(x) / math.sqrt(2))))),
    ("relu2", lambda m, x: m.down_proj(torch.clamp(m.up_proj(x), min=0) ** 2)),
])
def test_mlp_variants(mlp_type, formula):
    torch.manual_seed(0)
    mlp = build_mlp(tiny_config(mlp_type=mlp_type, mlp_bias=True), 0)
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(mlp(x), formula(mlp, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kv_heads", [4, 2, 1])  # MHA, GQA, MQA
def test_attention_backends_agree_and_match_manual_gqa(kv_heads):
    torch.manual_seed(0)
    cfg = tiny_config(num_key_value_heads=kv_heads)
    attn = Attention(cfg, 0)
    assert attn.k_proj.out_features == kv_heads * 16
    x = torch.randn(2, 9, 64)
    rotary = RotaryEmbedding(cfg).rotary(torch.arange(9)[None].expand(2, 9))
    eager = attn(x, rotary, None, True)
    attn.implementation = "sdpa"
    torch.testing.assert_close(attn(x, rotary, None, True), eager, rtol=1e-5, atol=1e-5)
    # manual: every query head h reads KV head h // groups
    q = torch.randn(1, 4, 6, 8)
    k, v = torch.randn(1, kv_heads, 6, 8), torch.randn(1, kv_heads, 6, 8)
    out = eager_attention(q, k, v, None, True, 8**-0.5, 0.0)
    for h in range(4):
        kh, vh = k[0, h // (4 // kv_heads)], v[0, h // (4 // kv_heads)]
        scores = (q[0, h] @ kh.T) / math.sqrt(8) + torch.full((6, 6), -math.inf).triu(1)
        torch.testing.assert_close(out[0, h], scores.softmax(-1) @ vh, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sdpa_attention(q, k, v, None, True, 8**-0.5, 0.0), out, rtol=1e-5, atol=1e-6)
    assert repeat_kv(k, 4 // kv_heads).shape == (1, 4, 6, 8)


def test_qk_norm_normalises_each_head():
    torch.manual_seed(0)
    attn = Attention(tiny_config(qk_norm=True), 0)
    assert isinstance(attn.q_norm, RMSNorm) and attn.q_norm.weight.shape == (16,)
    x = torch.randn(1, 3, 64) * 100  # huge activations: normalised q/k keep attention finite and identical
    assert torch.isfinite(attn(x, None, None, True)).all()
    torch.testing.assert_close(attn(x, None, None, True), attn(x * 10, None, None, True) / 10, rtol=1e-3,
                               atol=1e-3)


def test_attention_dropout_only_in_training():
    torch.manual_seed(0)
    attn = Attention(tiny_config(attention_dropout=0.5), 0)
    x = torch.randn(1, 8, 64)
    attn.eval()
    torch.testing.assert_close(attn(x, None, None, True), attn(x, None, None, True))
    attn.train()
    assert not torch.allclose(attn(x, None, None, True), attn(x, None, None, True))


def _sublayers(block, x, norm_first=True):
    attn = block.self_attn(block.input_layernorm(x) if norm_first else x, None, None, True)
    return attn


def test_block_layouts_follow_their_equations():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        pre = build_block(tiny_config(), 0)
        assert isinstance(pre, PreNormBlock)
        h = x + pre.self_attn(pre.input_layernorm(x), None, None, True)
        torch.testing.assert_close(pre(x, None, None, True), h + pre.mlp(pre.post_attention_layernorm(h)))

        par = build_block(tiny_config(parallel_residual=True), 0)
        assert isinstance(par, ParallelBlock)
        expected = x + par.self_attn(par.input_layernorm(x), None, None, True) + par.mlp(
            par.post_attention_layernorm(x))
        torch.testing.assert_close(par(x, None, None, True), expected)

        for scheme, alpha in (("post", 1.0), ("deepnorm", (2 * 2) ** 0.25)):
            blk = build_block(tiny_config(norm_scheme=scheme), 0)
            assert isinstance(blk, PostNormBlock) and blk.alpha == pytest.approx(alpha)
            h = blk.input_layernorm(alpha * x + blk.self_attn(x, None, None, True))
            torch.testing.assert_close(blk(x, None, None, True),
                                       blk.post_attention_layernorm(alpha * h + blk.mlp(h)))


def test_layer_scale_starts_blocks_near_identity():
    torch.manual_seed(0)
    blk = build_block(tiny_config(layer_scale_init=1e-6), 0).eval()
    assert torch.all(blk.attn_residual.layer_scale.gamma == 1e-6)
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        assert (blk(x, None, None, True) - x).abs().max() < 1e-4


def test_drop_path_statistics_and_depth_schedule():
    torch.manual_seed(0)
    dp = DropPath(0.25).train()
    out = dp(torch.ones(20000, 1, 4))
    kept = (out[:, 0, 0] > 0).float().mean().item()
    assert kept == pytest.approx(0.75, abs=0.02)
    assert out.mean().item() == pytest.approx(1.0, abs=0.03)  # unbiased: survivors scaled by 1/0.75
    torch.testing.assert_close(dp.eval()(torch.ones(3, 1, 4)), torch.ones(3, 1, 4))
    model = tiny_model(num_hidden_layers=3, drop_path_rate=0.2)
    rates = [layer.attn_residual.drop_path.rate if hasattr(layer.attn_residual.drop_path, "rate") else 0.0
             for layer in model.model.layers]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


def test_initialisation_gpt2_scaled_and_deepnorm():
    torch.manual_seed(0)
    big = dict(hidden_size=512, intermediate_size=1024, num_attention_heads=8, num_key_value_heads=8,
               num_hidden_layers=8)
    model = tiny_model(**big)
    q = model.model.layers[0].self_attn.q_proj.weight
    o = model.model.layers[0].self_attn.o_proj.weight
    assert q.std().item() == pytest.approx(0.02, rel=0.05)
    assert o.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    deep = tiny_model(norm_scheme="deepnorm", **big)
    beta = (8 * 8) ** -0.25
    v = deep.model.layers[0].self_attn.v_proj.weight  # xavier normal: std = gain * sqrt(2 / (fan_in + fan_out))
    assert v.std().item() == pytest.approx(beta * math.sqrt(2 / 1024), rel=0.05)
    qd = deep.model.layers[0].self_attn.q_proj.weight
    assert qd.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.05)
