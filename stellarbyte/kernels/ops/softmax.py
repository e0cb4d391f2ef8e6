"""Row-wise softmax in Triton, forward and backward, numerically stable for any row length.

Math: y_j = exp(x_j - m) / l with m = max_j x_j and l = sum_j exp(x_j - m) (float32 inside the kernel).
Rows that fit one tile (<= 32768 elements) are read once. Longer rows use the online form (Milakov &
Gimelshein, 2018): one pass keeps a running max m and a running sum l, rescaling l by exp(m_old - m_new)
whenever the max grows, then a second pass writes y. The backward is dx = y * (dy - sum_j dy_j y_j).
Other dims are moved to the last one (a copy) before the launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, row_warps

TILE_MAX = 32768


@triton.jit
def _softmax_fwd(X, Y, stride_x, stride_y, n_cols, BLOCK: tl.constexpr, SINGLE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    y_row = Y + row * stride_y
    cols = tl.arange(0, BLOCK)
    if SINGLE:
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=-float("inf")).to(tl.float32)
        e = tl.exp(x - tl.max(x, axis=0))
        tl.store(y_row + cols, (e / tl.sum(e, axis=0)).to(Y.dtype.element_ty), mask=mask)
    else:
        # pass 1: per-lane running max and rescaled running sum, merged across lanes at the end
        m = tl.full((BLOCK,), -float("inf"), tl.float32)
        s = tl.zeros((BLOCK,), tl.float32)
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, x)
            m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)  # lanes that have seen only padding
            s = s * tl.exp(m - m_safe) + tl.exp(x - m_safe)
            m = m_new
        row_max = tl.max(m, axis=0)
        total = tl.sum(s * tl.exp(m - row_max), axis=0)
        for start in range(0, n_cols, BLOCK):  # pass 2: write
            mask = start + cols < n_cols
            x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
            tl.store(y_row + start + cols, (tl.exp(x - row_max) / total).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_bwd(DY, Y, DX, stride_dy, stride_y, stride_dx, n_cols, BLOCK: tl.constexpr, SINGLE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    if SINGLE:
        mask = cols < n_cols
        dy = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
        y = tl.load(Y + row * stride_y + cols, mask=mask, other=0.0).to(tl.float32)
        dx = y * (dy - tl.sum(dy * y, axis=0))
        tl.store(DX + row * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros((BLOCK,), tl.float32)
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            dy = tl.load(DY + row * stride_dy + start + cols, mask=mask, other=0.0).to(tl.float32)
            y = tl.load(Y + row * stride_y + start + cols, mask=mask, other=0.0).to(tl.float32)
            acc += dy * y
        dot = tl.sum(acc, axis=0)
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            dy = tl.load(DY + row * stride_dy + start + cols, mask=mask, other=0.0).to(tl.float32)
            y = tl.load(Y + row * stride_y + start + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(DX + row * stride_dx + start + cols, (y * (dy - dot)).to(DX.dtype.element_ty), mask=mask)


def _config(n_cols: int, tile_max: int) -> tuple[int, bool]:
    block = triton.next_power_of_2(max(n_cols, 1))
    return (block, True) if block <= tile_max else (tile_max // 4, False)


class SoftmaxFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, tile_max: int) -> torch.Tensor:
        check_device(_softmax_fwd, x)
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        n_rows, n_cols = x2.shape
        y = torch.empty_like(x2)
        block, single = _config(n_cols, tile_max)
        if x2.numel():
            _softmax_fwd[(n_rows,)](x2, y, x2.stride(0), y.stride(0), n_cols, BLOCK=block, SINGLE=single,
                                    num_warps=row_warps(block))
        ctx.save_for_backward(y)
        ctx.tile_max = tile_max
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (y,) = ctx.saved_tensors
        dy2 = dy.reshape(y.shape).contiguous()
        dx = torch.empty_like(y)
        block, single = _config(y.shape[1], ctx.tile_max)
        if y.numel():
            _softmax_bwd[(y.shape[0],)](dy2, y, dx, dy2.stride(0), y.stride(0), dx.stride(0), y.shape[1],
                                        BLOCK=block, SINGLE=single, num_warps=row_warps(block))
        return dx.view(dy.shape), None


def softmax(x: torch.Tensor, dim: int = -1, tile_max: int = TILE_MAX) -> torch.Tensor:
    """tile_max: the longest row handled in one tile (tests lower it to exercise the online path)."""
    if x.dim() == 0:
        return torch.ones_like(x)
    dim = dim % x.dim()
    if dim == x.dim() - 1:
        return SoftmaxFunction.apply(x, tile_max)
    return SoftmaxFunction.apply(x.movedim(dim, -1), tile_max).movedim(-1, dim)
