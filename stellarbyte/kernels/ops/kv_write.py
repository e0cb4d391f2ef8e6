"""Write a step's new keys and values into the paged KV cache at their slots, in Triton (vLLM's reshape_and_cache).

Contract: stellarbyte.kernels.reference.paged_attention.write_kv -- key, value (N, Hkv, D) with any token/head
strides and a contiguous head dim; k_cache, v_cache (num_blocks, block_size, Hkv, D) contiguous; slot_mapping (N,)
int64, slot = block * block_size + offset, a negative slot skips the token (the padding rows of a CUDA-graph
batch). One program per token copies its Hkv * D values of K and of V; no host reads, so it is graph-safe
(unlike index_copy_ over the real rows, which needs their count on the host).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device


@triton.jit
def _write_kv_kernel(k_ptr, v_ptr, kc_ptr, vc_ptr, slot_ptr, sk_tok, sk_head, sv_tok, sv_head,
                     HKV: tl.constexpr, D: tl.constexpr, BLOCK: tl.constexpr):
    tok = tl.program_id(0)
    slot = tl.load(slot_ptr + tok)
    if slot < 0:
        return
    offs = tl.arange(0, BLOCK)  # flattened (head, dim) index
    mask = offs < HKV * D
    head, dim = offs // D, offs % D
    k = tl.load(k_ptr + tok * sk_tok + head * sk_head + dim, mask=mask)
    v = tl.load(v_ptr + tok * sv_tok + head * sv_head + dim, mask=mask)
    dst = slot.to(tl.int64) * (HKV * D) + offs
    tl.store(kc_ptr + dst, k.to(kc_ptr.dtype.element_ty), mask=mask)
    tl.store(vc_ptr + dst, v.to(vc_ptr.dtype.element_ty), mask=mask)


def write_kv(key: torch.Tensor, value: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
             slot_mapping: torch.Tensor) -> None:
    check_device(_write_kv_kernel, key, k_cache)
    n, hkv, d = key.shape
    if value.shape != key.shape or k_cache.shape[2:] != (hkv, d) or k_cache.shape != v_cache.shape:
        raise ValueError(f"write_kv wants key/value (N, Hkv, D) matching the caches' last two dims; got key "
                         f"{tuple(key.shape)}, value {tuple(value.shape)}, cache {tuple(k_cache.shape)}")
    if not (k_cache.is_contiguous() and v_cache.is_contiguous()) or key.stride(-1) != 1 or value.stride(-1) != 1:
        raise ValueError("write_kv needs contiguous caches and a contiguous head dim in key/value")
    if slot_mapping.shape != (n,):
        raise ValueError(f"slot_mapping must be ({n},), one slot per token; got {tuple(slot_mapping.shape)}")
    if n:
        _write_kv_kernel[(n,)](key, value, k_cache, v_cache, slot_mapping, key.stride(0), key.stride(1),
                               value.stride(0), value.stride(1), HKV=hkv, D=d,
                               BLOCK=triton.next_power_of_2(hkv * d), num_warps=4)
