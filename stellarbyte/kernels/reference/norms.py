"""Torch references for RMSNorm, fused residual-add + RMSNorm and LayerNorm.

References
  RMSNorm   Zhang & Sennrich, 2019; computed like transformers' LlamaRMSNorm: float32 statistics,
            x_hat cast back to the input dtype, then multiplied by the weight (result in their promoted dtype).
  offset    Gemma's RMSNorm: x_hat * (1 + weight) in float32, then cast to the input dtype.
  LayerNorm Ba et al., 2016; torch.nn.functional.layer_norm over the last dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: bool = False) -> torch.Tensor:
    dtype = x.dtype
    h = x.float()  # (..., D)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    if offset:
        return (h * (1.0 + weight.float())).to(dtype)
    return weight * h.to(dtype)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                 offset: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(rms_norm(x + residual), x + residual): the pre-norm block's 'add then normalise' step."""
    summed = x + residual  # in the input dtype, as the unfused model computes it
    return rms_norm(summed, weight, eps, offset), summed


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
