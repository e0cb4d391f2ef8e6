"""Torch reference for paged attention over block tables with variable-length queries, and the KV-cache write.

References: Kwon et al., 2023 (PagedAttention: K/V in fixed-size blocks, a block table per sequence); vLLM v1's
flattened batch (all scheduled tokens of all sequences in one row, prefill chunks and decodes together).
Conventions (shared with stellarbyte/kernels/ops/paged_attention.py and kv_write.py):
  q (N, Hq, D): the step's new tokens, sequence b owning rows [cu_seqlens_q[b], cu_seqlens_q[b + 1])
  k_cache, v_cache (num_blocks, block_size, Hkv, D); Hq a multiple of Hkv (query head h reads kv head h // G)
  cu_seqlens_q (B + 1,) int32, nondecreasing, cu_seqlens_q[0] = 0
  seq_lens (B,) int32: sequence b's context length INCLUDING its new tokens (its keys are positions [0, seq_len))
  block_tables (B, W) int32: physical block of logical block i of sequence b (entries past the context unused)
  causal: new token j of sequence b (q_len_b new tokens) sits at position seq_len_b - q_len_b + j and sees the
  keys at positions <= its own; a sliding window w keeps keys with pos - w < key <= pos.
  Rows of q not owned by any sequence, and sequences with seq_len 0 (padding), get zeros.
  slot_mapping (N,) int64: physical slot (block * block_size + offset) where token n's k/v are written; < 0 skips.
Softmax and accumulation in float32 (float64 for float64 inputs); output in q's dtype.
"""

from __future__ import annotations

import torch


def check_paged_args(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cu_seqlens_q: torch.Tensor,
                     seq_lens: torch.Tensor, block_tables: torch.Tensor) -> None:
    if q.dim() != 3 or k_cache.dim() != 4 or k_cache.shape != v_cache.shape:
        raise ValueError(f"paged attention wants q (N, Hq, D) and k_cache/v_cache (num_blocks, block_size, Hkv, D) "
                         f"of one shape; got q {tuple(q.shape)}, k {tuple(k_cache.shape)}, v {tuple(v_cache.shape)}")
    if q.shape[-1] != k_cache.shape[-1] or q.shape[1] % k_cache.shape[2]:
        raise ValueError(f"q's head dim must equal the cache's and its heads ({q.shape[1]}) be a multiple of the "
                         f"cache's kv heads ({k_cache.shape[2]}); got q {tuple(q.shape)}, cache {tuple(k_cache.shape)}")
    b = seq_lens.shape[0]
    if cu_seqlens_q.shape != (b + 1,) or block_tables.dim() != 2 or block_tables.shape[0] != b:
        raise ValueError(f"for B={b} sequences pass cu_seqlens_q (B + 1,) and block_tables (B, W); got "
                         f"{tuple(cu_seqlens_q.shape)} and {tuple(block_tables.shape)}")


def paged_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cu_seqlens_q: torch.Tensor,
                    seq_lens: torch.Tensor, block_tables: torch.Tensor, scale: float,
                    sliding_window: int | None = None) -> torch.Tensor:
    """(N, Hq, D) attention of each new token over its own sequence's cached keys (see the module docstring)."""
    check_paged_args(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables)
    n, hq, d = q.shape
    block_size, hkv = k_cache.shape[1], k_cache.shape[2]
    groups = hq // hkv
    k_flat = k_cache.reshape(-1, hkv, d)  # (num_blocks * block_size, Hkv, D): row = slot
    v_flat = v_cache.reshape(-1, hkv, d)
    out = torch.zeros_like(q)
    acc_dtype = torch.promote_types(q.dtype, torch.float32)
    cu, lens = cu_seqlens_q.tolist(), seq_lens.tolist()
    for b in range(len(lens)):
        start, end, ctx = cu[b], cu[b + 1], lens[b]
        t = end - start
        if t == 0 or ctx == 0:
            continue
        pos = torch.arange(ctx, device=q.device)
        slots = block_tables[b, pos // block_size].long() * block_size + pos % block_size  # (ctx,)
        k = k_flat[slots].to(acc_dtype).repeat_interleave(groups, dim=1)  # (ctx, Hq, D)
        v = v_flat[slots].to(acc_dtype).repeat_interleave(groups, dim=1)
        qb = q[start:end].to(acc_dtype)  # (T, Hq, D)
        scores = torch.einsum("thd,shd->hts", qb, k) * scale  # (Hq, T, ctx)
        q_pos = torch.arange(ctx - t, ctx, device=q.device)[:, None]  # (T, 1)
        visible = pos[None, :] <= q_pos
        if sliding_window is not None:
            visible &= pos[None, :] > q_pos - sliding_window
        scores = scores.masked_fill(~visible, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[start:end] = torch.einsum("hts,shd->thd", probs, v).to(q.dtype)
    return out


def write_kv(key: torch.Tensor, value: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
             slot_mapping: torch.Tensor) -> None:
    """key, value (N, Hkv, D) -> k_cache/v_cache (num_blocks, block_size, Hkv, D) at slot_mapping (N,); < 0 skips."""
    hkv, d = k_cache.shape[2], k_cache.shape[3]
    keep = (slot_mapping >= 0).nonzero().squeeze(1)
    slots = slot_mapping[keep]
    k_cache.view(-1, hkv, d).index_copy_(0, slots, key[keep].to(k_cache.dtype))
    v_cache.view(-1, hkv, d).index_copy_(0, slots, value[keep].to(v_cache.dtype))
