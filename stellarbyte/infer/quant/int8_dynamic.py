"""Dynamic int8 linear for CPU inference: int8 weights, int8 activations quantized per token at run time.

Math (LLM.int8 vector-wise quantization without the outlier split; SmoothQuant's per-token / per-channel W8A8):
    W (N, K) ~ Wq * s_w[n]          Wq int8, s_w = absmax per output channel / 127   (once, at load)
    x (M, K) ~ xq * a[m]            xq int8, a = absmax per token / 127               (every forward)
    y[m, n] = sum_k x W^T ~ a[m] * s_w[n] * sum_k xq[m, k] Wq[n, k]  (+ bias)
The inner sum is an exact int8 x int8 -> int32 product (torch._int_mm: oneDNN/FBGEMM VNNI kernels on x86 CPUs);
one float multiply per output rescales it. Error: the product of two roundings, each at most half a step.

Peer: torch.ao.quantization.quantize_dynamic (`ao_dynamic_linear` below; per-channel weights, per-TENSOR uint8
activations with reduce_range). `Int8DynamicLinear` is the readable path; `quantize_model(..., backend=)` picks
either one, and the default is the one measured faster here (docs/quantization.md).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from stellarbyte.infer.quant.base import QuantizedLinear
from stellarbyte.infer.quant.schemes import quantize_int8_per_channel, quantize_int8_per_token


def int8_matmul(xq: torch.Tensor, wq_t: torch.Tensor) -> torch.Tensor:
    """xq (M, K) int8 @ wq_t (K, N) int8 -> (M, N) int32, exact.

    torch._int_mm runs on CPU for any M; on CUDA it needs M > 16 and K, N multiples of 8, so small decode
    batches are padded up to 17 rows there (the extra rows are zeros and are dropped)."""
    m = xq.shape[0]
    if xq.is_cuda and m <= 16:
        pad = torch.zeros(17 - m, xq.shape[1], dtype=xq.dtype, device=xq.device)
        return torch._int_mm(torch.cat((xq, pad)), wq_t)[:m]
    return torch._int_mm(xq, wq_t)


class Int8DynamicLinear(QuantizedLinear):
    scheme = "int8-dynamic"

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 compute_dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> None:
        super().__init__(in_features, out_features, compute_dtype, device)
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32, device=device))
        self.register_buffer("bias", torch.zeros(out_features, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8DynamicLinear:
        w = linear.weight
        module = cls(linear.in_features, linear.out_features, linear.bias is not None, w.dtype, w.device)
        q, scale = quantize_int8_per_channel(w)
        # kept (N, K) like nn.Linear; _int_mm gets the (K, N) transposed view, which measured 2.4x faster at M = 1
        # than a (K, N)-contiguous copy on this CPU (50 vs 122 us for K=1024, N=3072, one thread)
        module.qweight.copy_(q)
        module.weight_scale.copy_(scale)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        return module

    def quantized_buffers(self) -> list[torch.Tensor]:
        return [t for t in (self.qweight, self.weight_scale, self.bias) if t is not None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x2 = x.reshape(-1, self.in_features)  # (M, K)
        xq, a = quantize_int8_per_token(x2)  # (M, K) int8, (M,) float32
        acc = int8_matmul(xq, self.qweight.t())  # (M, N) int32
        y = acc.float() * a[:, None] * self.weight_scale.float()[None, :]
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)


def ao_dynamic_linear(linear: nn.Linear) -> nn.Module:
    """torch.ao's dynamic int8 Linear (per-channel weights) for one float32 nn.Linear -- the peer we compare with.

    It holds the weight in a packed FBGEMM/oneDNN format; quantized_engine must support the CPU (x86, fbgemm
    or onednn). Its `weight` is a method, so ByteModel.device must not read it: quantize_model never hands
    lm_head to this backend."""
    if linear.weight.dtype != torch.float32 or linear.weight.is_cuda:
        raise ValueError("torch.ao dynamic quantization needs a float32 CPU linear; call model.float().cpu() first "
                         "or use backend='ours'")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao announces its move to torchao; the API still works in torch 2.13
        warnings.simplefilter("ignore")
        wrapped = quantize_dynamic(nn.Sequential(linear), {nn.Linear: per_channel_dynamic_qconfig},
                                   dtype=torch.qint8, inplace=False)
    return wrapped[0]
