"""Paged attention over block tables for a flattened varlen batch (prefill chunks and decodes together), in Triton.

References: Kwon et al., 2023 (PagedAttention); Dao et al., 2023 (FlashAttention-2: online softmax, one pass over
K/V); Dao et al., 2023 "Flash-Decoding" (split the keys of one query over several programs, then combine);
vLLM v1's "unified" attention (one kernel for mixed prefill/decode batches, query tiles found by binary search).
Conventions: stellarbyte/kernels/reference/paged_attention.py (same signature; the reference is the test oracle).

One program owns a tile of BLOCK_Q consecutive query tokens of ONE sequence and ONE kv head; its rows are those
tokens times the G = Hq / Hkv query heads sharing that kv head (GQA), BLOCK_M = next_pow2(max(16, BLOCK_Q * G))
rows, so every K/V tile loaded from the cache serves all G heads at once. The program walks the sequence's keys
in tiles of BLOCK_N, looking each key's page up in the block table (key n lives in slot
table[n // page] * page + n % page), and stops at the tile's last causal position. Softmax is online in base 2
with float32 running max m, sum l and accumulator acc.
Grid: (N // BLOCK_Q + B, Hkv, NUM_SPLITS). Sequence b's tiles start at cu_q[b] // BLOCK_Q + b (an upper bound on
the tiles of the sequences before it), so a program finds its sequence by binary search over cu_q and surplus
programs exit at once: the grid depends only on N and B, which is what a CUDA graph needs.
Split-KV (flash-decoding): with NUM_SPLITS > 1 each program takes 1/NUM_SPLITS of its tile's key range (decided in
the kernel from seq_len, so it is graph-safe) and writes unnormalised (acc, m, l); a second kernel combines them:
  M = max_s m_s,  out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s
That keeps the GPU busy when B * Hkv programs are too few (batch-1 decode: 8 programs on 132 multiprocessors).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import _sm_count, check_device, is_interpreted
from stellarbyte.kernels.reference.paged_attention import check_paged_args

LOG2E = 1.4426950408889634


@triton.jit
def _find_sequence(cu_q_ptr, num_seqs, pid, BLOCK_Q: tl.constexpr):
    """The largest b with cu_q[b] // BLOCK_Q + b <= pid (binary search; b = 0 always qualifies)."""
    lo = 0
    hi = num_seqs - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        start = tl.load(cu_q_ptr + mid) // BLOCK_Q + mid
        if start <= pid:
            lo = mid
        else:
            hi = mid - 1
    return lo


