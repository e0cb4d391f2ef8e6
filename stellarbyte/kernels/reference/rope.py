"""Torch reference for rotary position embedding applied to q and k.

Reference: Su et al., 2021 (RoFormer), in transformers' Llama layout: rotate_half pairs dim i with i + R/2,
cos/sin carry each frequency twice (cat(freqs, freqs)). Partial rotary: only the first R dims rotate.
Shapes: q (B, Hq, T, D), k (B, Hkv, T, D), cos/sin (B, T, R) or (1, T, R), R even and <= D. cos/sin are cast
to q's dtype before use, as stellarbyte.model.position.apply_rotary and transformers do.
"""

from __future__ import annotations

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
               sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rot = cos.shape[-1]
    cos = cos.unsqueeze(1).to(q.dtype)  # (B, 1, T, R)
    sin = sin.unsqueeze(1).to(q.dtype)
    out = []
    for x in (q, k):
        x_rot, x_pass = x[..., :rot], x[..., rot:]
        x_rot = x_rot * cos + rotate_half(x_rot) * sin
        out.append(x_rot if rot == x.shape[-1] else torch.cat((x_rot, x_pass), dim=-1))
    return out[0], out[1]
