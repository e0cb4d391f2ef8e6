"""Quantize and dequantize weights and activations: the arithmetic every quantized layer in this package uses.

Symmetric absmax, int8 per output channel (LLM.int8, Dettmers et al. 2022, Sec. 3; torchao int8 weight-only):
    s_n = max_k |W[n, k]| / 127          q = round(W / s_n) in [-127, 127]       W ~ q * s_n
    rounding error |W - q s_n| <= s_n / 2 for every element (no clipping: |W / s_n| <= 127 by construction).

Per-token int8 activations (dynamic: computed at run time, one scale per row of x, as in LLM.int8's vector-wise
quantization and SmoothQuant's per-token setting):
    a_m = max_k |x[m, k]| / 127          x ~ round(x / a_m) * a_m

Group-wise int4 weights (GPTQ, Frantar et al. 2023; AWQ, Lin et al. 2024; torchao int4 weight-only): the K inputs
of each output row are cut into groups of G (32, 64, 128); each group has its own scale, and for the asymmetric
variant its own integer zero point. Stored values u are unsigned 4-bit, W ~ (u - z) * s:
    symmetric:  s = absmax / 7, z = 8, u = round(W / s) + 8 in [1, 15]           error <= s / 2
    asymmetric: lo = min(min W, 0), hi = max(max W, 0)   (the range holds 0, so z is a valid code)
                s = (hi - lo) / 15, z = round(-lo / s) in [0, 15], u = clamp(round(W / s) + z, 0, 15)
                error <= s / 2: z = -lo/s + d with |d| <= 1/2, so the ideal code W/s + z lies in
                [d, 15 + d] within [-1/2, 15.5], and clamping to [0, 15] there costs at most half a step.
All-zero rows or groups get scale 1 (any scale represents zeros exactly), never a division by zero.
Scales are float32 (a bf16 scale would add up to 2^-9 relative error to every weight of its group).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GROUP_SIZES = (32, 64, 128)


def _safe(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def quantize_int8_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight (N, K) float -> (q (N, K) int8, scale (N,) float32), symmetric absmax per output row."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"expected a 2-D floating weight (out_features, in_features), got {tuple(weight.shape)} "
                         f"{weight.dtype}")
    w = weight.detach().float()
    scale = _safe(w.abs().amax(dim=1) / 127.0)  # (N,)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8_per_channel(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32
                                ) -> torch.Tensor:
    """q (N, K) int8, scale (N,) -> W (N, K) in dtype."""
    return (q.float() * scale.float()[:, None]).to(dtype)


def quantize_int8_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) float -> (q (M, K) int8, scale (M,) float32): one symmetric absmax scale per row (token)."""
    xf = x.float()
    scale = _safe(xf.abs().amax(dim=-1) / 127.0)  # (M,)
    q = torch.round(xf / scale[..., None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


@dataclass(slots=True)
class Int4Weight:
    """Group-wise int4 weight of an (N, K) matrix; the packing into bytes lives in packing.py.

    codes (N, K) uint8 in [0, 15]; scales (N, K // G) float32; zeros (N, K // G) uint8 in [0, 15]."""

    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor
    group_size: int
    symmetric: bool

    def __post_init__(self) -> None:
        n, k = self.codes.shape
        assert k % self.group_size == 0, "K must be a multiple of the group size"
        assert self.scales.shape == self.zeros.shape == (n, k // self.group_size)


def check_group_size(in_features: int, group_size: int) -> None:
    if group_size not in GROUP_SIZES:
        raise ValueError(f"group_size={group_size} is not supported; choose one of {GROUP_SIZES}")
    if in_features % group_size:
        raise ValueError(f"in_features={in_features} is not a multiple of group_size={group_size}; pick a group "
                         f"size that divides it ({[g for g in GROUP_SIZES if in_features % g == 0] or 'none fits'}) "
                         f"or skip this layer")


def quantize_int4_groupwise(weight: torch.Tensor, group_size: int = 128, symmetric: bool = True) -> Int4Weight:
    """weight (N, K) -> Int4Weight with one scale (and zero point) per group of `group_size` inputs."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"expected a 2-D floating weight (out_features, in_features), got {tuple(weight.shape)} "
                         f"{weight.dtype}")
    n, k = weight.shape
    check_group_size(k, group_size)
    w = weight.detach().float().reshape(n, k // group_size, group_size)  # (N, G_count, G)
    if symmetric:
        scale = _safe(w.abs().amax(dim=-1) / 7.0)  # (N, G_count)
        zero = torch.full_like(scale, 8.0)
    else:
        lo = w.amin(dim=-1).clamp(max=0.0)
        hi = w.amax(dim=-1).clamp(min=0.0)
        scale = _safe((hi - lo) / 15.0)
        zero = torch.round(-lo / scale).clamp_(0, 15)
    codes = (torch.round(w / scale[..., None]) + zero[..., None]).clamp_(0, 15)
    return Int4Weight(codes.reshape(n, k).to(torch.uint8), scale, zero.to(torch.uint8), group_size, symmetric)


def dequantize_int4_groupwise(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int,
                              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """codes (N, K) uint8 in [0, 15], scales / zeros (N, K // G) -> W (N, K) = (u - z) * s in dtype."""
    n, k = codes.shape
    u = codes.reshape(n, k // group_size, group_size).float()
    w = (u - zeros.float()[..., None]) * scales.float()[..., None]
    return w.reshape(n, k).to(dtype)
