"""Torch reference for scaled dot-product attention with GQA, causal masking and a sliding window.

Conventions (shared with the Triton kernel)
  q (B, Hq, T, D), k and v (B, Hkv, S, D), Hq a multiple of Hkv (query head h reads kv head h // (Hq / Hkv)).
  causal: queries are the LAST T positions of the S keys (query i sits at position S - T + i), so decode with
  a KV cache (T=1) sees every key; for T == S this is the usual lower-triangular mask. Needs T <= S.
  sliding_window w (causal only): key j is visible from position p when p - w < j <= p (transformers' rule).
  scale defaults to 1 / sqrt(D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_attention_args(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                         sliding_window: int | None) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention wants q (B, Hq, T, D), k/v (B, Hkv, S, D); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"k and v must share a shape and B, D with q; got q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"query heads ({q.shape[1]}) must be a multiple of kv heads ({k.shape[1]})")
    if causal and q.shape[2] > k.shape[2]:
        raise ValueError(f"causal attention needs T <= S (queries are the last T keys); got T={q.shape[2]}, "
                         f"S={k.shape[2]}")
    if sliding_window is not None and (not causal or sliding_window < 1):
        raise ValueError(f"sliding_window must be a positive int and needs causal=True; got {sliding_window}")


def attention_mask(t: int, s: int, causal: bool, sliding_window: int | None,
                   device: torch.device | None = None) -> torch.Tensor | None:
    """(T, S) boolean, True where a query may attend; None when everything is visible."""
    if not causal:
        return None
    pos = torch.arange(s - t, s, device=device)[:, None]  # (T, 1) absolute query positions
    key = torch.arange(s, device=device)[None, :]  # (1, S)
    mask = key <= pos
    if sliding_window is not None:
        mask &= key > pos - sliding_window
    return mask


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              sliding_window: int | None = None, scale: float | None = None) -> torch.Tensor:
    check_attention_args(q, k, v, causal, sliding_window)
    t, s = q.shape[2], k.shape[2]
    if sliding_window is None and (not causal or t == s):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True)
    mask = attention_mask(t, s, causal, sliding_window, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
