"""Torch references for the gated activations of SwiGLU / GeGLU MLPs.

Reference: Shazeer, 2020, "GLU Variants Improve Transformer": silu(gate) * up and gelu(gate) * up, in the
input dtype, as transformers' LlamaMLP / GemmaMLP compute them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def gelu_mul(gate: torch.Tensor, up: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    return F.gelu(gate, approximate=approximate) * up
