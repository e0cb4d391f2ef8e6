"""PyTorch's own weight-only kernels, fed from our quantized layers -- the peers the benchmark compares with.

  torch._weight_int8pack_mm(x, w_int8 (N, K), scales (N,))      y = (x @ w^T) * s      (CPU; CUDA in recent torch)
  torch._weight_int4pack_mm(x, packed, G, scales_and_zeros)      tinygemm (CUDA, bf16), torchao's int4 kernel
Format conversion from our layout (WeightOnlyLinear):
  * torch packs even k in the HIGH nibble (gpt-fast / torchao: `w[:, ::2] << 4 | w[:, 1::2]`); ours puts it in
    the low one, so the bytes are nibble-swapped before _convert_weight_to_int4pack tiles them.
  * torch dequantizes w = (u - 8) * s + zf with a FLOAT zero zf; ours is (u - z) * s, so zf = (8 - z) * s.
    scales_and_zeros is (K / G, N, 2) in bf16 (which rounds s and zf: the peer is not bit-exact with ours).
The CPU variants (_convert_weight_to_int4pack_for_cpu / _weight_int4pack_mm_for_cpu) take the unpacked codes and
the same scales_and_zeros; tests use them to pin this conversion without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from stellarbyte.infer.quant.packing import unpack_int4
from stellarbyte.infer.quant.weight_only import WeightOnlyLinear


def scales_and_zeros(module: WeightOnlyLinear, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """(K / G, N, 2): [..., 0] = scale, [..., 1] = float zero (8 - z) * s, torch's tinygemm convention."""
    s = module.scales.float()
    zf = (8.0 - module.zeros.float()) * s
    return torch.stack((s, zf), dim=-1).transpose(0, 1).contiguous().to(dtype)


def int8pack_linear(module: WeightOnlyLinear) -> Callable[[torch.Tensor], torch.Tensor]:
    if module.bits != 8:
        raise ValueError("int8pack_linear needs an int8 WeightOnlyLinear")
    scales = module.scales.to(module.weight.dtype)
    return lambda x: torch._weight_int8pack_mm(x.reshape(-1, module.in_features), module.qweight, scales)


def int4pack_linear(module: WeightOnlyLinear, inner_k_tiles: int = 8) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch's int4 kernel on the module's weights: CUDA tinygemm, or the CPU variant for CPU modules."""
    if module.bits != 4:
        raise ValueError("int4pack_linear needs an int4 WeightOnlyLinear")
    sz = scales_and_zeros(module)
    g, k = module.group_size, module.in_features
    if module.qweight.is_cuda:
        swapped = (module.qweight >> 4) | (module.qweight << 4)  # uint8 shift drops the overflow: nibble swap
        packed = torch._convert_weight_to_int4pack(swapped.contiguous(), inner_k_tiles)
        return lambda x: torch._weight_int4pack_mm(x.reshape(-1, k), packed, g, sz)
    codes = unpack_int4(module.qweight).to(torch.int32)
    packed = torch._convert_weight_to_int4pack_for_cpu(codes, inner_k_tiles)
    return lambda x: torch._weight_int4pack_mm_for_cpu(x.reshape(-1, k), packed, g, sz)
