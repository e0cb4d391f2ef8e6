"""Large-shape parity on a GPU (skipped without CUDA): the sizes the benchmarks time, checked for correctness."""

from __future__ import annotations

import pytest
import torch

import stellarbyte.kernels as K
from stellarbyte.kernels.testing import assert_parity

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _pair(op, **kw):
    fn = getattr(K, op)
    return (lambda *a: fn(*a, backend="torch", **kw)), (lambda *a: fn(*a, backend="triton", **kw))


def test_large_norms_and_gated(device):
    x = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(4096, device=device, dtype=torch.bfloat16)
    assert_parity(*_pair("rms_norm"), [x, w, 1e-6, False])
    assert_parity(*_pair("add_rms_norm"), [x, r, w, 1e-6, False])
    assert_parity(*_pair("layer_norm"), [x, w, w, 1e-5])
    g = torch.randn(2048, 14336, device=device, dtype=torch.bfloat16)
    assert_parity(*_pair("silu_mul"), [g, torch.randn_like(g)])


def test_large_rope_and_softmax(device):
    q = torch.randn(2, 2048, 32, 128, device=device, dtype=torch.bfloat16).transpose(1, 2)
    k = torch.randn(2, 2048, 8, 128, device=device, dtype=torch.bfloat16).transpose(1, 2)
    ang = torch.rand(2, 2048, 64, device=device) * 100
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    assert_parity(*_pair("apply_rope"), [q, k, cos, sin], no_grad=(2, 3))
    assert_parity(*_pair("softmax"), [torch.randn(1024, 32768, device=device, dtype=torch.bfloat16) * 4])


def test_large_cross_entropy(device):
    logits = torch.randn(1024, 128256, device=device, dtype=torch.bfloat16) * 3
    labels = torch.randint(0, 128256, (1024,), device=device)
    labels[::5] = -100
    assert_parity(*_pair("cross_entropy", label_smoothing=0.1, z_loss=1e-4), [logits, labels])
    h = torch.randn(2048, 1024, device=device, dtype=torch.bfloat16)
    w = torch.randn(32000, 1024, device=device, dtype=torch.bfloat16) / 32
    assert_parity(*_pair("fused_linear_cross_entropy"), [h, w, labels.repeat(2)[:2048].clamp(max=31999)],
                  scale_tol=2.0)


@pytest.mark.parametrize("hq,hk,window", [(32, 32, None), (32, 8, None), (12, 4, 512)])
def test_large_attention(device, hq, hk, window):
    q = torch.randn(1, hq, 2048, 128, device=device, dtype=torch.bfloat16)
    k = torch.randn(1, hk, 2048, 128, device=device, dtype=torch.bfloat16)
    v = torch.randn(1, hk, 2048, 128, device=device, dtype=torch.bfloat16)
    assert_parity(*_pair("attention", sliding_window=window), [q, k, v], scale_tol=2.0)


def test_large_matmul(device):
    a = torch.randn(2048, 4096, device=device, dtype=torch.bfloat16)
    b = torch.randn(4096, 1024, device=device, dtype=torch.bfloat16)
    assert_parity(*_pair("matmul"), [a, b], scale_tol=2.0)
