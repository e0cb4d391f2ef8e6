"""Paged KV memory: per-layer block tensors, and the per-step view the model reads and writes through.

References: Kwon et al., 2023 (PagedAttention); vLLM's slot mapping (slot = block_id * block_size + offset).
Storage: keys[l], values[l] of shape (num_blocks, block_size, H_kv, D), sized from a memory budget:
  bytes per block = 2 (K and V) * num_layers * block_size * H_kv * D * element size
The torch reference path (this file) implements stellarbyte.model.kv.KVCache for one step of a batch of
sequences at different stages (prefill chunks and decodes mixed). Each row is RIGHT-aligned on a virtual
slot axis of length S = max context: row i's context (num_computed_i + T_i tokens) sits at virtual slots
[S - ctx_i, S) and its T_i new queries at [S - T_i, S). Then "key slot <= query slot" is exactly causality
within every row, the attention mask (B, S) hides each row's left padding, and every row's last token sits
in the last column (so logits_to_keep=1 gives each row's next-token logits).
  update(): writes the real new k/v rows to their physical slots (slot mapping), then gathers each row's
  blocks back into (B, H_kv, S, D) for attention. Padding rows read slot 0; the mask hides them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stellarbyte.model.kv import KVCache


def bytes_per_block(num_layers: int, block_size: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
    return 2 * num_layers * block_size * num_kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()


class PagedKVCache:
    """The engine's KV memory: one (num_blocks, block_size, H_kv, D) tensor per layer for K and for V."""

    def __init__(self, num_layers: int, num_blocks: int, block_size: int, num_kv_heads: int, head_dim: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        shape = (num_blocks, block_size, num_kv_heads, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.num_blocks, self.block_size = num_blocks, block_size

    def flat(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (num_blocks * block_size, H_kv, D): row = slot."""
        k, v = self.keys[layer_idx], self.values[layer_idx]
        return k.view(-1, *k.shape[2:]), v.view(-1, *v.shape[2:])


@dataclass(slots=True)
class StepMetadata:
    """Index tensors of one step (built by the model runner)."""
    num_queries: int  # T: new tokens per row, padded
    num_keys: int  # S: context per row, padded
    write_rows: torch.Tensor  # (N,) indices into the (B * T) new tokens that are real
    slot_mapping: torch.Tensor  # (N,) physical slot of each of them
    gather_slots: torch.Tensor  # (B, S) physical slot of every virtual key (padding: 0)


class PagedStepCache(KVCache):
    """KVCache for one forward over a paged batch (stellarbyte.model.kv contract)."""

    def __init__(self, storage: PagedKVCache, meta: StepMetadata) -> None:
        self.storage, self.meta = storage, meta

    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        t, s = self.meta.num_queries, self.meta.num_keys
        if num_new_tokens != t:
            raise ValueError(f"the step was planned for {t} new tokens per row, the model got {num_new_tokens}")
        return torch.arange(s - t, s, device=device), torch.arange(s, device=device)

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_flat, v_flat = self.storage.flat(layer_idx)
        b, h, t, d = key.shape
        rows = self.meta.write_rows
        new_k = key.transpose(1, 2).reshape(b * t, h, d)[rows]  # (N, H_kv, D)
        new_v = value.transpose(1, 2).reshape(b * t, h, d)[rows]
        k_flat.index_copy_(0, self.meta.slot_mapping, new_k.to(k_flat.dtype))
        v_flat.index_copy_(0, self.meta.slot_mapping, new_v.to(v_flat.dtype))
        gather = self.meta.gather_slots  # (B, S)
        k = k_flat[gather].transpose(1, 2).to(key.dtype)  # (B, H_kv, S, D)
        v = v_flat[gather].transpose(1, 2).to(value.dtype)
        return k, v

    def get_seq_length(self) -> int:
        return self.meta.num_keys
