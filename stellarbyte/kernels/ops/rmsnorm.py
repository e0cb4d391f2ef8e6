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


@triton.jit
def _rms_norm_bwd_dx(DY, X, W, RSTD, DS, DX, stride_dy, stride_x, stride_ds, stride_dx, n_cols,
                     HAS_DRES: tl.constexpr, OFFSET: tl.constexpr, BLOCK: tl.constexpr):
    """Split backward, part 1: dx only, one program per row (as parallel as the forward)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    if OFFSET:
        w = w + 1.0
    g = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
    x_hat = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32) * tl.load(RSTD + row)
    gw = g * w
    dx = tl.load(RSTD + row) * (gw - x_hat * (tl.sum(gw * x_hat, axis=0) / n_cols))
    if HAS_DRES:
        dx += tl.load(DS + row * stride_ds + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(DX + row * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_bwd_dw(DY, X, RSTD, DWP, stride_dy, stride_x, n_rows, n_cols, rows_per_prog,
                     OFFSET: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Split backward, part 2: column sums of g * x_hat over a slab of rows (re-reads g and x)."""
    cols = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    col_ok = cols < n_cols
    start = tl.program_id(1) * rows_per_prog
    acc = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    for r0 in range(start, tl.minimum(start + rows_per_prog, n_rows), BLOCK_R):
        rows = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
        row_ok = rows < tl.minimum(start + rows_per_prog, n_rows)
        mask = row_ok[:, None] & col_ok[None, :]
        g = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0)
        x_hat = x.to(tl.float32) * tl.load(RSTD + rows, mask=row_ok, other=0.0)[:, None]
        if not OFFSET:
            x_hat = x_hat.to(X.dtype.element_ty).to(tl.float32)
        acc += g * x_hat
    tl.store(DWP + tl.program_id(1) * n_cols + cols, tl.sum(acc, axis=0), mask=col_ok)


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


BWD_IMPLS = ("prefetch", "loop", "split")
BWD_DEFAULT = "prefetch"


def rms_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor,
                      ds: torch.Tensor | None, offset: bool,
                      bwd: str = BWD_DEFAULT) -> tuple[torch.Tensor, torch.Tensor]:
    """bwd: "prefetch" / "loop" (persistent grid, dw partials in registers, with or without the next row's
    loads issued early) or "split" (dx one row per program, then a column-sum kernel for dw)."""
    if bwd not in BWD_IMPLS:
        raise ValueError(f"rms_norm backward implementation must be one of {BWD_IMPLS}, got {bwd!r}")
    n_rows, n_cols = x.shape
    dx = torch.empty_like(x)
    block = row_block(n_cols)
    if bwd == "split":
        return dx, _split_backward(dy, x, weight, rstd, ds, dx, offset, block)
    rows = bwd_rows(block)
    programs = num_programs(x, triton.cdiv(n_rows, rows))
    dw_partial = torch.empty((programs, n_cols), dtype=torch.float32, device=x.device)
    if n_rows:
        _rms_norm_bwd[(programs,)](
            dy, x, weight, rstd, ds if ds is not None else dy, dx, dw_partial,
            dy.stride(0), x.stride(0), ds.stride(0) if ds is not None else 0, dx.stride(0), n_rows, n_cols,
            HAS_DRES=ds is not None, OFFSET=offset, BLOCK=block, ROWS=rows, PREFETCH=bwd == "prefetch",
            num_warps=row_warps(block * rows))
    else:
        dw_partial.zero_()
    return dx, dw_partial.sum(0).to(weight.dtype)


def _split_backward(dy, x, weight, rstd, ds, dx, offset: bool, block: int) -> torch.Tensor:
    n_rows, n_cols = x.shape
    block_r, block_c = 32, 128
    rows_per_prog = 256 if x.is_cuda else 16
    slabs = triton.cdiv(n_rows, rows_per_prog)
    dw_partial = torch.zeros((max(slabs, 1), n_cols), dtype=torch.float32, device=x.device)
    if n_rows:
        _rms_norm_bwd_dx[(n_rows,)](dy, x, weight, rstd, ds if ds is not None else dy, dx, dy.stride(0), x.stride(0),
                                    ds.stride(0) if ds is not None else 0, dx.stride(0), n_cols,
                                    HAS_DRES=ds is not None, OFFSET=offset, BLOCK=block, num_warps=row_warps(block))
        _rms_norm_bwd_dw[(triton.cdiv(n_cols, block_c), slabs)](dy, x, rstd, dw_partial, dy.stride(0), x.stride(0),
                                                                n_rows, n_cols, rows_per_prog, OFFSET=offset,
                                                                BLOCK_R=block_r, BLOCK_C=block_c, num_warps=4)
    return dw_partial.sum(0).to(weight.dtype)


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float, offset: bool,
                bwd: str = BWD_DEFAULT) -> torch.Tensor:
        shape = x.shape
        x2 = _rows(x)
        y, _, rstd = rms_norm_forward(x2, None, weight, eps, offset)
        ctx.save_for_backward(x2, weight, rstd)
        ctx.offset, ctx.bwd = offset, bwd
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(_rows(dy), x2, weight, rstd, None, ctx.offset, ctx.bwd)
        return dx.view(dy.shape), dw, None, None, None


class AddRMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float,
                offset: bool, bwd: str = BWD_DEFAULT) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        y, s, rstd = rms_norm_forward(_rows(x), _rows(residual), weight, eps, offset)
        ctx.save_for_backward(s, weight, rstd)
        ctx.offset, ctx.bwd = offset, bwd
        return y.view(shape), s.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor | None, ds: torch.Tensor | None):
        s, weight, rstd = ctx.saved_tensors
        if dy is None:  # only the sum was used downstream
            dy = torch.zeros_like(s)
        dx, dw = rms_norm_backward(_rows(dy), s, weight, rstd, None if ds is None else _rows(ds), ctx.offset,
                                   ctx.bwd)
        dx = dx.view(dy.shape)
        return dx, dx, dw, None, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: bool = False,
             bwd: str = BWD_DEFAULT) -> torch.Tensor:
    """bwd picks the backward implementation (see rms_norm_backward; the bench times all three)."""
    if torch.compiler.is_compiling():  # one opaque node for torch.compile (library.py; default backward)
        from stellarbyte.kernels.ops import library

        return library.rms_norm(x, weight, eps, offset)
    return RMSNormFunction.apply(x, weight, eps, offset, bwd)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                 offset: bool = False, bwd: str = BWD_DEFAULT) -> tuple[torch.Tensor, torch.Tensor]:
    return AddRMSNormFunction.apply(x, residual, weight, eps, offset, bwd)
