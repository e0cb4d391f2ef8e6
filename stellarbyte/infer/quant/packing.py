"""Two int4 codes per byte, packed along the input (K) dimension.

Layout (ours; GPTQ packs eight codes per int32 the same way, torch's _convert_weight_to_int4pack re-tiles for
its tensor-core kernel): codes (N, K) uint8 in [0, 15] -> packed (N, K // 2) uint8 with
    packed[n, j] = codes[n, 2j] | (codes[n, 2j + 1] << 4)      (even k in the low nibble, odd k in the high one)
so a row of the packed matrix is one output channel, and a K-tile of BK codes is BK / 2 contiguous bytes: the
Triton kernel loads bytes, splits nibbles with `& 0xF` and `>> 4`, and interleaves them back (tl.join).
Packing is exact: unpack(pack(c)) == c for every code.
"""

from __future__ import annotations

import torch


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """codes (N, K) integers in [0, 15], K even -> (N, K // 2) uint8."""
    if codes.dim() != 2 or codes.shape[1] % 2:
        raise ValueError(f"pack_int4 needs a 2-D tensor with an even number of columns, got {tuple(codes.shape)}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > 15):
        raise ValueError("int4 codes must lie in [0, 15]; quantize first (quantize_int4_groupwise)")
    c = codes.to(torch.uint8)
    return c[:, 0::2] | (c[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """(N, K // 2) uint8 -> codes (N, K) uint8 in [0, 15]."""
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise ValueError(f"unpack_int4 expects a 2-D uint8 tensor, got {tuple(packed.shape)} {packed.dtype}")
    low = packed & 0xF
    high = packed >> 4
    return torch.stack((low, high), dim=-1).reshape(packed.shape[0], packed.shape[1] * 2)  # (N, K // 2, 2) -> (N, K)
