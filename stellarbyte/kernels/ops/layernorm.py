"""LayerNorm in Triton, forward and backward.

Math (per row of D elements, float32 inside the kernel; Ba et al., 2016)
  mean = sum(x) / D,  rstd = 1 / sqrt(sum((x - mean)^2) / D + eps),  x_hat = (x - mean) * rstd
  y    = x_hat * w + b                                  (w, b optional)
Backward with g = dL/dy and wg = g * w:
  dx = rstd * (wg - mean(wg) - x_hat * mean(wg * x_hat)),  dw = sum_rows g * x_hat,  db = sum_rows g
Layout as in rmsnorm.py: one program per row forward, a persistent grid with dw/db partials backward.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, num_programs, row_block, row_warps
from stellarbyte.kernels.ops.rmsnorm import MAX_COLS, _rows, bwd_rows


@triton.jit
def _layer_norm_fwd(X, W, B, Y, MEAN, RSTD, stride_x, stride_y, n_cols, eps,
                    HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / n_cols
    xc = tl.where(mask, x - mean, 0.0)
    rstd = tl.rsqrt(tl.sum(xc * xc, axis=0) / n_cols + eps)
    y = xc * rstd
    if HAS_W:
        y = y * tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_B:
        y = y + tl.load(B + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + row * stride_y + cols, y.to(Y.dtype.element_ty), mask=mask)
    tl.store(MEAN + row, mean)
    tl.store(RSTD + row, rstd)


@triton.jit
def _layer_norm_bwd(DY, X, W, MEAN, RSTD, DX, DW, DB, stride_dy, stride_x, stride_dx, n_rows, n_cols,
                    HAS_W: tl.constexpr, BLOCK: tl.constexpr, ROWS: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    col_ok = cols < n_cols
    if HAS_W:
        w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)
    else:
        w = tl.full((BLOCK,), 1.0, tl.float32)
    dw = tl.zeros((ROWS, BLOCK), dtype=tl.float32)
    db = tl.zeros((ROWS, BLOCK), dtype=tl.float32)
    step = tl.num_programs(0)
    n_blocks = tl.cdiv(n_rows, ROWS)
    for it in range(0, tl.cdiv(n_blocks - pid, step)):
        rows = (pid + it * step).to(tl.int64) * ROWS + tl.arange(0, ROWS)
        row_ok = rows < n_rows
        mask = row_ok[:, None] & col_ok[None, :]
        g = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        mean = tl.load(MEAN + rows, mask=row_ok, other=0.0)
        rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)
        x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
        wg = g * w[None, :]
        mean_wg = tl.sum(wg, axis=1) / n_cols
        mean_wgx = tl.sum(wg * x_hat, axis=1) / n_cols
        dx = rstd[:, None] * (wg - mean_wg[:, None] - x_hat * mean_wgx[:, None])
        tl.store(DX + rows[:, None] * stride_dx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
        dw += g * x_hat
        db += g
    tl.store(DW + pid * n_cols + cols, tl.sum(dw, axis=0), mask=col_ok)
    tl.store(DB + pid * n_cols + cols, tl.sum(db, axis=0), mask=col_ok)


@triton.jit
def _layer_norm_bwd_dx(DY, X, W, MEAN, RSTD, DX, stride_dy, stride_x, stride_dx, n_cols,
                       HAS_W: tl.constexpr, BLOCK: tl.constexpr):
    """Split backward, part 1: dx only, one program per row."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = tl.load(RSTD + row)
    x_hat = tl.where(mask, (x - tl.load(MEAN + row)) * rstd, 0.0)
    if HAS_W:
        wg = g * tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    else:
        wg = g
    dx = rstd * (wg - tl.sum(wg, axis=0) / n_cols - x_hat * (tl.sum(wg * x_hat, axis=0) / n_cols))
    tl.store(DX + row * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)


