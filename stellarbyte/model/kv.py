"""The contract between the model and the KV memory that infer/ owns.

The model never allocates KV memory: a caller passes a cache object implementing `KVCache`. Before the
layers run, the decoder asks the cache to `begin_step(T)`, which returns the slot index of each new query
and of every key that attention will see; each layer then calls `update(layer_idx, k, v)` and gets back the
keys and values to attend over. Slots are cache positions (0, 1, 2, ... in arrival order, padding included);
masks are built on slots, while rotary positions come from position_ids, so a left-padded row attends
exactly as it would alone.
"""

from __future__ import annotations

import abc

import torch


class KVCache(abc.ABC):
    # A cache that runs attention itself (paged-attention kernels over block tables) sets this to True: the
    # decoder then builds no mask, and each attention layer calls `attend` instead of `update` + its own
    # attention function. Rotary embedding is applied to q and k before either call.
    computes_attention: bool = False

    @abc.abstractmethod
    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Reserve slots for T new tokens; return (query_slots (T,), key_slots (S,)) as int64 tensors."""

    @abc.abstractmethod
    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store key/value (B, H_kv, T, D) of this step; return those attention sees, (B, H_kv, S, D) each."""

    @abc.abstractmethod
    def get_seq_length(self) -> int:
        """Number of tokens (slots) processed so far."""

    def attend(self, layer_idx: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               scale: float) -> torch.Tensor:
        """Store key/value (B, H_kv, T, D) and return attention of query (B, H_q, T, D) over every visible
        key, (B, H_q, T, D). Only called when `computes_attention` is True."""
        raise NotImplementedError(f"{type(self).__name__} does not compute attention; set computes_attention")
