"""Attention masks built once per forward, on cache slots, and shared by every layer.

A key slot s is visible to a query slot q when
  s <= q                               (causal)
  q - s < sliding_window               (sliding window, as transformers' Mistral: kv > q - window)
  attention_mask[b, s] == 1            (not padding)
The result is an additive float mask (B or 1, 1 or H, T, S) with 0 where visible and the dtype's minimum
elsewhere (not -inf: a fully padded query row then yields finite values instead of NaN), plus ALiBi's bias
when the position scheme has one. When the mask would be the plain lower triangle (no padding, no window in
effect, no bias, no earlier tokens) we return None with is_causal=True so SDPA can use its fused causal path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def slot_padding_mask(attention_mask: torch.Tensor, key_slots: torch.Tensor) -> torch.Tensor:
    """attention_mask (B, N) over slots seen so far -> (B, S) for the given key slots.

    Slots past N (a static cache's unused tail) count as valid here; causality hides them.
    """
    needed = int(key_slots.max()) + 1
    if attention_mask.shape[1] < needed:
        attention_mask = F.pad(attention_mask, (0, needed - attention_mask.shape[1]), value=1)
    return attention_mask[:, key_slots].bool()


def build_attention_mask(query_slots: torch.Tensor, key_slots: torch.Tensor, attention_mask: torch.Tensor | None,
                         sliding_window: int | None, bias: torch.Tensor | None,
                         dtype: torch.dtype) -> tuple[torch.Tensor | None, bool]:
    """Return (additive mask or None, is_causal)."""
    t, s = query_slots.numel(), key_slots.numel()
    padded = attention_mask is not None and not bool(attention_mask.all())
    window_active = sliding_window is not None and int(query_slots.max() - key_slots.min()) >= sliding_window
    fresh = t == s and bool((query_slots == key_slots).all())  # no earlier tokens in the cache
    if not padded and not window_active and bias is None:
        if t == 1 and int(key_slots.max()) <= int(query_slots[0]):
            return None, False  # one query sees every stored key (a static cache's empty tail would not be)
        if fresh:
            return None, True
    visible = key_slots[None, :] <= query_slots[:, None]  # (T, S)
    if window_active:
        visible &= (query_slots[:, None] - key_slots[None, :]) < sliding_window
    visible = visible[None, None]  # (1, 1, T, S)
    if padded:
        visible = visible & slot_padding_mask(attention_mask, key_slots)[:, None, None, :]  # (B, 1, T, S)
    mask = torch.zeros(visible.shape, dtype=dtype, device=query_slots.device)
    mask = mask.masked_fill(~visible, torch.finfo(dtype).min)
    if bias is not None:
        mask = mask + bias.to(dtype)  # (B, H, T, S)
    return mask, False
