"""A tiled matrix product in Triton (for learning and comparison; "auto" keeps cuBLAS).

C (M, N) = A (M, K) @ B (K, N). Each program owns one BM x BN tile of C and walks K in BK steps,
accumulating tl.dot products in float32 registers. Programs are numbered in groups of GROUP_M tile-rows so
neighbouring programs reuse the same B columns from L2 (the "grouped ordering" of the Triton tutorial).
Rows/cols past M/N read wrapped (modulo) indices instead of masked ones and are never stored; only K is masked.
Backward: dA = dC @ B^T, dB = A^T @ dC, the same kernel on transposed (strided) views. float32 inputs use
IEEE float32 products; bf16/fp16 use the tensor cores with float32 accumulation.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, is_interpreted


@triton.jit
def _matmul_kernel(A, B, C, M, N, K, sam, sak, sbk, sbn, scm, scn,
                   BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr,
                   PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BM)
    num_n = tl.cdiv(N, BN)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows
    rm = (pid_m * BM + tl.arange(0, BM)) % M  # wrapped: out-of-range rows are computed, never stored
    rn = (pid_n * BN + tl.arange(0, BN)) % N
    rk = tl.arange(0, BK)
    a_ptrs = A + rm[:, None].to(tl.int64) * sam + rk[None, :] * sak
    b_ptrs = B + rk[:, None] * sbk + rn[None, :].to(tl.int64) * sbn
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BK)):
        k_left = K - k * BK
        a = tl.load(a_ptrs, mask=rk[None, :] < k_left, other=0.0)
        b = tl.load(b_ptrs, mask=rk[:, None] < k_left, other=0.0)
        if UPCAST:  # interpreter only: it multiplies bf16 bit patterns as integers, so go through float32
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BK * sak
        b_ptrs += BK * sbk
    cm = pid_m * BM + tl.arange(0, BM)
    cn = pid_n * BN + tl.arange(0, BN)
    c_ptrs = C + cm[:, None].to(tl.int64) * scm + cn[None, :] * scn
    tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=(cm[:, None] < M) & (cn[None, :] < N))


def _gpu_configs() -> list:
    shapes = [(128, 256, 64, 3, 8), (256, 128, 64, 3, 8), (128, 128, 64, 4, 4), (128, 128, 64, 3, 8),
              (64, 256, 64, 4, 4), (128, 64, 64, 4, 4), (64, 64, 64, 4, 4)]
    return [triton.Config({"BM": bm, "BN": bn, "BK": bk, "GROUP_M": 8}, num_stages=s, num_warps=w)
            for bm, bn, bk, s, w in shapes]


@functools.lru_cache(maxsize=1)
def _tuned():
    return triton.autotune(configs=_gpu_configs(), key=["M", "N", "K", "PRECISION", "UPCAST"])(_matmul_kernel)


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, K) @ (K, N) for 2-D tensors with any strides."""
    check_device(_matmul_kernel, a, b)
    m, k = a.shape
    n = b.shape[1]
    c = torch.empty((m, n), dtype=a.dtype, device=a.device)
    if m == 0 or n == 0:
        return c
    if k == 0:
        return c.zero_()
    precision = "ieee" if a.dtype == torch.float32 else "tf32"
    args = (a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1))
    if not is_interpreted(_matmul_kernel) and m * n * k < 256**3:  # small: one safe tile, no tuning sweep
        _matmul_kernel[(triton.cdiv(m, 64) * triton.cdiv(n, 64),)](*args, BM=64, BN=64, BK=32, GROUP_M=8,
                                                                   PRECISION=precision, UPCAST=False, num_warps=4)
    elif is_interpreted(_matmul_kernel):
        bm, bn, bk = 16, 16, 16
        _matmul_kernel[(triton.cdiv(m, bm) * triton.cdiv(n, bn),)](*args, BM=bm, BN=bn, BK=bk, GROUP_M=4,
                                                                   PRECISION=precision, UPCAST=True)
    else:
        _tuned()[lambda meta: (triton.cdiv(m, meta["BM"]) * triton.cdiv(n, meta["BN"]),)](*args,
                                                                                        PRECISION=precision,
                                                                                        UPCAST=False)
    return c


class MatmulFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dtype != b.dtype:
            raise ValueError(f"matmul: a ({a.dtype}) and b ({b.dtype}) must share a dtype")
        a2 = a.reshape(-1, a.shape[-1])
        ctx.save_for_backward(a2, b)
        ctx.a_shape = a.shape
        return mm(a2, b).view(*a.shape[:-1], b.shape[1])

    @staticmethod
    def backward(ctx, dc: torch.Tensor):
        a2, b = ctx.saved_tensors
        dc2 = dc.reshape(-1, dc.shape[-1])
        da = mm(dc2, b.t()).view(ctx.a_shape) if ctx.needs_input_grad[0] else None
        db = mm(a2.t(), dc2) if ctx.needs_input_grad[1] else None
        return da, db


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return MatmulFunction.apply(a, b)
