"""Contiguous KV caches for `generate()` (the paged cache of the serving engine lives beside them later).

  DynamicCache        grows by concatenation; simplest, any length.
  StaticCache         preallocated (B, H_kv, max_length, D) buffers written in place at the step's slots:
                      fixed shapes, so torch.compile / CUDA graphs can capture the decode step.
  SlidingWindowCache  keeps only the last `window - 1` keys per layer: enough for the next query, whose
                      window covers itself plus the window - 1 before it (Mistral). Memory is O(window).

All implement stellarbyte.model.kv.KVCache: `begin_step(T)` hands out slot numbers (arrival order, padding
included) and `update(layer, k, v)` returns the keys and values attention sees in this step.
"""

from __future__ import annotations

import torch

from stellarbyte.model.kv import KVCache


class DynamicCache(KVCache):
    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.seen = 0

    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.seen
        self.seen += num_new_tokens
        return torch.arange(start, self.seen, device=device), torch.arange(self.seen, device=device)

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer_idx == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        else:
            self.keys[layer_idx] = torch.cat((self.keys[layer_idx], key), dim=2)
            self.values[layer_idx] = torch.cat((self.values[layer_idx], value), dim=2)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self) -> int:
        return self.seen

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (beam search / dropping finished rows)."""
        self.keys = [k[index] for k in self.keys]
        self.values = [v[index] for v in self.values]


class StaticCache(KVCache):
    def __init__(self, num_layers: int, batch_size: int, num_kv_heads: int, head_dim: int, max_length: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        shape = (batch_size, num_kv_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.max_length = max_length
        self.seen = 0
        self.slots = torch.arange(max_length, device=device)
        self.step_slots = self.slots[:0]

    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.seen + num_new_tokens > self.max_length:
            raise ValueError(f"StaticCache holds {self.max_length} tokens; {self.seen} stored + {num_new_tokens} "
                             f"new do not fit. Allocate a larger max_length.")
        self.step_slots = self.slots[self.seen:self.seen + num_new_tokens]
        self.seen += num_new_tokens
        return self.step_slots, self.slots  # every slot; causality hides the unwritten tail

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys[layer_idx].index_copy_(2, self.step_slots, key.to(self.keys[layer_idx].dtype))
        self.values[layer_idx].index_copy_(2, self.step_slots, value.to(self.values[layer_idx].dtype))
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self) -> int:
        return self.seen


class SlidingWindowCache(KVCache):
    def __init__(self, window: int) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self.keep = window - 1  # the next query sees itself plus window - 1 earlier keys
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.seen = 0
        self.first_slot = 0  # slot of the oldest stored key

    def begin_step(self, num_new_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.seen
        self.seen += num_new_tokens
        self.step_first_slot = self.first_slot
        self.first_slot = max(0, self.seen - self.keep)
        return (torch.arange(start, self.seen, device=device),
                torch.arange(self.step_first_slot, self.seen, device=device))

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer_idx == len(self.keys):
            k, v = key, value
            self.keys.append(k)
            self.values.append(v)
        else:
            k = torch.cat((self.keys[layer_idx], key), dim=2)
            v = torch.cat((self.values[layer_idx], value), dim=2)
        drop = self.first_slot - self.step_first_slot  # keys older than the next query's window
        self.keys[layer_idx], self.values[layer_idx] = k[:, :, drop:], v[:, :, drop:]
        return k, v  # this step's queries still need the full span

    def get_seq_length(self) -> int:
        return self.seen


def make_cache(kind: str, model, batch_size: int, max_length: int) -> KVCache:
    """kind: dynamic | static | sliding (needs config.sliding_window)."""
    config = model.config
    if kind == "dynamic":
        return DynamicCache()
    if kind == "static":
        return StaticCache(config.num_hidden_layers, batch_size, config.num_key_value_heads, config.head_dim,
                           max_length, dtype=model.dtype, device=model.device)
    if kind == "sliding":
        if config.sliding_window is None:
            raise ValueError("cache_implementation='sliding' needs config.sliding_window; use 'dynamic'")
        return SlidingWindowCache(config.sliding_window)
    raise ValueError(f"unknown cache_implementation {kind!r}; choose dynamic, static or sliding")
