"""Transformer blocks: one class per residual layout, so no forward() branches on the layout.

  pre-norm   h = x + A(N1(x));              y = h + M(N2(h))            GPT-2, Llama
  parallel   y = x + A(N1(x)) + M(N2(x))                                GPT-J / GPT-NeoX (Wang, 2021)
  post-norm  h = N1(a*x + A(x));            y = N2(a*h + M(h))          Vaswani et al., 2017 (a = 1)
  DeepNorm   post-norm with a = (2L)^(1/4) and beta-scaled init          Wang et al., 2022, "DeepNet"

A(.) and M(.) pass through a ResidualBranch (dropout, LayerScale, DropPath). Sub-layer names follow
transformers (self_attn, mlp, input_layernorm, post_attention_layernorm) so HF state dicts map 1:1.
"""

from __future__ import annotations

import torch
from torch import nn

from stellarbyte.config import ByteConfig
from stellarbyte.model.attention import build_attention
from stellarbyte.model.kv import KVCache
from stellarbyte.model.mlp import build_mlp
from stellarbyte.model.norm import build_norm
from stellarbyte.model.position import RotaryTables
from stellarbyte.model.residual import ResidualBranch


class Block(nn.Module):
    def __init__(self, config: ByteConfig, layer_idx: int) -> None:
        super().__init__()
        self.self_attn = build_attention(config, layer_idx)
        self.mlp = build_mlp(config, layer_idx)
        self.input_layernorm = build_norm(config)
        self.post_attention_layernorm = build_norm(config)
        depth = layer_idx / max(config.num_hidden_layers - 1, 1)
        branch = dict(dropout=config.hidden_dropout, layer_scale_init=config.layer_scale_init,
                      drop_path=config.drop_path_rate * depth)  # stochastic depth grows linearly with depth
        self.attn_residual = ResidualBranch(config.hidden_size, **branch)
        self.mlp_residual = ResidualBranch(config.hidden_size, **branch)
        self.aux_losses: list[torch.Tensor] = []

    def run_mlp(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        if isinstance(out, tuple):  # an MoE slot returns (output, aux_loss)
            out, aux = out
            self.aux_losses.append(aux)
        return out


class PreNormBlock(Block):
    def forward(self, x: torch.Tensor, rotary: RotaryTables | None, mask: torch.Tensor | None, is_causal: bool,
                cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn_residual(self.self_attn(self.input_layernorm(x), rotary, mask, is_causal, cache))
        return x + self.mlp_residual(self.run_mlp(self.post_attention_layernorm(x)))


class ParallelBlock(Block):
    def forward(self, x: torch.Tensor, rotary: RotaryTables | None, mask: torch.Tensor | None, is_causal: bool,
                cache: KVCache | None = None) -> torch.Tensor:
        attn = self.attn_residual(self.self_attn(self.input_layernorm(x), rotary, mask, is_causal, cache))
        return x + attn + self.mlp_residual(self.run_mlp(self.post_attention_layernorm(x)))


class PostNormBlock(Block):
    def __init__(self, config: ByteConfig, layer_idx: int) -> None:
        super().__init__(config, layer_idx)
        self.alpha = config.deepnorm_alpha if config.norm_scheme == "deepnorm" else 1.0

    def forward(self, x: torch.Tensor, rotary: RotaryTables | None, mask: torch.Tensor | None, is_causal: bool,
                cache: KVCache | None = None) -> torch.Tensor:
        x = self.input_layernorm(self.alpha * x + self.attn_residual(self.self_attn(x, rotary, mask, is_causal,
                                                                                    cache)))
        return self.post_attention_layernorm(self.alpha * x + self.mlp_residual(self.run_mlp(x)))


def build_block(config: ByteConfig, layer_idx: int) -> Block:
    if config.norm_scheme in ("post", "deepnorm"):
        return PostNormBlock(config, layer_idx)
    return (ParallelBlock if config.parallel_residual else PreNormBlock)(config, layer_idx)