@triton.jit(do_not_specialize=["num_seqs", "window"])  # one compiled kernel whatever the batch (no mid-run JIT)
def _paged_attention_kernel(
        q_ptr, k_ptr, v_ptr, out_ptr, part_acc_ptr, part_ml_ptr, cu_q_ptr, seq_lens_ptr, tables_ptr,
        num_seqs, scale_log2, window,
        sq_tok, sq_head, sk_blk, sk_slot, sk_head, sv_blk, sv_slot, sv_head, so_tok, so_head, s_table,
        G: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr, PAGE: tl.constexpr, NUM_SPLITS: tl.constexpr, WINDOW: tl.constexpr,
        UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    b = _find_sequence(cu_q_ptr, num_seqs, pid, BLOCK_Q)
    q_start = tl.load(cu_q_ptr + b)
    q_len = tl.load(cu_q_ptr + b + 1) - q_start
    tile = pid - (q_start // BLOCK_Q + b)  # this program's query tile within sequence b
    if tile * BLOCK_Q >= q_len:
        return  # surplus program (the grid is an upper bound)
    ctx = tl.load(seq_lens_ptr + b)  # keys at positions [0, ctx), the new tokens being the last q_len
    offs_m = tl.arange(0, BLOCK_M)
    qi = tile * BLOCK_Q + offs_m // G  # (BLOCK_M,) query token of each row within the sequence
    head = kvh * G + offs_m % G  # (BLOCK_M,) query head of each row
    row_ok = (offs_m < BLOCK_Q * G) & (qi < q_len)
    pos = ctx - q_len + qi  # (BLOCK_M,) absolute position of each row's token
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    q = tl.load(q_ptr + (q_start + qi)[:, None] * sq_tok + head[:, None] * sq_head + offs_d[None, :],
                mask=row_ok[:, None] & dmask[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
    if UPCAST:
        q = q.to(tl.float32)

    # keys this tile may see: [lo_key, hi_key), hi_key = last real row's position + 1
    hi_key = ctx - q_len + tl.minimum(q_len, (tile + 1) * BLOCK_Q)
    lo_key = 0
    if WINDOW:
        lo_key = tl.maximum(ctx - q_len + tile * BLOCK_Q - window + 1, 0)
        lo_key = (lo_key // BLOCK_N) * BLOCK_N
    tiles = tl.cdiv(hi_key - lo_key, BLOCK_N)
    per_split = tl.cdiv(tiles, NUM_SPLITS)
    k_begin = lo_key + split * per_split * BLOCK_N
    k_end = tl.minimum(hi_key, k_begin + per_split * BLOCK_N)

    m_i = tl.full((BLOCK_M,), -float("inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    offs_n = tl.arange(0, BLOCK_N)
    table_row = tables_ptr + b * s_table
    for n in range(k_begin, k_end, BLOCK_N):
        cols = n + offs_n  # (BLOCK_N,) key positions
        col_ok = cols < k_end
        page = tl.load(table_row + cols // PAGE, mask=col_ok, other=0).to(tl.int64)  # block-table lookup
        offset = cols % PAGE
        kv_mask = col_ok[:, None] & dmask[None, :]
        k = tl.load(k_ptr + page[:, None] * sk_blk + offset[:, None] * sk_slot + kvh * sk_head + offs_d[None, :],
                    mask=kv_mask, other=0.0)  # (BLOCK_N, BLOCK_D)
        v = tl.load(v_ptr + page[:, None] * sv_blk + offset[:, None] * sv_slot + kvh * sv_head + offs_d[None, :],
                    mask=kv_mask, other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2  # (BLOCK_M, BLOCK_N), log2 units
        visible = (cols[None, :] <= pos[:, None]) & col_ok[None, :]
        if WINDOW:
            visible = visible & (cols[None, :] > pos[:, None] - window)
        s = tl.where(visible, s, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)  # rows that have seen nothing yet
        p = tl.math.exp2(s - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=PRECISION)
        m_i = m_new

    tok = q_start + qi
    if NUM_SPLITS == 1:
        out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]  # a row that saw no key (padding) stays 0
        tl.store(out_ptr + tok[:, None] * so_tok + head[:, None] * so_head + offs_d[None, :],
                 out.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & dmask[None, :])
    else:  # partials laid out (N, Hq, NUM_SPLITS, BLOCK_D) and (N, Hq, NUM_SPLITS, 2)
        part = (tok * (G * tl.num_programs(1)) + head) * NUM_SPLITS + split  # (BLOCK_M,)
        tl.store(part_acc_ptr + part[:, None] * BLOCK_D + offs_d[None, :], acc, mask=row_ok[:, None])
        tl.store(part_ml_ptr + part * 2, m_i, mask=row_ok)
        tl.store(part_ml_ptr + part * 2 + 1, l_i, mask=row_ok)


@triton.jit
def _combine_splits_kernel(part_acc_ptr, part_ml_ptr, out_ptr, so_tok, so_head, num_heads,
                           D: tl.constexpr, BLOCK_D: tl.constexpr, NUM_SPLITS: tl.constexpr):
    """One program per (token, query head): out = sum_s w_s acc_s / sum_s w_s l_s, w_s = 2^(m_s - max m)."""
    tok = tl.program_id(0)
    head = tl.program_id(1)
    base = (tok * num_heads + head) * NUM_SPLITS
    offs_s = tl.arange(0, NUM_SPLITS)
    offs_d = tl.arange(0, BLOCK_D)
    m = tl.load(part_ml_ptr + (base + offs_s) * 2)  # (S,)
    l_s = tl.load(part_ml_ptr + (base + offs_s) * 2 + 1)
    acc = tl.load(part_acc_ptr + (base + offs_s)[:, None] * BLOCK_D + offs_d[None, :])  # (S, BLOCK_D)
    m_max = tl.max(m, axis=0)
    m_max = tl.where(m_max == -float("inf"), 0.0, m_max)
    w = tl.math.exp2(m - m_max)  # empty splits (m = -inf) weigh 0
    den = tl.sum(w * l_s, axis=0)
    out = tl.sum(w[:, None] * acc, axis=0) / tl.where(den == 0.0, 1.0, den)
    tl.store(out_ptr + tok * so_tok + head * so_head + offs_d, out.to(out_ptr.dtype.element_ty), mask=offs_d < D)


def default_num_splits(num_tokens: int, num_kv_heads: int, max_query_len: int, device: torch.device) -> int:
    """Split-KV only for decode-like steps whose (tokens x kv heads) programs cannot fill the GPU."""
    if max_query_len > 1 or device.type != "cuda":
        return 1
    sms = _sm_count(device.index or 0)
    programs = max(1, num_tokens * num_kv_heads)
    return int(min(16, max(1, triton.next_power_of_2(-(-2 * sms // programs)) // 2)))


# Tiles on CUDA (rows = target BLOCK_M; block_n keys per iteration), picked by a sweep on an H100 (docs/engine.md):
DECODE_TILE = dict(rows=16, block_n=64, num_warps=4, num_stages=3)
PREFILL_TILE = dict(rows=64, block_n=32, num_warps=4, num_stages=3)
INTERPRETER_TILE = dict(rows=16, block_n=16, num_warps=4, num_stages=2)


def paged_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cu_seqlens_q: torch.Tensor,
                    seq_lens: torch.Tensor, block_tables: torch.Tensor, scale: float,
                    sliding_window: int | None = None, max_query_len: int | None = None,
                    num_splits: int = 1, out: torch.Tensor | None = None, tile: dict | None = None) -> torch.Tensor:
    """Same contract as the torch reference. max_query_len (a host int, e.g. 1 for decode) picks the query tile
    without reading the device; num_splits > 1 (a power of two) turns on split-KV; tile overrides the tile table
    (for sweeps). No host reads: graph-safe."""
    check_paged_args(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables)
    check_device(_paged_attention_kernel, q, k_cache)
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"the Triton paged-attention kernel takes float16/bfloat16/float32, got {q.dtype}; use the "
                         f"torch reference (attention_backend='flat') for other dtypes")
    if num_splits < 1 or num_splits & (num_splits - 1):
        raise ValueError(f"num_splits={num_splits} must be a power of two >= 1")
    if k_cache.stride(-1) != 1 or q.stride(-1) != 1:
        raise ValueError("q and the caches need a contiguous last (head) dimension")
    n, hq, d = q.shape
    num_blocks, page, hkv, _ = k_cache.shape
    num_seqs = seq_lens.shape[0]
    groups = hq // hkv
    out = torch.empty_like(q) if out is None else out
    if n == 0 or num_seqs == 0:
        return out.zero_()
    interpreted = is_interpreted(_paged_attention_kernel)
    max_q = n if max_query_len is None else max(1, max_query_len)
    cfg = tile or (INTERPRETER_TILE if interpreted else DECODE_TILE if max_q == 1 else PREFILL_TILE)
    block_q = 1 if max_q == 1 else max(1, cfg["rows"] // groups)  # fixed per kind of step: no recompiles
    block_m = max(16, triton.next_power_of_2(block_q * groups))
    block_d = max(16, triton.next_power_of_2(d))
    block_n = cfg["block_n"]
    if num_splits > 1:
        part_acc = torch.empty((n, hq, num_splits, block_d), dtype=torch.float32, device=q.device)
        part_ml = torch.empty((n, hq, num_splits, 2), dtype=torch.float32, device=q.device)
    else:
        part_acc = part_ml = out  # unused
    grid = (n // block_q + num_seqs, hkv, num_splits)
    _paged_attention_kernel[grid](
        q, k_cache, v_cache, out, part_acc, part_ml, cu_seqlens_q, seq_lens, block_tables,
        num_seqs, scale * LOG2E, sliding_window or 0,
        q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), out.stride(0), out.stride(1), block_tables.stride(0),
        G=groups, D=d, BLOCK_D=block_d, BLOCK_Q=block_q, BLOCK_M=block_m, BLOCK_N=block_n, PAGE=page,
        NUM_SPLITS=num_splits, WINDOW=sliding_window is not None, UPCAST=interpreted,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32", num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"])
    if num_splits > 1:
        _combine_splits_kernel[(n, hq)](part_acc, part_ml, out, out.stride(0), out.stride(1), hq,
                                        D=d, BLOCK_D=block_d, NUM_SPLITS=num_splits, num_warps=4)
    return out

