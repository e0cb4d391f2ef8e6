"""Cross-entropy over rows of logits in Triton: one kernel for the loss, the gradient, or both in place.

Math per row x (V logits, label y; float32 inside the kernel; eps = label smoothing, z = z-loss weight)
  lse   = log sum_j exp(x_j)                       online over vocab tiles (running max + rescaled sum)
  loss  = lse - (1 - eps) x_y - eps * mean_j x_j + z * lse^2          (0 where y == ignore_index)
  dx_j  = s * (softmax_j * (1 + 2 z lse) - (1 - eps) [j == y] - eps / V)
where s is the row's share of the upstream gradient (1 / n_valid for "mean", 0 for ignored rows).
The standalone op saves lse (4 bytes a row) and recomputes softmax in the backward, so it never holds a second
(N, V) buffer. The fused linear + CE op (fused_linear_ce.py) runs FORWARD and BACKWARD together and writes
the gradient over the logits chunk in place.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device
from stellarbyte.kernels.reference.cross_entropy import check_reduction

BLOCK_V = 4096


@triton.jit
def _ce_kernel(X, stride_x, LABELS, LOSS, LSE, GSCALE, DX, stride_dx, n_cols, ignore_index, smoothing, z_loss,
               FORWARD: tl.constexpr, BACKWARD: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    cols = tl.arange(0, BLOCK)
    label = tl.load(LABELS + row).to(tl.int64)
    valid = label != ignore_index
    if FORWARD:
        m = tl.full((BLOCK,), -float("inf"), tl.float32)
        s = tl.zeros((BLOCK,), tl.float32)
        sum_x = tl.zeros((BLOCK,), tl.float32)
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, x)
            m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)
            s = s * tl.exp(m - m_safe) + tl.exp(x - m_safe)
            m = m_new
            sum_x += tl.where(mask, x, 0.0)
        row_max = tl.max(m, axis=0)
        lse = row_max + tl.log(tl.sum(s * tl.exp(m - row_max), axis=0))
        x_label = tl.load(x_row + tl.where(valid, label, 0)).to(tl.float32)
        loss = lse - (1.0 - smoothing) * x_label - smoothing * (tl.sum(sum_x, axis=0) / n_cols) + z_loss * lse * lse
        tl.store(LOSS + row, tl.where(valid, loss, 0.0))
        tl.store(LSE + row, lse)
    else:
        lse = tl.load(LSE + row)
    if BACKWARD:
        scale = tl.load(GSCALE + row)  # 0 for ignored rows: their gradient is written as zeros
        dx_row = DX + row * stride_dx
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            x = tl.load(x_row + start + cols, mask=mask, other=0.0).to(tl.float32)
            p = tl.exp(x - lse)
            grad = p * (1.0 + 2.0 * z_loss * lse) - smoothing / n_cols
            grad = tl.where(start + cols == label, grad - (1.0 - smoothing), grad)
            tl.store(dx_row + start + cols, (grad * scale).to(DX.dtype.element_ty), mask=mask)


def check_labels(labels: torch.Tensor, n_cols: int, ignore_index: int) -> None:
    """Out-of-range labels would read past a row; torch raises for them, so do we (one host sync)."""
    bad = ((labels < 0) | (labels >= n_cols)) & (labels != ignore_index)
    if bool(bad.any()):
        raise ValueError(f"cross_entropy: labels must lie in [0, {n_cols}) or equal ignore_index={ignore_index}")


def launch(x: torch.Tensor, labels: torch.Tensor, ignore_index: int, smoothing: float, z_loss: float, *,
           forward: bool, backward: bool, loss: torch.Tensor | None = None, lse: torch.Tensor | None = None,
           gscale: torch.Tensor | None = None, dx: torch.Tensor | None = None) -> None:
    """Run the kernel over rows of x (N, V) with unit column stride; outputs go to the tensors passed."""
    n_rows, n_cols = x.shape
    if n_rows == 0:
        return
    block = min(BLOCK_V, triton.next_power_of_2(n_cols))
    dummy = lse
    _ce_kernel[(n_rows,)](x, x.stride(0), labels, loss if loss is not None else dummy, lse,
                          gscale if gscale is not None else dummy, dx if dx is not None else x,
                          dx.stride(0) if dx is not None else 0, n_cols, ignore_index, smoothing, z_loss,
                          FORWARD=forward, BACKWARD=backward, BLOCK=block, num_warps=16 if block >= 4096 else 4)


def row_scale(valid: torch.Tensor, reduction: str, grad_out: torch.Tensor) -> torch.Tensor:
    """Each row's share of the upstream gradient: (N,) float32, 0 at ignored rows."""
    v = valid.float()
    if reduction == "mean":
        return v * (grad_out.float() / valid.sum())
    if reduction == "sum":
        return v * grad_out.float()
    return v * grad_out.float().reshape(-1)


class CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, smoothing: float,
                z_loss: float, reduction: str) -> torch.Tensor:
        check_device(_ce_kernel, logits, labels)
        x = logits.reshape(-1, logits.shape[-1])
        x = x if x.stride(-1) == 1 else x.contiguous()
        lab = labels.reshape(-1).contiguous()
        check_labels(lab, x.shape[1], ignore_index)
        loss = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
        lse = torch.empty_like(loss)
        launch(x, lab, ignore_index, smoothing, z_loss, forward=True, backward=False, loss=loss, lse=lse)
        ctx.save_for_backward(x, lab, lse)
        ctx.args = (ignore_index, smoothing, z_loss, reduction, logits.shape)
        valid = lab != ignore_index
        if reduction == "none":
            return loss.view(labels.shape)
        return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, lab, lse = ctx.saved_tensors
        ignore_index, smoothing, z_loss, reduction, shape = ctx.args
        dx = torch.empty_like(x)
        gscale = row_scale(lab != ignore_index, reduction, grad_out).contiguous()
        launch(x, lab, ignore_index, smoothing, z_loss, forward=False, backward=True, lse=lse, gscale=gscale,
               dx=dx)
        return dx.view(shape), None, None, None, None, None


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100,
                  label_smoothing: float = 0.0, z_loss: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    check_reduction(reduction)
    if torch.compiler.is_compiling():  # one opaque node for torch.compile (see library.py)
        from stellarbyte.kernels.ops import library

        return library.cross_entropy(logits, labels, ignore_index, label_smoothing, z_loss, reduction)
    return CrossEntropyFunction.apply(logits, labels, ignore_index, label_smoothing, z_loss, reduction)
