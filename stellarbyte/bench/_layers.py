"""A Llama-style decoder layer written with the kernel ops, so one flag switches every fused op at once.

  attention: x -> q/k/v projections -> RoPE -> causal GQA attention -> o projection
  mlp:       x -> gate/up projections -> silu(gate) * up -> down projection
  block:     add_rms_norm -> attention -> add_rms_norm -> mlp   (pre-norm, fused residual adds)
The backend comes from the registry default (use_backend / STELLARBYTE_KERNELS), as in the model.
"""

from __future__ import annotations

import torch
from torch import nn

import stellarbyte.kernels as K
from stellarbyte.bench._configs import BenchConfig


def rope_tables(cfg: BenchConfig, device: str, theta: float = 500000.0) -> tuple[torch.Tensor, torch.Tensor]:
    d = cfg.head_dim
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=device).float() / d))
    f = torch.outer(torch.arange(cfg.seq, device=device).float(), inv)
    emb = torch.cat((f, f), -1)[None]  # (1, T, D)
    return emb.cos(), emb.sin()


class AttentionLayer(nn.Module):
    def __init__(self, cfg: BenchConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden, cfg.heads * d, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, cfg.kv_heads * d, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, cfg.kv_heads * d, bias=False)
        self.o_proj = nn.Linear(cfg.heads * d, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        d = self.cfg.head_dim
        q = self.q_proj(x).view(b, t, self.cfg.heads, d).transpose(1, 2)  # (B, Hq, T, D)
        k = self.k_proj(x).view(b, t, self.cfg.kv_heads, d).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(b, t, self.cfg.kv_heads, d).transpose(1, 2)
        q, k = K.apply_rope(q, k, cos, sin)
        out = K.attention(q, k, v, causal=True)  # (B, Hq, T, D)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class MLPLayer(nn.Module):
    def __init__(self, cfg: BenchConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.ffn, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.ffn, bias=False)
        self.down_proj = nn.Linear(cfg.ffn, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(K.silu_mul(self.gate_proj(x), self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, cfg: BenchConfig) -> None:
        super().__init__()
        self.input_layernorm = nn.Parameter(torch.ones(cfg.hidden))
        self.post_attention_layernorm = nn.Parameter(torch.ones(cfg.hidden))
        self.self_attn = AttentionLayer(cfg)
        self.mlp = MLPLayer(cfg)

    def forward(self, x: torch.Tensor, residual: torch.Tensor, cos: torch.Tensor,
                sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, residual = K.add_rms_norm(x, residual, self.input_layernorm)
        h, residual = K.add_rms_norm(self.self_attn(h, cos, sin), residual, self.post_attention_layernorm)
        return self.mlp(h), residual


def layer_flops(cfg: BenchConfig, part: str) -> float:
    """Forward FLOPs of one layer part for one batch (matrix products; causal attention counts half)."""
    tokens = cfg.batch * cfg.seq
    d = cfg.head_dim
    proj = 2 * tokens * cfg.hidden * (cfg.heads + 2 * cfg.kv_heads) * d + 2 * tokens * cfg.heads * d * cfg.hidden
    attn = 4 * cfg.batch * cfg.heads * (cfg.seq * (cfg.seq + 1) / 2) * d
    mlp = 2 * tokens * 3 * cfg.hidden * cfg.ffn
    return {"attention": proj + attn, "mlp": mlp, "block": proj + attn + mlp}[part]
