"""What happens to a sub-layer's output before it joins the residual stream: dropout, LayerScale, DropPath.

LayerScale (Touvron et al., 2021, "Going deeper with Image Transformers"): y * gamma, gamma a per-channel
vector initialised to a small value so each block starts close to the identity.
DropPath / stochastic depth (Huang et al., 2016): in training, drop the whole branch for a random subset of
samples and scale survivors by 1 / keep_prob, so the expectation is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H)
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.empty(x.shape[0], 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class ResidualBranch(nn.Module):
    """dropout -> LayerScale -> DropPath; each an identity when disabled."""

    def __init__(self, dim: int, dropout: float, layer_scale_init: float | None, drop_path: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.layer_scale = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, self.dropout, self.training) if self.dropout else x
        return self.drop_path(self.layer_scale(x))
