"""Causal self-attention with grouped KV heads (MHA / GQA / MQA), optional QK-norm, and two backends.

  q = x Wq -> (B, Hq, T, D)     k, v = x Wk, x Wv -> (B, Hkv, T, D)     Hq = G * Hkv
  out = softmax(q k^T / sqrt(D) + mask) v, each group of G query heads sharing one KV head

References: Vaswani et al., 2017; Shazeer, 2019 (MQA); Ainslie et al., 2023 (GQA); Dehghani et al., 2023
(QK-norm, as in Qwen3: an RMSNorm over each head's dims before RoPE).

Backends: `eager` computes the softmax explicitly in float32 (readable, the reference); `sdpa` calls
torch.nn.functional.scaled_dot_product_attention, which picks flash / memory-efficient kernels where it can.
`auto` is sdpa. The mask arrives ready-made from the decoder (see masks.py); `is_causal` marks the case where
it is the plain lower triangle: that case goes through stellarbyte.kernels.attention (FlashAttention-style
Triton on CUDA, SDPA's causal path as the torch reference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stellarbyte import kernels
from stellarbyte.config import ByteConfig
from stellarbyte.model.kv import KVCache
from stellarbyte.model.norm import RMSNorm
from stellarbyte.model.position import RotaryTables, apply_rotary


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, Hkv, S, D) -> (B, Hkv * groups, S, D), each KV head repeated for its group of query heads."""
    if groups == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, groups, s, d).reshape(b, h * groups, s, d)


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                    is_causal: bool, scale: float, dropout: float) -> torch.Tensor:
    groups = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, Hq, T, S)
    if is_causal:
        t, s = scores.shape[-2:]
        future = torch.ones(t, s, dtype=torch.bool, device=q.device).triu(s - t + 1)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
    elif mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    probs = F.dropout(probs, p=dropout, training=dropout > 0)
    return torch.matmul(probs, v)  # (B, Hq, T, D)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                   is_causal: bool, scale: float, dropout: float) -> torch.Tensor:
    if is_causal and dropout == 0.0:
        # the plain causal case (training, prefill without padding) goes through the kernel registry:
        # FlashAttention-style Triton on CUDA, this same SDPA call as its torch reference elsewhere
        return kernels.attention(q, k, v, causal=True, scale=scale)
    groups = q.shape[1] // k.shape[1]
    if mask is not None and groups > 1:
        # SDPA's native GQA has no fused kernel with an explicit mask (it falls back to the math path on CUDA);
        # repeating the KV heads keeps the efficient kernels.
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if is_causal else mask, dropout_p=dropout,
                                          is_causal=is_causal, scale=scale, enable_gqa=k.shape[1] != q.shape[1])


ATTENTION_FUNCTIONS = {"eager": eager_attention, "sdpa": sdpa_attention, "auto": sdpa_attention}


class Attention(nn.Module):
    def __init__(self, config: ByteConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.scale = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.implementation = config.attention_implementation
        h, d = config.hidden_size, self.head_dim
        self.q_proj = nn.Linear(h, self.num_heads * d, bias=config.qkv_bias)
        self.k_proj = nn.Linear(h, self.num_kv_heads * d, bias=config.qkv_bias)
        self.v_proj = nn.Linear(h, self.num_kv_heads * d, bias=config.qkv_bias)
        self.o_proj = nn.Linear(self.num_heads * d, h, bias=config.attention_out_bias)
        if config.qk_norm:
            self.q_norm = RMSNorm(d, eps=config.norm_eps)
            self.k_norm = RMSNorm(d, eps=config.norm_eps)
        else:
            self.q_norm = self.k_norm = nn.Identity()

    def forward(self, x: torch.Tensor, rotary: RotaryTables | None, mask: torch.Tensor | None,
                is_causal: bool, cache: KVCache | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        # heads inferred (-1) rather than read from the config: under tensor parallelism each rank holds a
        # column shard of q/k/v_proj, i.e. only its share of the heads
        q = self.q_norm(self.q_proj(x).view(b, t, -1, self.head_dim)).transpose(1, 2)  # (B, Hq, T, D)
        k = self.k_norm(self.k_proj(x).view(b, t, -1, self.head_dim)).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        if rotary is not None:
            q, k = apply_rotary(q, k, rotary)
        if cache is not None and cache.computes_attention:
            out = cache.attend(self.layer_idx, q, k, v, self.scale)  # (B, Hq, T, D), e.g. paged attention
        else:
            if cache is not None:
                k, v = cache.update(self.layer_idx, k, v)  # (B, Hkv, S, D)
            attend = ATTENTION_FUNCTIONS[self.implementation]
            out = attend(q, k, v, mask, is_causal, self.scale, self.dropout if self.training else 0.0)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))  # (B, T, Hq * D) -> (B, T, hidden)


# attention_type -> module; MLA (multi-head latent attention) registers here when it lands.
ATTENTION_CLASSES: dict[str, type[nn.Module]] = {"mha": Attention}


def build_attention(config: ByteConfig, layer_idx: int) -> nn.Module:
    return ATTENTION_CLASSES[config.attention_type](config, layer_idx)
