"""Fused linear + cross-entropy: loss(hidden @ W^T + b, labels) without the full (N, V) logits.

Tokens go through in chunks of C rows. For each chunk:
  logits_c = h_c W^T + b            (C, V), cuBLAS, in the activations' dtype
  the Triton CE kernel computes the chunk's losses and overwrites logits_c with dL/dlogits_c in place
  dh_c  = dlogits_c W               (C, H)   written into the full dh
  dW   += dlogits_c^T h_c           (V, H)   accumulated with addmm (float32 inside cuBLAS)
  db   += sum_rows dlogits_c
so peak extra memory is one chunk of logits plus the gradients themselves, and the backward pass only scales
the stored gradients by the upstream gradient (Wijmans et al., 2024 "Cut Your Losses" and Liger-Kernel's
FusedLinearCrossEntropy take the same chunked route). The per-row gradient share (1 / n_valid for "mean")
is known before the first chunk, so no second sweep is needed.
Default chunk: twice the power of two near N / ceil(V / H), so a chunk of logits is about twice the size of
the hidden states (at least 256 rows, at most N). Measured on an H100 at N=8192, H=4096, V=128256
(docs/benchmarks.md): chunk 256 -> 65.0 ms, 1.18 GB extra; 512 -> 46.9 ms, 1.25 GB; 1024 -> 42.4 ms, 1.38 GB,
against 51.7 ms and 12.61 GB unfused. Each chunk reads and writes the whole dW once (addmm_), so small chunks
pay that traffic many times; 512 is the largest that keeps extra memory under 10% of the unfused version.
"""

from __future__ import annotations

import math

import torch
import triton

from stellarbyte.kernels.ops._common import check_device
from stellarbyte.kernels.ops.cross_entropy import _ce_kernel, check_labels, launch, row_scale
from stellarbyte.kernels.reference.cross_entropy import check_reduction


def default_chunk_size(n_rows: int, hidden: int, vocab: int) -> int:
    chunk = 2 * triton.next_power_of_2(max(1, math.ceil(n_rows / math.ceil(vocab / hidden))))
    return max(1, min(max(chunk, 256), n_rows))


def forward_and_grads(h: torch.Tensor, weight: torch.Tensor, lab: torch.Tensor, bias: torch.Tensor | None,
                      ignore_index: int, smoothing: float, z_loss: float, reduction: str, chunk: int, need_h: bool,
                      need_w: bool, need_b: bool):
    """The chunk loop on h (N, H), labels (N,): (reduced loss, dh, dW, db) for an upstream gradient of 1
    (None for a gradient not asked for). Shared by the autograd.Function below and the custom op (library.py)."""
    n_rows, vocab = h.shape[0], weight.shape[0]
    valid = lab != ignore_index
    gscale = row_scale(valid, reduction, torch.ones((), device=h.device)).contiguous()  # (N,)
    grad_h = torch.empty_like(h) if need_h else None
    grad_w = torch.zeros_like(weight) if need_w else None
    grad_b = torch.zeros(vocab, dtype=torch.float32, device=h.device) if need_b else None
    loss = torch.empty(n_rows, dtype=torch.float32, device=h.device)
    lse = torch.empty_like(loss)
    with torch.autocast(h.device.type, enabled=False):  # the caller picked the dtypes; keep them
        for start in range(0, n_rows, chunk):
            end = min(start + chunk, n_rows)
            h_c = h[start:end]
            logits = h_c @ weight.t() if bias is None else torch.addmm(bias, h_c, weight.t())  # (C, V)
            launch(logits, lab[start:end], ignore_index, smoothing, z_loss, forward=True, backward=True,
                   loss=loss[start:end], lse=lse[start:end], gscale=gscale[start:end], dx=logits)
            if need_h:
                torch.mm(logits, weight, out=grad_h[start:end])
            if need_w:
                grad_w.addmm_(logits.t(), h_c)
            if need_b:
                grad_b += logits.float().sum(0)
            del logits
    total = loss.sum() / valid.sum() if reduction == "mean" else loss.sum()
    return total, grad_h, grad_w, grad_b


class FusedLinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, bias: torch.Tensor | None,
                ignore_index: int, smoothing: float, z_loss: float, reduction: str,
                chunk_size: int | None) -> torch.Tensor:
        check_device(_ce_kernel, hidden, weight, labels, bias)
        h = hidden.reshape(-1, hidden.shape[-1]).contiguous()  # (N, H)
        lab = labels.reshape(-1).contiguous()
        n_rows, vocab = h.shape[0], weight.shape[0]
        check_labels(lab, vocab, ignore_index)
        chunk = chunk_size or default_chunk_size(n_rows, h.shape[1], vocab)
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[3]
        total, grad_h, grad_w, grad_b = forward_and_grads(h, weight, lab, bias, ignore_index, smoothing, z_loss,
                                                          reduction, chunk, need_h, need_w, need_b)
        ctx.save_for_backward(*(t if t is not None else torch.empty(0) for t in (grad_h, grad_w, grad_b)))
        ctx.flags = (need_h, need_w, need_b, hidden.shape, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        need_h, need_w, need_b, shape, bias_dtype = ctx.flags
        scale = None if bool(grad_out == 1.0) else grad_out  # the usual loss.backward() needs no extra pass
        dh = dw = db = None
        if need_h:
            dh = (grad_h if scale is None else grad_h * scale.to(grad_h.dtype)).view(shape)
        if need_w:
            dw = grad_w if scale is None else grad_w * scale.to(grad_w.dtype)
        if need_b:
            db = (grad_b if scale is None else grad_b * scale).to(bias_dtype)
        return dh, dw, None, db, None, None, None, None, None


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                               bias: torch.Tensor | None = None, ignore_index: int = -100,
                               label_smoothing: float = 0.0, z_loss: float = 0.0, reduction: str = "mean",
                               chunk_size: int | None = None) -> torch.Tensor:
    check_reduction(reduction)
    if torch.compiler.is_compiling():  # one opaque node for torch.compile (see library.py)
        from stellarbyte.kernels.ops import library

        return library.fused_linear_cross_entropy(hidden, weight, labels, bias, ignore_index, label_smoothing,
                                                  z_loss, reduction, chunk_size)
    return FusedLinearCrossEntropyFunction.apply(hidden, weight, labels, bias, ignore_index, label_smoothing,
                                                 z_loss, reduction, chunk_size)
