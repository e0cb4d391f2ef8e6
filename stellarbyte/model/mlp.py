"""Feed-forward blocks.

  swiglu  down(silu(gate(x)) * up(x))            Shazeer, 2020, "GLU Variants Improve Transformer"
  geglu   down(gelu_tanh(gate(x)) * up(x))       same paper; tanh GELU as in Gemma
  gelu    down(gelu(up(x)))                      GPT-2 / BERT
  relu2   down(relu(up(x))^2)                    So et al., 2021, "Primer"

An MLP slot module returns a tensor, or (tensor, aux_loss) -- the contract the MoE layer will use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stellarbyte import kernels
from stellarbyte.config import ByteConfig


class GatedMLP(nn.Module):
    def __init__(self, config: ByteConfig, activation: str) -> None:
        super().__init__()
        h, f = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(h, f, bias=config.mlp_bias)
        self.up_proj = nn.Linear(h, f, bias=config.mlp_bias)
        self.down_proj = nn.Linear(f, h, bias=config.mlp_bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_proj(x), self.up_proj(x)  # (B, T, F) each
        # act(gate) * up through the kernel registry (one fused Triton pass on CUDA)
        h = kernels.silu_mul(gate, up) if self.activation == "silu" else kernels.gelu_mul(gate, up, "tanh")
        return self.down_proj(h)


class MLP(nn.Module):
    def __init__(self, config: ByteConfig, activation: str) -> None:
        super().__init__()
        h, f = config.hidden_size, config.intermediate_size
        self.up_proj = nn.Linear(h, f, bias=config.mlp_bias)
        self.down_proj = nn.Linear(f, h, bias=config.mlp_bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up_proj(x)
        y = F.gelu(y) if self.activation == "gelu" else F.relu(y).square()
        return self.down_proj(y)


def build_mlp(config: ByteConfig, layer_idx: int) -> nn.Module:
    """mlp_type -> module; the MoE layer plugs in here when it lands."""
    if config.mlp_type == "swiglu":
        return GatedMLP(config, "silu")
    if config.mlp_type == "geglu":
        return GatedMLP(config, "gelu_tanh")
    return MLP(config, config.mlp_type)
