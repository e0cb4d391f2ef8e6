"""Rotary position embedding applied to q and k in Triton, forward and backward.

Math (Su et al., 2021, in transformers' rotate_half layout; h = R / 2, c/s = cos/sin cast to q's dtype)
  out[:h]  = x[:h] * c[:h] - x[h:R] * s[:h]
  out[h:R] = x[h:R] * c[h:R] + x[:h] * s[h:R]
  out[R:]  = x[R:]                                    (partial rotary: the rest passes through)
The backward applies the transposed rotation to the incoming gradient:
  dx[:h]  = g[:h] * c[:h] + g[h:R] * s[h:R],   dx[h:R] = g[h:R] * c[h:R] - g[:h] * s[:h]
One program per (batch, position) rotates every q and k head of that token, so cos/sin are read once per
token. q/k may be strided views (e.g. (B, T, H, D) transposed to (B, H, T, D)); only the last dim must be unit
stride. The tables are the model's (default or scaled: linear, dynamic, YaRN, llama3); the kernel never
computes frequencies. cos/sin get no gradient.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device


@triton.jit
def _rotate_heads(X, OUT, sxb, sxh, sxt, sob, soh, sot, b, t, n_heads, c1, c2, s1, s2,
                  HALF: tl.constexpr, N_PASS: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_HALF: tl.constexpr,
                  BLOCK_PASS: tl.constexpr, BACKWARD: tl.constexpr):
    heads = tl.arange(0, BLOCK_H)[:, None]  # (BLOCK_H, 1)
    d = tl.arange(0, BLOCK_HALF)[None, :]  # (1, BLOCK_HALF)
    mask = (heads < n_heads) & (d < HALF)
    x_base = X + b * sxb + t * sxt + heads * sxh
    o_base = OUT + b * sob + t * sot + heads * soh
    x1 = tl.load(x_base + d, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_base + HALF + d, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        o1 = x1 * c1 + x2 * s2
        o2 = x2 * c2 - x1 * s1
    else:
        o1 = x1 * c1 - x2 * s1
        o2 = x2 * c2 + x1 * s2
    tl.store(o_base + d, o1.to(OUT.dtype.element_ty), mask=mask)
    tl.store(o_base + HALF + d, o2.to(OUT.dtype.element_ty), mask=mask)
    if N_PASS > 0:  # dims beyond R are copied unchanged
        p = tl.arange(0, BLOCK_PASS)[None, :]
        pmask = (heads < n_heads) & (p < N_PASS)
        xp = tl.load(x_base + 2 * HALF + p, mask=pmask, other=0.0)
        tl.store(o_base + 2 * HALF + p, xp, mask=pmask)


@triton.jit
def _rope_kernel(Q, K, QO, KO, COS, SIN,
                 sqb, sqh, sqt, skb, skh, skt, sqob, sqoh, sqot, skob, skoh, skot, scb, sct,
                 n_t, n_qh, n_kh,
                 HALF: tl.constexpr, N_PASS: tl.constexpr, BLOCK_HQ: tl.constexpr, BLOCK_HK: tl.constexpr,
                 BLOCK_HALF: tl.constexpr, BLOCK_PASS: tl.constexpr, BACKWARD: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    b = pid // n_t
    t = pid % n_t
    d = tl.arange(0, BLOCK_HALF)[None, :]
    dmask = d < HALF
    table = b * scb + t * sct + d  # scb is 0 when cos/sin are shared across the batch
    # cast the float32 tables to the activations' dtype first, as the torch reference does
    c1 = tl.load(COS + table, mask=dmask, other=0.0).to(Q.dtype.element_ty).to(tl.float32)
    c2 = tl.load(COS + table + HALF, mask=dmask, other=0.0).to(Q.dtype.element_ty).to(tl.float32)
    s1 = tl.load(SIN + table, mask=dmask, other=0.0).to(Q.dtype.element_ty).to(tl.float32)
    s2 = tl.load(SIN + table + HALF, mask=dmask, other=0.0).to(Q.dtype.element_ty).to(tl.float32)
    _rotate_heads(Q, QO, sqb, sqh, sqt, sqob, sqoh, sqot, b, t, n_qh, c1, c2, s1, s2,
                  HALF, N_PASS, BLOCK_HQ, BLOCK_HALF, BLOCK_PASS, BACKWARD)
    _rotate_heads(K, KO, skb, skh, skt, skob, skoh, skot, b, t, n_kh, c1, c2, s1, s2,
                  HALF, N_PASS, BLOCK_HK, BLOCK_HALF, BLOCK_PASS, BACKWARD)


def _unit_last(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _launch(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
            backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
    q, k = _unit_last(q), _unit_last(k)
    cos, sin = cos.contiguous(), sin.contiguous()
    b, hq, t, d = q.shape
    hk = k.shape[1]
    r = cos.shape[-1]
    qo, ko = torch.empty_like(q), torch.empty_like(k)  # keeps q's (possibly transposed) layout
    n_pass = d - r
    if q.numel() == 0:
        return qo, ko
    _rope_kernel[(b * t,)](
        q, k, qo, ko, cos, sin,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        qo.stride(0), qo.stride(1), qo.stride(2), ko.stride(0), ko.stride(1), ko.stride(2),
        cos.stride(0) if cos.shape[0] > 1 else 0, cos.stride(1), t, hq, hk,
        HALF=r // 2, N_PASS=n_pass, BLOCK_HQ=triton.next_power_of_2(hq), BLOCK_HK=triton.next_power_of_2(hk),
        BLOCK_HALF=triton.next_power_of_2(r // 2), BLOCK_PASS=triton.next_power_of_2(max(n_pass, 1)),
        BACKWARD=backward, num_warps=4)
    return qo, ko


class RoPEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        check_device(_rope_kernel, q, k, cos, sin)
        ctx.save_for_backward(cos, sin)
        ctx.q_shape, ctx.k_shape, ctx.dtype = q.shape, k.shape, q.dtype
        return _launch(q, k, cos, sin, backward=False)

    @staticmethod
    def backward(ctx, dq: torch.Tensor | None, dk: torch.Tensor | None):
        cos, sin = ctx.saved_tensors
        # an unused output has no gradient: rotate zeros in its place so one launch still covers both
        dq = dq if dq is not None else torch.zeros(ctx.q_shape, dtype=ctx.dtype, device=cos.device)
        dk = dk if dk is not None else torch.zeros(ctx.k_shape, dtype=ctx.dtype, device=cos.device)
        dq_in, dk_in = _launch(dq, dk, cos, sin, backward=True)
        return dq_in, dk_in, None, None


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
               sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if torch.compiler.is_compiling():  # one opaque node for torch.compile (see library.py)
        from stellarbyte.kernels.ops import library

        return library.apply_rope(q, k, cos, sin)
    return RoPEFunction.apply(q, k, cos, sin)
