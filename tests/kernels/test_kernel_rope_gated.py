"""RoPE and the gated activations: Triton vs the torch reference, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import stellarbyte.kernels as K
from stellarbyte.kernels.testing import assert_parity

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _tables(b: int, t: int, rot: int, device: str, inv_freq: torch.Tensor | None = None, scale: float = 1.0):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2).float() / rot)) if inv_freq is None else inv_freq
    pos = torch.randint(0, 4096, (b, t)).float()  # arbitrary positions per batch row
    freqs = pos[..., None] * inv_freq  # (B, T, R/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * scale).to(device), (emb.sin() * scale).to(device)


def _rope(backend):
    return lambda q, k, c, s: K.apply_rope(q, k, c, s, backend=backend)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [(4, 4), (6, 2), (5, 1), (73, 1)])
@pytest.mark.parametrize("dims", [(16, 16), (24, 16), (64, 32)])  # (head_dim, rotary dims): partial rotary
def test_apply_rope(device, dtype, heads, dims):
    torch.manual_seed(0)
    (hq, hk), (d, rot) = heads, dims
    b, t = 2, 5
    q = torch.randn(b, t, hq, d, dtype=dtype, device=device).transpose(1, 2)  # strided, as the model makes it
    k = torch.randn(b, hk, t, d, dtype=dtype, device=device)
    cos, sin = _tables(b, t, rot, device)
    assert_parity(_rope("torch"), _rope("triton"), [q, k, cos, sin], no_grad=(2, 3))
    # tables shared over the batch
    assert_parity(_rope("torch"), _rope("triton"), [q, k, cos[:1], sin[:1]], no_grad=(2, 3))


def test_rope_scaled_tables_from_the_model_config(device):
    pos_mod = pytest.importorskip("stellarbyte.model.position")
    from stellarbyte.config import RoPEConfig

    rope = RoPEConfig(rope_type="yarn", factor=4.0, original_max_position_embeddings=256)
    inv_freq, scaling = pos_mod.rope_inv_freq(rope, 32, 1024)
    cos, sin = _tables(1, 7, 32, device, inv_freq, scaling)
    q = torch.randn(1, 3, 7, 32, device=device)
    k = torch.randn(1, 1, 7, 32, device=device)
    assert_parity(_rope("torch"), _rope("triton"), [q, k, cos, sin], no_grad=(2, 3))
    expected = pos_mod.apply_rotary(q, k, pos_mod.RotaryTables(cos, sin))
    for got, want in zip(K.apply_rope(q, k, cos, sin, backend="triton"), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rope_is_a_rotation(device):
    q = torch.randn(1, 2, 9, 32, dtype=torch.float64).float().to(device)
    cos, sin = _tables(1, 9, 32, device)
    q_rot, _ = K.apply_rope(q, q, cos, sin, backend="triton")
    torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1), rtol=1e-5, atol=1e-5)  # norms preserved


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 4097), (2, 5, 73)])
@pytest.mark.parametrize("act", ["silu", "gelu_tanh", "gelu"])
def test_gated_activations(device, dtype, shape, act):
    torch.manual_seed(3)
    gate = torch.randn(shape, dtype=dtype, device=device) * 3
    up = torch.randn(shape, dtype=dtype, device=device)
    if act == "silu":
        assert_parity(lambda g, u: K.silu_mul(g, u, backend="torch"), lambda g, u: K.silu_mul(g, u, backend="triton"),
                      [gate, up])
    else:
        approx = "tanh" if act == "gelu_tanh" else "none"
        assert_parity(lambda g, u: K.gelu_mul(g, u, approx, backend="torch"),
                      lambda g, u: K.gelu_mul(g, u, approx, backend="triton"), [gate, up])


def test_gated_against_torch_functional_in_float64_terms(device):
    gate = torch.randn(1000, device=device) * 4
    up = torch.randn(1000, device=device)
    torch.testing.assert_close(K.silu_mul(gate, up, backend="triton"), F.silu(gate) * up, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(K.gelu_mul(gate, up, backend="triton"), F.gelu(gate, approximate="tanh") * up,
                               rtol=1e-5, atol=1e-6)
    nan_gate = gate.clone()
    nan_gate[5] = float("nan")
    assert torch.isnan(K.silu_mul(nan_gate, up, backend="triton")[5])
