"""RMSNorm and fused residual-add + RMSNorm in Triton, forward and backward.

Math (per row of D elements, float32 inside the kernel)
  s     = x + residual                      (fused variant; rounded to the input dtype and also returned)
  rstd  = 1 / sqrt(mean(s^2) + eps)         saved per row for the backward (4 bytes a row)
  x_hat = s * rstd
  y     = weight * cast(x_hat)              or  cast(x_hat * (1 + weight))  with offset=True (Gemma)
Backward, with w' the effective gain (weight or 1 + weight) and g = dL/dy:
  ds    = rstd * (g w' - x_hat * mean(g w' x_hat))   (+ dL/ds_out for the fused variant's second output)
  dw    = sum over rows of g * x_hat                  (partial sums per program, reduced by torch)

Layout: one program per row in the forward; a persistent grid in the backward (ROWS rows per iteration for
short rows, one for long ones) where each program keeps a dw
partial in registers over many rows. Rows are the flattened leading dims; the last dim must fit one tile
(D <= 65536). References: Zhang & Sennrich, 2019; the fused-backward layout follows Liger-Kernel's idea.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, num_programs, row_block, row_warps

MAX_COLS = 65536


@triton.jit
def _rms_norm_fwd(X, R, W, Y, S, RSTD, stride_x, stride_r, stride_y, stride_s, n_cols, eps,
                  HAS_RES: tl.constexpr, OFFSET: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0)
    if HAS_RES:  # s = x + r, rounded to the input dtype exactly as the unfused torch add would
        r = tl.load(R + row * stride_r + cols, mask=mask, other=0.0)
        x = (x.to(tl.float32) + r.to(tl.float32)).to(X.dtype.element_ty)
        tl.store(S + row * stride_s + cols, x, mask=mask)
    xf = x.to(tl.float32)
    rstd = tl.rsqrt(tl.sum(xf * xf, axis=0) / n_cols + eps)
    x_hat = xf * rstd
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    if OFFSET:
        y = x_hat * (1.0 + w)
    else:  # LlamaRMSNorm: cast x_hat to the input dtype first, then multiply by the weight
        y = x_hat.to(X.dtype.element_ty).to(tl.float32) * w
    tl.store(Y + row * stride_y + cols, y.to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + row, rstd)


@triton.jit
def _rms_norm_bwd(DY, X, W, RSTD, DS, DX, DW, stride_dy, stride_x, stride_ds, stride_dx, n_rows, n_cols,
                  HAS_DRES: tl.constexpr, OFFSET: tl.constexpr, BLOCK: tl.constexpr, ROWS: tl.constexpr,
                  PREFETCH: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    col_ok = cols < n_cols
    w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)
    if OFFSET:
        w = w + 1.0
    dw = tl.zeros((ROWS, BLOCK), dtype=tl.float32)  # this program's partial sums of g * x_hat
    step = tl.num_programs(0)
    n_blocks = tl.cdiv(n_rows, ROWS)
    first = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS)  # int64: rows * stride may pass 2^31
    if PREFETCH:  # software pipelining by hand: the next rows' loads are issued before this row's math
        pmask = (first < n_rows)[:, None] & col_ok[None, :]
        g_next = tl.load(DY + first[:, None] * stride_dy + cols[None, :], mask=pmask, other=0.0)
        x_next = tl.load(X + first[:, None] * stride_x + cols[None, :], mask=pmask, other=0.0)
        r_next = tl.load(RSTD + first, mask=first < n_rows, other=0.0)
    for it in range(0, tl.cdiv(n_blocks - pid, step)):
        rows = first + it * step * ROWS
        mask = (rows < n_rows)[:, None] & col_ok[None, :]
        if PREFETCH:
            g = g_next.to(tl.float32)
            x = x_next
            rstd = r_next
            nxt = rows + step * ROWS
            nmask = (nxt < n_rows)[:, None] & col_ok[None, :]
            g_next = tl.load(DY + nxt[:, None] * stride_dy + cols[None, :], mask=nmask, other=0.0)
            x_next = tl.load(X + nxt[:, None] * stride_x + cols[None, :], mask=nmask, other=0.0)
            r_next = tl.load(RSTD + nxt, mask=nxt < n_rows, other=0.0)
        else:
            g = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0)
            rstd = tl.load(RSTD + rows, mask=rows < n_rows, other=0.0)
        x_hat = x.to(tl.float32) * rstd[:, None]
        if OFFSET:
            dw += g * x_hat
        else:
            dw += g * x_hat.to(X.dtype.element_ty).to(tl.float32)
        gw = g * w[None, :]
        dx = rstd[:, None] * (gw - x_hat * (tl.sum(gw * x_hat, axis=1) / n_cols)[:, None])
        if HAS_DRES:
            dx += tl.load(DS + rows[:, None] * stride_ds + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        tl.store(DX + rows[:, None] * stride_dx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
    tl.store(DW + pid * n_cols + cols, tl.sum(dw, axis=0), mask=col_ok)


def bwd_rows(block: int) -> int:
    """Rows per backward iteration. Measured on an H100 (docs/bench/h100_run2_*): two rows of 4096 per
    iteration with 16 warps ran the backward 1.5x SLOWER than one row with 8 warps (fewer programs resident
    per SM), so one row it is for rows of 1024 and more; short rows still batch up to 1024 elements."""
    return max(1, min(16, 1024 // block))


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(..., D) -> (N, D) with a unit stride along D (copies only when it must)."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


def rms_norm_forward(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float,
                     offset: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Launch the forward on (N, D) rows; returns y, s (fused only) and rstd (N,) float32."""
    check_device(_rms_norm_fwd, x, residual, weight)
    n_rows, n_cols = x.shape
    if n_cols > MAX_COLS:
        raise ValueError(f"rms_norm: rows of {n_cols} elements exceed the one-tile limit {MAX_COLS}")
    out_dtype = x.dtype if offset else torch.result_type(weight, x)
    y = torch.empty((n_rows, n_cols), dtype=out_dtype, device=x.device)
    s = torch.empty_like(x) if residual is not None else None
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    block = row_block(n_cols)
    if n_rows:
        _rms_norm_fwd[(n_rows,)](
            x, residual if residual is not None else x, weight, y, s if s is not None else y, rstd,
            x.stride(0), residual.stride(0) if residual is not None else 0, y.stride(0),
            s.stride(0) if s is not None else 0, n_cols, eps,
            HAS_RES=residual is not None, OFFSET=offset, BLOCK=block, num_warps=row_warps(block))
    return y, s, rstd


