"""The KVCache the model sees on the engine's flattened path: it writes K/V at their slots and runs paged attention.

Contract: stellarbyte.model.kv.KVCache with computes_attention = True, so the decoder builds no mask and each
attention layer calls attend(layer, q, k, v, scale) after RoPE / QK-norm. The batch is one row (1, N) of every
scheduled token (flat_batch.py); the step metadata says which tokens belong to which sequence.
  attend: q (1, Hq, N, D), k and v (1, Hkv, N, D) -> write k, v at slot_mapping -> paged attention -> (1, Hq, N, D)
Backends (same signatures, stellarbyte/kernels/reference/paged_attention.py vs stellarbyte/kernels/ops/):
  "flat"   the torch reference (any device, any dtype; reads metadata on the host, so not graph-safe)
  "triton" the Triton kernels (CUDA, or CPU under TRITON_INTERPRET=1); no host reads, so CUDA graphs can capture it
While torch.compile traces the step (flat_runner.py's compile_decode), attend() calls the same functions through
their torch.library custom ops (stellarbyte/kernels/ops/paged_library.py): one opaque node each, no graph break.
"""

from __future__ import annotations

import torch

from stellarbyte.infer.engine.flat_batch import FlatStepMetadata
from stellarbyte.infer.engine.kv_cache import PagedKVCache
from stellarbyte.model.kv import KVCache


def attention_functions(backend: str) -> tuple:
    """(write_kv, paged_attention) for a backend name."""
    if backend == "triton":
        from stellarbyte.kernels.ops.kv_write import write_kv
        from stellarbyte.kernels.ops.paged_attention import paged_attention

        return write_kv, paged_attention
    if backend == "flat":
        from stellarbyte.kernels.reference.paged_attention import paged_attention, write_kv

        return write_kv, paged_attention
    raise ValueError(f"unknown flat attention backend {backend!r}; use 'flat' or 'triton'")


class FlatStepCache(KVCache):
    computes_attention = True

    def __init__(self, storage: PagedKVCache, meta: FlatStepMetadata, backend: str, sliding_window: int | None,
                 num_splits: int = 1) -> None:
        self.storage, self.meta, self.backend = storage, meta, backend
        self.sliding_window, self.num_splits = sliding_window, num_splits
        self.write_kv, self.paged_attention = attention_functions(backend)

    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if num_new_tokens != self.meta.num_tokens:
            raise ValueError(f"the step was planned for {self.meta.num_tokens} tokens, the model got {num_new_tokens}")
        # slots only feed position-bias schemes (ALiBi), which this path refuses; positions come from the runner
        slots = self.meta.positions
        return slots, slots

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("FlatStepCache computes attention itself; the model must call attend()")

    def attend(self, layer_idx: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               scale: float) -> torch.Tensor:
        k_cache, v_cache = self.storage.keys[layer_idx], self.storage.values[layer_idx]
        q = query[0].transpose(0, 1)  # (N, Hq, D), a view: the projection's (N, H, D) layout
        k, v = key[0].transpose(0, 1), value[0].transpose(0, 1)  # (N, Hkv, D)
        m = self.meta
        if torch.compiler.is_compiling():  # custom ops: opaque to dynamo, fused around by inductor
            ops = torch.ops.stellarbyte
            ops.paged_write_kv(k, v, k_cache, v_cache, m.slot_mapping, self.backend)
            out = ops.paged_attention(q, k_cache, v_cache, m.cu_seqlens_q, m.seq_lens, m.block_tables, scale,
                                      self.sliding_window or 0, m.max_query_len, self.num_splits, self.backend)
            return out.transpose(0, 1)[None]  # (1, Hq, N, D)
        self.write_kv(k, v, k_cache, v_cache, m.slot_mapping)
        if self.backend == "triton":
            out = self.paged_attention(q, k_cache, v_cache, m.cu_seqlens_q, m.seq_lens, m.block_tables, scale,
                                       self.sliding_window, max_query_len=m.max_query_len, num_splits=self.num_splits)
        else:
            out = self.paged_attention(q, k_cache, v_cache, m.cu_seqlens_q, m.seq_lens, m.block_tables, scale,
                                       self.sliding_window)
        return out.transpose(0, 1)[None]  # (1, Hq, N, D)

    def get_seq_length(self) -> int:
        return self.meta.num_tokens
