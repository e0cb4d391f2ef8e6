"""The engine's paged-attention and KV-write ops as torch.library custom ops, so torch.compile traces the decode step
as one graph.

Why: the Triton launchers (ops/paged_attention.py, ops/kv_write.py) check devices, read strides and device
properties in Python, and the torch reference (kernels/reference/paged_attention.py) reads the metadata on the host;
dynamo can trace neither without breaking the graph. As custom ops they are single opaque nodes with a fake
(shape-only) implementation, and inductor fuses everything around them (RMSNorm, QK-norm, RoPE, SiLU * up, residual
adds). Same pattern as kernels/ops/library.py; references: PyTorch's "Python custom operators" tutorial
(torch.library.custom_op, register_fake, mutates_args), vLLM's unified_attention / reshape_and_cache custom ops.

Contract (inference only, no autograd):
  stellarbyte::paged_write_kv(key, value, k_cache, v_cache, slot_mapping, backend) -> None
      mutates k_cache and v_cache in place (declared in mutates_args, so functionalization re-inplaces it and never
      copies the cache); key/value (N, Hkv, D), caches (num_blocks, block_size, Hkv, D), slot_mapping (N,) int64
  stellarbyte::paged_attention(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables, scale, window,
                               max_query_len, num_splits, backend) -> (N, Hq, D), a new tensor
      window 0 means no sliding window
  backend "triton" runs the Triton kernels (CUDA, or CPU under TRITON_INTERPRET=1); "flat" runs the torch reference
  (any device; it reads the metadata on the host, so it is for CPU tests of the compiled step, not for CUDA graphs).
"""

from __future__ import annotations

import torch
from torch.library import custom_op, register_fake

BACKENDS = ("triton", "flat")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"paged custom ops: unknown backend {backend!r}; use one of {BACKENDS}")


@custom_op("stellarbyte::paged_write_kv", mutates_args=("k_cache", "v_cache"))
def paged_write_kv(key: torch.Tensor, value: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                   slot_mapping: torch.Tensor, backend: str) -> None:
    _check_backend(backend)
    if backend == "triton":
        from stellarbyte.kernels.ops.kv_write import write_kv
    else:
        from stellarbyte.kernels.reference.paged_attention import write_kv
    write_kv(key, value, k_cache, v_cache, slot_mapping)


@register_fake("stellarbyte::paged_write_kv")
def _(key, value, k_cache, v_cache, slot_mapping, backend):
    return None


@custom_op("stellarbyte::paged_attention", mutates_args=())
def paged_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cu_seqlens_q: torch.Tensor,
                    seq_lens: torch.Tensor, block_tables: torch.Tensor, scale: float, window: int,
                    max_query_len: int, num_splits: int, backend: str) -> torch.Tensor:
    _check_backend(backend)
    if backend == "triton":
        from stellarbyte.kernels.ops.paged_attention import paged_attention as triton_paged_attention

        # a fresh contiguous output: a custom op may not return a view of (or alias) an input
        return triton_paged_attention(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables, scale,
                                      window or None, max_query_len=max_query_len, num_splits=num_splits,
                                      out=q.new_empty(q.shape))
    from stellarbyte.kernels.reference.paged_attention import paged_attention as reference

    out = reference(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables, scale, window or None)
    return out.clone() if out.data_ptr() == q.data_ptr() else out


@register_fake("stellarbyte::paged_attention")
def _(q, k_cache, v_cache, cu_seqlens_q, seq_lens, block_tables, scale, window, max_query_len, num_splits,
      backend):
    return q.new_empty(q.shape)  # (N, Hq, D), contiguous