def rms_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor,
                      ds: torch.Tensor | None, offset: bool,
                      prefetch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    n_rows, n_cols = x.shape
    dx = torch.empty_like(x)
    block = row_block(n_cols)
    rows = bwd_rows(block)
    programs = num_programs(x, triton.cdiv(n_rows, rows))
    dw_partial = torch.empty((programs, n_cols), dtype=torch.float32, device=x.device)
    if n_rows:
        _rms_norm_bwd[(programs,)](
            dy, x, weight, rstd, ds if ds is not None else dy, dx, dw_partial,
            dy.stride(0), x.stride(0), ds.stride(0) if ds is not None else 0, dx.stride(0), n_rows, n_cols,
            HAS_DRES=ds is not None, OFFSET=offset, BLOCK=block, ROWS=rows, PREFETCH=prefetch,
            num_warps=row_warps(block * rows))
    else:
        dw_partial.zero_()
    return dx, dw_partial.sum(0).to(weight.dtype)


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float, offset: bool,
                prefetch: bool = True) -> torch.Tensor:
        shape = x.shape
        x2 = _rows(x)
        y, _, rstd = rms_norm_forward(x2, None, weight, eps, offset)
        ctx.save_for_backward(x2, weight, rstd)
        ctx.offset, ctx.prefetch = offset, prefetch
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(_rows(dy), x2, weight, rstd, None, ctx.offset, ctx.prefetch)
        return dx.view(dy.shape), dw, None, None, None


class AddRMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float,
                offset: bool, prefetch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        y, s, rstd = rms_norm_forward(_rows(x), _rows(residual), weight, eps, offset)
        ctx.save_for_backward(s, weight, rstd)
        ctx.offset, ctx.prefetch = offset, prefetch
        return y.view(shape), s.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor | None, ds: torch.Tensor | None):
        s, weight, rstd = ctx.saved_tensors
        if dy is None:  # only the sum was used downstream
            dy = torch.zeros_like(s)
        dx, dw = rms_norm_backward(_rows(dy), s, weight, rstd, None if ds is None else _rows(ds), ctx.offset,
                                   ctx.prefetch)
        dx = dx.view(dy.shape)
        return dx, dx, dw, None, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: bool = False,
             prefetch: bool = True) -> torch.Tensor:
    """prefetch: issue the next row's loads before this row's math in the backward (the bench times both)."""
    return RMSNormFunction.apply(x, weight, eps, offset, prefetch)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                 offset: bool = False, prefetch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    return AddRMSNormFunction.apply(x, residual, weight, eps, offset, prefetch)
