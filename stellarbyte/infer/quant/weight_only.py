"""Weight-only quantized linear (int8 per channel, int4 group-wise) for GPU decode; activations stay bf16/fp16.

forward(x) = x @ dequant(W)^T + b, computed one of two ways:
  torch  (reference; CPU, tests, and large M on GPU): W' = dequantize(...) in x's dtype, then F.linear(x, W').
         Prefill (M in the hundreds) is compute-bound, so materialising W' and using cuBLAS is the right call.
  triton (CUDA, M <= FUSED_MAX_M rows): triton_wo.weight_only_matmul dequantizes tiles in registers inside the
         product, reading 1 (int8) or 0.5 (+ scales) (int4) bytes per weight instead of 2.
The backend follows the kernel registry's setting (backend= argument, use_backend(), STELLARBYTE_KERNELS):
"auto" takes Triton when x is on CUDA, Triton imports and M is decode-sized; "triton" forces it (on CPU only
under TRITON_INTERPRET=1, as the tests run it).

Storage (bytes per weight): int8 1 + 4/K; int4 0.5 + 5/G (float32 scale and uint8 zero per group), e.g.
0.539 at G = 128. References: torchao int8_weight_only / int4_weight_only, GPTQ and AWQ group-wise layouts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stellarbyte.infer.quant.base import QuantizedLinear
from stellarbyte.infer.quant.packing import pack_int4, unpack_int4
from stellarbyte.infer.quant.schemes import (
    check_group_size,
    dequantize_int4_groupwise,
    dequantize_int8_per_channel,
    quantize_int4_groupwise,
    quantize_int8_per_channel,
)
from stellarbyte.kernels.registry import get_backend, triton_available

FUSED_MAX_M = 64  # rows up to which "auto" uses the fused kernel; beyond it dequantize + cuBLAS


class WeightOnlyLinear(QuantizedLinear):
    def __init__(self, in_features: int, out_features: int, bits: int = 8, group_size: int = 128,
                 symmetric: bool = True, bias: bool = False, compute_dtype: torch.dtype = torch.bfloat16,
                 device: torch.device | str | None = None) -> None:
        super().__init__(in_features, out_features, compute_dtype, device)
        if bits not in (4, 8):
            raise ValueError(f"bits={bits} is not supported; weight-only quantization takes 8 or 4")
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric
        self.scheme = "int8" if bits == 8 else f"int4-g{group_size}-{'sym' if symmetric else 'asym'}"
        n, k = out_features, in_features
        if bits == 8:
            self.register_buffer("qweight", torch.zeros(n, k, dtype=torch.int8, device=device))
            self.register_buffer("scales", torch.ones(n, dtype=torch.float32, device=device))
            self.register_buffer("zeros", None)
        else:
            check_group_size(k, group_size)
            self.register_buffer("qweight", torch.zeros(n, k // 2, dtype=torch.uint8, device=device))
            self.register_buffer("scales", torch.ones(n, k // group_size, dtype=torch.float32, device=device))
            self.register_buffer("zeros", torch.full((n, k // group_size), 8, dtype=torch.uint8, device=device))
        self.register_buffer("bias", torch.zeros(n, dtype=compute_dtype, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int = 8, group_size: int = 128,
                    symmetric: bool = True) -> WeightOnlyLinear:
        w = linear.weight
        module = cls(linear.in_features, linear.out_features, bits, group_size, symmetric,
                     linear.bias is not None, w.dtype, w.device)
        if bits == 8:
            q, scale = quantize_int8_per_channel(w)
            module.qweight.copy_(q)
            module.scales.copy_(scale)
        else:
            qw = quantize_int4_groupwise(w, group_size, symmetric)
            module.qweight.copy_(pack_int4(qw.codes))
            module.scales.copy_(qw.scales)
            module.zeros.copy_(qw.zeros)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach())
        return module

    def quantized_buffers(self) -> list[torch.Tensor]:
        return [t for t in (self.qweight, self.scales, self.zeros, self.bias) if t is not None]

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The (N, K) float weight this layer computes with."""
        dtype = dtype or self.weight.dtype
        if self.bits == 8:
            return dequantize_int8_per_channel(self.qweight, self.scales, dtype)
        return dequantize_int4_groupwise(unpack_int4(self.qweight), self.scales, self.zeros, self.group_size, dtype)

    def resolve_backend(self, x: torch.Tensor, rows: int, backend: str | None = None) -> str:
        chosen = backend or get_backend()
        if chosen == "auto":
            return "triton" if x.is_cuda and rows <= FUSED_MAX_M and triton_available() else "torch"
        if chosen not in ("torch", "triton"):
            raise ValueError(f"unknown backend {chosen!r}; choose torch, triton or auto")
        return chosen

    def forward(self, x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
        self._check_input(x)
        x2 = x.reshape(-1, self.in_features)  # (M, K)
        if self.resolve_backend(x, x2.shape[0], backend) == "torch":
            y = F.linear(x2, self.dequantize(x.dtype), None)
        else:
            from stellarbyte.infer.quant.triton_wo import weight_only_matmul

            y = weight_only_matmul(x2, self.qweight, self.scales, self.zeros, self.bits, self.group_size)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)
