"""What every quantized linear layer here shares: nn.Linear's interface without a float weight.

Contract
  * in_features / out_features as nn.Linear; forward maps (..., in_features) -> (..., out_features) in the
    input's dtype.
  * `weight` is an EMPTY tensor of the layer's compute dtype on its device (a non-persistent buffer, so
    `module.to(...)` moves it and state_dict omits it). Code that only asks a linear where it lives
    (`ByteModel.device` reads `lm_head.weight.device`) keeps working; code that would multiply by it gets an
    empty tensor and a shape error instead of silently using a stale float copy.
  * `weight_bytes()` counts the bytes a forward reads for the weight (codes + scales + zero points + bias):
    the quantity that sets decode speed on a memory-bound device.
"""

from __future__ import annotations

import torch
from torch import nn


class QuantizedLinear(nn.Module):
    scheme: str = "?"

    def __init__(self, in_features: int, out_features: int, compute_dtype: torch.dtype,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.empty(0, dtype=compute_dtype, device=device), persistent=False)

    def quantized_buffers(self) -> list[torch.Tensor]:
        """The tensors a forward reads for the weight (override)."""
        raise NotImplementedError

    def weight_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.quantized_buffers())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme}"

    def _check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[-1]} features, expected {self.in_features}")