@triton.jit
def _layer_norm_bwd_dwdb(DY, X, MEAN, RSTD, DWP, DBP, stride_dy, stride_x, n_rows, n_cols, rows_per_prog,
                         BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Split backward, part 2: column sums of g * x_hat and of g over a slab of rows."""
    cols = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    col_ok = cols < n_cols
    start = tl.program_id(1) * rows_per_prog
    end = tl.minimum(start + rows_per_prog, n_rows)
    acc_w = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    acc_b = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    for r0 in range(start, end, BLOCK_R):
        rows = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
        row_ok = rows < end
        mask = row_ok[:, None] & col_ok[None, :]
        g = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        mean = tl.load(MEAN + rows, mask=row_ok, other=0.0)
        rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)
        acc_w += g * ((x - mean[:, None]) * rstd[:, None])
        acc_b += g
    tl.store(DWP + tl.program_id(1) * n_cols + cols, tl.sum(acc_w, axis=0), mask=col_ok)
    tl.store(DBP + tl.program_id(1) * n_cols + cols, tl.sum(acc_b, axis=0), mask=col_ok)


BWD_IMPLS = ("loop", "split")
BWD_DEFAULT = "split"  # H100, 8192x4096 bf16: split 0.667 ms fwd+bwd, loop 0.812 (docs/benchmarks.md)


class LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float, bwd: str = BWD_DEFAULT) -> torch.Tensor:
        check_device(_layer_norm_fwd, x, weight, bias)
        shape = x.shape
        x2 = _rows(x)
        n_rows, n_cols = x2.shape
        if n_cols > MAX_COLS:
            raise ValueError(f"layer_norm: rows of {n_cols} elements exceed the one-tile limit {MAX_COLS}")
        y = torch.empty_like(x2)
        mean = torch.empty(n_rows, dtype=torch.float32, device=x.device)
        rstd = torch.empty_like(mean)
        block = row_block(n_cols)
        if n_rows:
            _layer_norm_fwd[(n_rows,)](x2, weight if weight is not None else x2, bias if bias is not None else x2, y,
                                       mean, rstd, x2.stride(0), y.stride(0), n_cols, eps,
                                       HAS_W=weight is not None, HAS_B=bias is not None, BLOCK=block,
                                       num_warps=row_warps(block))
        ctx.save_for_backward(x2, weight, mean, rstd)
        ctx.has_bias, ctx.bwd = bias is not None, bwd
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, weight, mean, rstd = ctx.saved_tensors
        dy2 = _rows(dy)
        n_rows, n_cols = x2.shape
        dx = torch.empty_like(x2)
        block = row_block(n_cols)
        if ctx.bwd == "split":
            dw, db = _split_backward(dy2, x2, weight, mean, rstd, dx, block)
        else:
            dw, db = _loop_backward(dy2, x2, weight, mean, rstd, dx, block)
        dweight = dw.sum(0).to(weight.dtype) if weight is not None else None
        dbias = db.sum(0).to(weight.dtype if weight is not None else dy.dtype) if ctx.has_bias else None
        return dx.view(dy.shape), dweight, dbias, None, None


def _loop_backward(dy2, x2, weight, mean, rstd, dx, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    n_rows, n_cols = x2.shape
    rows = bwd_rows(block)
    programs = num_programs(x2, triton.cdiv(n_rows, rows))
    dw = torch.zeros((programs, n_cols), dtype=torch.float32, device=x2.device)
    db = torch.zeros_like(dw)
    if n_rows:
        _layer_norm_bwd[(programs,)](dy2, x2, weight if weight is not None else x2, mean, rstd, dx, dw, db,
                                    dy2.stride(0), x2.stride(0), dx.stride(0), n_rows, n_cols,
                                    HAS_W=weight is not None, BLOCK=block, ROWS=rows,
                                    num_warps=row_warps(block * rows))
    return dw, db


def _split_backward(dy2, x2, weight, mean, rstd, dx, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    n_rows, n_cols = x2.shape
    rows_per_prog = 256 if x2.is_cuda else 16
    slabs = max(1, triton.cdiv(n_rows, rows_per_prog))
    dw = torch.zeros((slabs, n_cols), dtype=torch.float32, device=x2.device)
    db = torch.zeros_like(dw)
    if n_rows:
        _layer_norm_bwd_dx[(n_rows,)](dy2, x2, weight if weight is not None else x2, mean, rstd, dx, dy2.stride(0),
                                      x2.stride(0), dx.stride(0), n_cols, HAS_W=weight is not None, BLOCK=block,
                                      num_warps=row_warps(block))
        _layer_norm_bwd_dwdb[(triton.cdiv(n_cols, 128), slabs)](dy2, x2, mean, rstd, dw, db, dy2.stride(0),
                                                                x2.stride(0), n_rows, n_cols, rows_per_prog,
                                                                BLOCK_R=32, BLOCK_C=128, num_warps=4)
    return dw, db


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float = 1e-5, bwd: str = BWD_DEFAULT) -> torch.Tensor:
    """bwd: "loop" (persistent grid, dw/db partials in registers) or "split" (row-parallel dx, then column
    sums); the bench times both."""
    if bwd not in BWD_IMPLS:
        raise ValueError(f"layer_norm backward implementation must be one of {BWD_IMPLS}, got {bwd!r}")
    return LayerNormFunction.apply(x, weight, bias, eps, bwd)
