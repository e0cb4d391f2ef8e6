"""Weight-only quantized linear (int8 per channel, int4 group-wise) for GPU decode; activations stay bf16/fp16.

forward(x) = x @ dequant(W)^T + b, computed one of two ways:
  torch  (reference; CPU, tests, and large M on GPU): W' = dequantize(...) in x's dtype, then F.linear(x, W').
         Prefill (M in the hundreds) is compute-bound, so materialising W' and using cuBLAS is the right call.
  triton (CUDA, M <= FUSED_MAX_M rows): triton_wo.weight_only_matmul dequantizes tiles in registers inside the
         product, reading 1 (int8) or 0.5 (+ scales) (int4) bytes per weight instead of 2.
  tinygemm (int4, bf16, M <= FUSED_MAX_M): torch._weight_int4pack_mm, PyTorch's own int4 kernel (torchao's
         int4 weight-only path), fed by peers.int4pack_linear from our layout; built once per device, lazily.
Which one runs: forward(backend=...), else the layer's `kernel` (quantize_model(kernel=...)), else the kernel
registry's setting (use_backend(), STELLARBYTE_KERNELS). "auto" on CUDA at decode sizes takes tinygemm for
bf16 int4 -- it measured 1.8-2.4x faster than our Triton kernel per call at M = 1 on the H100
(docs/quantization.md) -- and our Triton kernel for int8 (torch's int8 kernel measured 8-30x slower than ours)
and for other dtypes; "triton" forces ours (on CPU only under TRITON_INTERPRET=1, as the tests run it).

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

FUSED_MAX_M = 64  # rows up to which "auto" uses a fused kernel; beyond it dequantize + cuBLAS
KERNELS = ("auto", "torch", "triton", "tinygemm")


class WeightOnlyLinear(QuantizedLinear):
    def __init__(self, in_features: int, out_features: int, bits: int = 8, group_size: int = 128,
                 symmetric: bool = True, bias: bool = False, compute_dtype: torch.dtype = torch.bfloat16,
                 device: torch.device | str | None = None) -> None:
        super().__init__(in_features, out_features, compute_dtype, device)
        if bits not in (4, 8):
            raise ValueError(f"bits={bits} is not supported; weight-only quantization takes 8 or 4")
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric
        self.kernel = "auto"
        self._tinygemm_cache: tuple | None = None  # (device, callable) built on first use
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
        chosen = backend or self.kernel
        if chosen == "auto":
            chosen = get_backend()  # the registry: use_backend() / STELLARBYTE_KERNELS, else "auto"
        if chosen not in KERNELS:
            raise ValueError(f"unknown backend {chosen!r}; choose one of {', '.join(KERNELS)}")
        if chosen != "auto":
            return chosen
        if not x.is_cuda or rows > FUSED_MAX_M:
            return "torch"
        if self.bits == 4 and x.dtype == torch.bfloat16 and tinygemm_supported(self):
            return "tinygemm"
        return "triton" if triton_available() else "torch"

    def _tinygemm(self, x2: torch.Tensor) -> torch.Tensor:
        if self._tinygemm_cache is None or self._tinygemm_cache[0] != x2.device:
            from stellarbyte.infer.quant.peers import int4pack_linear

            self._tinygemm_cache = (x2.device, int4pack_linear(self, inner_k_tiles=tinygemm_inner_k_tiles(self)))
        return self._tinygemm_cache[1](x2)

    def forward(self, x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
        self._check_input(x)
        x2 = x.reshape(-1, self.in_features)  # (M, K)
        chosen = self.resolve_backend(x, x2.shape[0], backend)
        if chosen == "torch":
            y = F.linear(x2, self.dequantize(x.dtype), None)
        elif chosen == "tinygemm":
            y = self._tinygemm(x2).to(x.dtype)
        else:
            from stellarbyte.infer.quant.triton_wo import weight_only_matmul

            y = weight_only_matmul(x2, self.qweight, self.scales, self.zeros, self.bits, self.group_size)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)


def tinygemm_inner_k_tiles(module: WeightOnlyLinear) -> int:
    """torch's int4 layout tiles K in units of 16 * inner_k_tiles (2, 4 or 8); the largest that divides K."""
    return next((t for t in (8, 4, 2) if module.in_features % (16 * t) == 0), 0)


def tinygemm_supported(module: WeightOnlyLinear) -> bool:
    """torch._weight_int4pack_mm exists here and takes this shape (N % 8 == 0, K a multiple of 32)."""
    return (module.bits == 4 and hasattr(torch, "_weight_int4pack_mm") and module.out_features % 8 == 0
            and tinygemm_inner_k_tiles(module) > 0)
