"""Triton matmul and FlashAttention-style attention vs the torch reference, forward and backward."""

from __future__ import annotations

import math

import pytest
import torch

import stellarbyte.kernels as K
from stellarbyte.kernels.reference.attention import attention_mask
from stellarbyte.kernels.testing import assert_parity

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", [(1, 1, 1), (37, 29, 50), (64, 48, 33)])
def test_matmul(device, dtype, mnk):
    m, n, k = mnk
    torch.manual_seed(m)
    a = torch.randn(2, m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    assert_parity(lambda a, b: K.matmul(a, b, backend="torch"), lambda a, b: K.matmul(a, b, backend="triton"),
                  [a, b], scale_tol=2.0)
    assert K.resolve("matmul", "auto", a, b) == "torch"


def _attn(backend, **kw):
    return lambda q, k, v: K.attention(q, k, v, backend=backend, **kw)


CASES = [  # (B, Hq, Hkv, T, S, D, causal, window)
    (1, 2, 1, 33, 33, 16, True, None),
    (2, 3, 1, 20, 37, 24, True, None),  # T < S (queries are the last T), D not a power of two
    (1, 5, 1, 19, 19, 32, True, None),  # 5 query heads per kv head
    (1, 6, 2, 40, 40, 16, True, 7),  # sliding window
    (1, 2, 2, 9, 45, 16, True, 20),  # window with T < S
    (1, 4, 2, 19, 45, 16, False, None),
    (1, 1, 1, 1, 17, 16, True, None),  # one decode query
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_attention(device, dtype, case):
    b, hq, hk, t, s, d, causal, window = case
    torch.manual_seed(t * s)
    q = torch.randn(b, hq, t, d, dtype=dtype, device=device)
    k = torch.randn(b, hk, s, d, dtype=dtype, device=device)
    v = torch.randn(b, hk, s, d, dtype=dtype, device=device)
    kw = {"causal": causal, "sliding_window": window}
    assert_parity(_attn("torch", **kw), _attn("triton", **kw), [q, k, v], scale_tol=2.0)


def test_attention_against_explicit_softmax_in_float64(device):
    b, hq, hk, t, d = 1, 4, 2, 24, 16
    q, k, v = (torch.randn(b, h, t, d, dtype=torch.float64) for h in (hq, hk, hk))
    scale = 0.3
    scores = q @ k.repeat_interleave(hq // hk, 1).transpose(-1, -2) * scale
    scores = scores.masked_fill(~attention_mask(t, t, True, 5), -math.inf)
    expected = torch.softmax(scores, -1) @ v.repeat_interleave(hq // hk, 1)
    got = K.attention(*(x.float().to(device) for x in (q, k, v)), sliding_window=5, scale=scale, backend="triton")
    torch.testing.assert_close(got.cpu().double(), expected, rtol=1e-4, atol=1e-5)


def test_attention_strided_inputs(device):
    q = torch.randn(1, 20, 4, 16, device=device).transpose(1, 2)  # (B, H, T, D) view of (B, T, H, D)
    k = torch.randn(1, 20, 2, 16, device=device).transpose(1, 2)
    v = torch.randn(1, 20, 2, 16, device=device).transpose(1, 2)
    assert_parity(_attn("torch"), _attn("triton"), [q, k, v])
