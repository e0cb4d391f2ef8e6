"""Normalisation layers: RMSNorm, LayerNorm, and RMSNorm with a (1 + weight) gain.

RMSNorm (Zhang & Sennrich, 2019): y = x / sqrt(mean(x^2) + eps) * w. Computed in float32 and cast back, as
transformers' LlamaRMSNorm does, so bf16 models match HF bit-for-bit in what they normalise.
The offset form (Gemma) stores w' = w - 1, initialised at zero, and multiplies by (1 + w') in float32.
The math runs through stellarbyte.kernels (registry: torch reference on CPU, Triton on CUDA by default); the
torch reference is exactly the code these modules used to inline.
"""

from __future__ import annotations

import torch
from torch import nn

from stellarbyte import kernels
from stellarbyte.config import ByteConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6, offset: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.offset = offset
        self.weight = nn.Parameter(torch.zeros(dim) if offset else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., dim)
        # float32 statistics, cast back, times the weight; offset (Gemma) multiplies by (1 + w) in float32
        return kernels.rms_norm(x, self.weight, self.eps, self.offset)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}, offset={self.offset}"


class LayerNorm(nn.LayerNorm):
    """torch's LayerNorm with the constructor signature of the other norms."""

    def __init__(self, dim: int, eps: float = 1e-5, offset: bool = False) -> None:
        super().__init__(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.layer_norm(x, self.weight, self.bias, self.eps)


def build_norm(config: ByteConfig, dim: int | None = None) -> nn.Module:
    dim = config.hidden_size if dim is None else dim
    if config.norm_type == "layernorm":
        return LayerNorm(dim, eps=config.norm_eps)
    return RMSNorm(dim, eps=config.norm_eps, offset=config.norm_type == "rmsnorm_offset")
