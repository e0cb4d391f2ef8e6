"""Torch reference for a matrix product: a (..., M, K) @ b (K, N) or batched (..., K, N)."""

from __future__ import annotations

import torch


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.matmul(a, b)
