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


class LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float) -> torch.Tensor:
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
        ctx.has_bias = bias is not None
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, weight, mean, rstd = ctx.saved_tensors
        dy2 = _rows(dy)
        n_rows, n_cols = x2.shape
        dx = torch.empty_like(x2)
        block = row_block(n_cols)
        rows = bwd_rows(block)
        programs = num_programs(x2, triton.cdiv(n_rows, rows))
        dw = torch.zeros((programs, n_cols), dtype=torch.float32, device=x2.device)
        db = torch.zeros_like(dw)
        if n_rows:
            _layer_norm_bwd[(programs,)](dy2, x2, weight if weight is not None else x2, mean, rstd, dx, dw, db,
                                        dy2.stride(0), x2.stride(0), dx.stride(0), n_rows, n_cols,
                                        HAS_W=weight is not None, BLOCK=block, ROWS=rows,
                                        num_warps=row_warps(block * rows))
        dweight = dw.sum(0).to(weight.dtype) if weight is not None else None
        dbias = db.sum(0).to(weight.dtype if weight is not None else dy.dtype) if ctx.has_bias else None
        return dx.view(dy.shape), dweight, dbias, None


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float = 1e-5) -> torch.Tensor:
    return LayerNormFunction.apply(x, weight, bias, eps)
