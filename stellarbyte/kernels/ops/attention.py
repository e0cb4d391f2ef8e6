"""FlashAttention-style attention in Triton: forward and backward, causal, GQA, optional sliding window.

Forward (Dao et al., 2022 / FlashAttention-2, 2023): one program per (BM query rows, batch x query head) streams
the visible key/value tiles once, keeping a running max m, a running denominator l and an unnormalised output
in registers (online softmax, base-2 exponentials with the log2(e) folded into the scale). It stores
O = acc / l and the log-sum-exp in log2 units, lse2 = m + log2(l), per row -- the only extra tensor the
backward needs. Key tiles that every row of the query tile sees in full run without a mask; only the tiles
on the causal diagonal, the window's lower edge or past S pay for the mask.
Backward (FlashAttention-2): with delta_i = sum_d dO_i O_i and P recomputed as exp2(s * scale_log2 - lse2):
  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - delta),  dQ = scale * dS K,  dK = scale * dS^T Q
One kernel owns a key/value tile and loops over the query tiles of every query head of its GQA group (so dK,
dV need no atomics); a second owns a query tile and loops over key tiles for dQ.
Masking rules are reference/attention.py's: causal aligns the last query with the last key; the sliding
window keeps keys with p - w < j <= p.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, is_interpreted

LOG2E = 1.4426950408889634


@triton.jit
def _visible(rows_pos, cols, S, window, CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
    """(BM, BN) True where query position rows_pos may see key cols."""
    vis = cols[None, :] < S
    if CAUSAL:
        vis = vis & (cols[None, :] <= rows_pos[:, None])
    if WINDOW:
        vis = vis & (cols[None, :] > rows_pos[:, None] - window)
    return vis


@triton.jit
def _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, sks, svs, start, end, pos, offs_n, offs_d, S, window, scale_log2,
               MASKED: tl.constexpr, CAUSAL: tl.constexpr, WINDOW: tl.constexpr, D: tl.constexpr,
               EVEN_D: tl.constexpr, BN: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    dmask = offs_d < D
    for n in range(start, end, BN):
        cols = n + offs_n
        k_ptrs = k_base + cols[:, None] * sks + offs_d[None, :]  # (BN, BLOCK_D)
        v_ptrs = v_base + cols[:, None] * svs + offs_d[None, :]
        if MASKED:
            kv_mask = dmask[None, :] & (cols[:, None] < S)
            k = tl.load(k_ptrs, mask=kv_mask, other=0.0)
            v = tl.load(v_ptrs, mask=kv_mask, other=0.0)
        elif EVEN_D:  # the hot loop: full tiles, no masks at all
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        else:
            k = tl.load(k_ptrs, mask=dmask[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=dmask[None, :], other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION)  # (BM, BN) raw scores
        if MASKED:
            s = tl.where(_visible(pos, cols, S, window, CAUSAL, WINDOW), s, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1) * scale_log2)  # running max in log2 units
        if MASKED:
            m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)  # rows with nothing visible yet
        else:
            m_safe = m_new  # an unmasked tile always has a finite max
        p = tl.math.exp2(s * scale_log2 - m_safe[:, None])  # one fused multiply-add per score
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None]
        if UPCAST:
            acc = tl.dot(p, v.to(tl.float32), acc, input_precision=PRECISION)
        else:
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision=PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(Q, K, V, OUT, LSE, sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, sob, soh, sot,
              n_qh, group, T, S, scale_log2, window,
              CAUSAL: tl.constexpr, WINDOW: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr,
              BM: tl.constexpr, BN: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // n_qh).to(tl.int64)
    h = (bh % n_qh).to(tl.int64)
    kvh = h // group
    offs_m = start_m * BM + tl.arange(0, BM)
    offs_n = tl.arange(0, BN)
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :],
                mask=(offs_m[:, None] < T) & dmask[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    pos = offs_m + (S - T)  # absolute positions of the queries
    k_base = K + b * skb + kvh * skh
    v_base = V + b * svb + kvh * svh
    # visible key range [lo, hi) and its unmasked middle [full_lo, full_hi)
    lo = 0
    hi = S
    full_lo = 0
    full_hi = (S // BN) * BN
    if CAUSAL:
        first_pos = start_m * BM + S - T
        hi = tl.minimum(S, first_pos + BM)
        full_hi = tl.minimum(full_hi, ((first_pos + 1) // BN) * BN)
        if WINDOW:
            lo = (tl.maximum(0, first_pos - window + 1) // BN) * BN
            full_lo = tl.cdiv(tl.maximum(0, first_pos + BM - window), BN) * BN
    full_lo = tl.maximum(full_lo, lo)
    full_hi = tl.maximum(full_hi, full_lo)
    m_i = tl.full((BM,), -float("inf"), tl.float32)
    l_i = tl.zeros((BM,), tl.float32)
    acc = tl.zeros((BM, BLOCK_D), tl.float32)
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, sks, svs, lo, full_lo, pos, offs_n, offs_d, S,
                               window, scale_log2, True, CAUSAL, WINDOW, D, D == BLOCK_D, BN, UPCAST, PRECISION)
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, sks, svs, full_lo, full_hi, pos, offs_n, offs_d,
                               S, window, scale_log2, False, CAUSAL, WINDOW, D, D == BLOCK_D, BN, UPCAST, PRECISION)
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, sks, svs, full_hi, hi, pos, offs_n, offs_d, S,
                               window, scale_log2, True, CAUSAL, WINDOW, D, D == BLOCK_D, BN, UPCAST, PRECISION)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    row_ok = offs_m < T
    tl.store(OUT + b * sob + h * soh + offs_m[:, None] * sot + offs_d[None, :], out.to(OUT.dtype.element_ty),
             mask=row_ok[:, None] & dmask[None, :])
    tl.store(LSE + bh.to(tl.int64) * T + offs_m, m_i + tl.math.log2(l_safe), mask=row_ok)


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV,
                   sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, sdob, sdoh, sdot,
                   sdkb, sdkh, sdks, sdvb, sdvh, sdvs,
                   n_qh, n_kh, group, T, S, scale, scale_log2, window,
                   CAUSAL: tl.constexpr, WINDOW: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr,
                   BM: tl.constexpr, BN: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    start_n = tl.program_id(0)
    bkv = tl.program_id(1)
    b = (bkv // n_kh).to(tl.int64)
    kvh = (bkv % n_kh).to(tl.int64)
    offs_n = start_n * BN + tl.arange(0, BN)
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    kv_mask = (offs_n[:, None] < S) & dmask[None, :]
    k = tl.load(K + b * skb + kvh * skh + offs_n[:, None] * sks + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + b * svb + kvh * svh + offs_n[:, None] * svs + offs_d[None, :], mask=kv_mask, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros((BN, BLOCK_D), tl.float32)
    dv = tl.zeros((BN, BLOCK_D), tl.float32)
    # query rows that can see this key tile
    q_lo = 0
    q_hi = T
    if CAUSAL:
        q_lo = (tl.maximum(0, start_n * BN - (S - T)) // BM) * BM
        if WINDOW:
            q_hi = tl.minimum(T, start_n * BN + BN - 1 + window - (S - T))
    for g in range(0, group):
        h = kvh * group + g
        bh = b * n_qh + h
        for m in range(q_lo, q_hi, BM):
            offs_m = m + tl.arange(0, BM)
            row_ok = offs_m < T
            q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :],
                        mask=row_ok[:, None] & dmask[None, :], other=0.0)
            do = tl.load(DO + b * sdob + h * sdoh + offs_m[:, None] * sdot + offs_d[None, :],
                         mask=row_ok[:, None] & dmask[None, :], other=0.0)
            lse = tl.load(LSE + bh * T + offs_m, mask=row_ok, other=0.0)
            delta = tl.load(DELTA + bh * T + offs_m, mask=row_ok, other=0.0)
            if UPCAST:
                q = q.to(tl.float32)
                do = do.to(tl.float32)
            s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * scale_log2  # (BN, BM): scores transposed
            vis = tl.trans(_visible(offs_m + (S - T), offs_n, S, window, CAUSAL, WINDOW)) & row_ok[None, :]
            p_t = tl.where(vis, tl.math.exp2(s_t - lse[None, :]), 0.0)
            dv += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)
            dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)  # (BN, BM)
            ds_t = p_t * (dp_t - delta[None, :])
            dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)
    tl.store(DK + b * sdkb + kvh * sdkh + offs_n[:, None] * sdks + offs_d[None, :],
             (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + b * sdvb + kvh * sdvh + offs_n[:, None] * sdvs + offs_d[None, :], dv.to(DV.dtype.element_ty),
             mask=kv_mask)


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, sdob, sdoh, sdot,
                 sdqb, sdqh, sdqt, n_qh, group, T, S, scale, scale_log2, window,
                 CAUSAL: tl.constexpr, WINDOW: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // n_qh).to(tl.int64)
    h = (bh % n_qh).to(tl.int64)
    kvh = h // group
    offs_m = start_m * BM + tl.arange(0, BM)
    offs_n = tl.arange(0, BN)
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    row_ok = offs_m < T
    q_mask = row_ok[:, None] & dmask[None, :]
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :], mask=q_mask, other=0.0)
    do = tl.load(DO + b * sdob + h * sdoh + offs_m[:, None] * sdot + offs_d[None, :], mask=q_mask, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(LSE + bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
    pos = offs_m + (S - T)
    lo = 0
    hi = S
    if CAUSAL:
        hi = tl.minimum(S, start_m * BM + S - T + BM)
        if WINDOW:
            lo = (tl.maximum(0, start_m * BM + S - T - window + 1) // BN) * BN
    dq = tl.zeros((BM, BLOCK_D), tl.float32)
    for n in range(lo, hi, BN):
        cols = n + offs_n
        kv_mask = (cols[:, None] < S) & dmask[None, :]
        k = tl.load(K + b * skb + kvh * skh + cols[:, None] * sks + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V + b * svb + kvh * svh + cols[:, None] * svs + offs_d[None, :], mask=kv_mask, other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2
        p = tl.where(_visible(pos, cols, S, window, CAUSAL, WINDOW), tl.math.exp2(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    tl.store(DQ + b * sdqb + h * sdqh + offs_m[:, None] * sdqt + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty),
             mask=q_mask)


# ---- launch configuration ---------------------------------------------------------------------------------

def _fwd_configs() -> list:
    shapes = [(128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (128, 128, 8, 4), (128, 64, 4, 4), (64, 64, 4, 3),
              (128, 32, 4, 4), (64, 128, 4, 3)]
    return [triton.Config({"BM": bm, "BN": bn}, num_warps=w, num_stages=s) for bm, bn, w, s in shapes]


def _bwd_configs(kind: str) -> list:
    if kind == "dkdv":  # BN: the program's key tile, BM: the inner query tiles
        shapes = [(32, 128, 4, 3), (64, 128, 8, 3), (32, 64, 4, 3), (64, 64, 4, 3), (32, 128, 8, 4)]
    else:
        shapes = [(128, 32, 4, 3), (128, 64, 8, 3), (64, 64, 4, 3), (64, 32, 4, 3), (128, 32, 8, 4)]
    return [triton.Config({"BM": bm, "BN": bn}, num_warps=w, num_stages=s) for bm, bn, w, s in shapes]


_KEY = ["T", "S", "D", "CAUSAL", "WINDOW", "PRECISION"]


@functools.lru_cache(maxsize=1)
def _tuned() -> tuple:
    return (triton.autotune(_fwd_configs(), key=_KEY)(_attn_fwd),
            triton.autotune(_bwd_configs("dkdv"), key=_KEY)(_attn_bwd_dkdv),
            triton.autotune(_bwd_configs("dq"), key=_KEY)(_attn_bwd_dq))


def _kernels(interpreted: bool, work: int = 0, dtype: torch.dtype = torch.bfloat16) -> tuple:
    if interpreted:  # fixed small tiles: the interpreter runs programs one by one
        fixed = {"BM": 16, "BN": 16}
        return ((_attn_fwd, fixed), (_attn_bwd_dkdv, fixed), (_attn_bwd_dq, fixed))
    if work < 512 * 512 or dtype == torch.float32:  # small or float32: a safe fixed tile, no tuning sweep
        fixed = {"BM": 32, "BN": 32, "num_warps": 4, "num_stages": 2}
        return ((_attn_fwd, fixed), (_attn_bwd_dkdv, fixed), (_attn_bwd_dq, fixed))
    fwd, dkdv, dq = _tuned()
    return ((fwd, {}), (dkdv, {}), (dq, {}))


def _s(t: torch.Tensor) -> tuple[int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2)


class AttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, window: int | None,
                scale: float | None) -> torch.Tensor:
        check_device(_attn_fwd, q, k, v)
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        b, hq, t, d = q.shape
        hk, s = k.shape[1], k.shape[2]
        scale = 1.0 / math.sqrt(d) if scale is None else scale
        interpreted = is_interpreted(_attn_fwd)
        (fwd, cfg), _, _ = _kernels(interpreted, t * s, q.dtype)
        o = torch.empty_like(q)
        lse = torch.empty((b * hq, t), dtype=torch.float32, device=q.device)
        consts = dict(CAUSAL=causal, WINDOW=window is not None, D=d, BLOCK_D=triton.next_power_of_2(max(d, 16)),
                      UPCAST=interpreted, PRECISION="ieee" if q.dtype == torch.float32 else "tf32")
        if q.numel() and s:
            fwd[lambda meta: (triton.cdiv(t, meta["BM"]), b * hq)](
                q, k, v, o, lse, *_s(q), *_s(k), *_s(v), *_s(o), hq, hq // hk, t, s, scale * LOG2E, window or 0,
                **consts, **cfg)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.args = (scale, window, consts, interpreted)
        return o

    @staticmethod
    def backward(ctx, do: torch.Tensor):
        q, k, v, o, lse = ctx.saved_tensors
        scale, window, consts, interpreted = ctx.args
        do = do if do.stride(-1) == 1 else do.contiguous()
        b, hq, t, _ = q.shape
        hk, s = k.shape[1], k.shape[2]
        _, (dkdv, cfg_kv), (dq_kernel, cfg_q) = _kernels(interpreted, t * s, q.dtype)
        delta = (o.float() * do.float()).sum(-1).reshape(b * hq, t)  # (B*Hq, T): rowsum(dO * O)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        if q.numel() and s:
            common = (scale, scale * LOG2E, window or 0)
            dkdv[lambda meta: (triton.cdiv(s, meta["BN"]), b * hk)](
                q, k, v, do, lse, delta, dk, dv, *_s(q), *_s(k), *_s(v), *_s(do), *_s(dk), *_s(dv),
                hq, hk, hq // hk, t, s, *common, **consts, **cfg_kv)
            dq_kernel[lambda meta: (triton.cdiv(t, meta["BM"]), b * hq)](
                q, k, v, do, lse, delta, dq, *_s(q), *_s(k), *_s(v), *_s(do), *_s(dq),
                hq, hq // hk, t, s, *common, **consts, **cfg_q)
        else:
            dq.zero_(), dk.zero_(), dv.zero_()
        return dq, dk, dv, None, None, None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              sliding_window: int | None = None, scale: float | None = None) -> torch.Tensor:
    return AttentionFunction.apply(q, k, v, causal, sliding_window, scale)
