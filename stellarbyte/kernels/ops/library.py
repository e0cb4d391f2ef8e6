"""The Triton kernels as torch.library custom ops, so torch.compile keeps them in one graph.

Why: torch.compile (dynamo) cannot see through a Triton launcher that reads device properties, checks devices or
syncs with the host (label checks, `grad_out == 1`); each such call splits the graph or, with fullgraph=True,
fails. A custom op is one opaque node with a fake (shape-only) implementation for tracing and a registered
autograd formula, so the compiled graph calls our kernel exactly where the eager model does and inductor fuses
everything around it. References: PyTorch's "Python custom operators" tutorial (torch.library.custom_op,
register_fake, register_autograd); Liger-Kernel and torchtitan wrap their kernels the same way.

Contract
  * Each Triton op's public function (ops/rmsnorm.py rms_norm, ops/gated.py silu_mul / gelu_mul, ops/rope.py
    apply_rope, ops/cross_entropy.py cross_entropy, ops/fused_linear_ce.py fused_linear_cross_entropy) calls
    the op below while torch.compile traces it, and its autograd.Function in eager mode: same kernels, same
    numbers (tests/kernels/test_kernel_custom_ops.py pins both paths against the torch references).
  * No op here syncs with the host: label range checks become a device assert on CUDA (torch._assert_async),
    and the fused linear + CE backward always multiplies by the upstream gradient.
  * Ops take 2-D row views where the kernel wants rows; the wrappers reshape outside, so no op returns a view
    of an input (custom ops may not alias their inputs).
"""

from __future__ import annotations

import torch
from torch.library import custom_op, register_autograd, register_fake

from stellarbyte.kernels.ops import cross_entropy as _ce
from stellarbyte.kernels.ops import fused_linear_ce as _flce
from stellarbyte.kernels.ops import gated as _gated
from stellarbyte.kernels.ops import rmsnorm as _rms
from stellarbyte.kernels.ops import rope as _rope

# ---- RMSNorm ------------------------------------------------------------------------------------------


@custom_op("stellarbyte::rms_norm_fwd", mutates_args=())
def rms_norm_fwd(x: torch.Tensor, weight: torch.Tensor, eps: float,
                 offset: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, D) -> y (N, D), rstd (N,) float32."""
    y, _, rstd = _rms.rms_norm_forward(x, None, weight, eps, offset)
    return y, rstd


@register_fake("stellarbyte::rms_norm_fwd")
def _(x, weight, eps, offset):
    dtype = x.dtype if offset else torch.result_type(weight, x)
    return x.new_empty(x.shape, dtype=dtype), x.new_empty(x.shape[0], dtype=torch.float32)


@custom_op("stellarbyte::rms_norm_bwd", mutates_args=())
def rms_norm_bwd(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor,
                 offset: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """dy, x (N, D) -> dx (N, D), dw (D,)."""
    return _rms.rms_norm_backward(dy.contiguous(), x, weight, rstd, None, offset)


@register_fake("stellarbyte::rms_norm_bwd")
def _(dy, x, weight, rstd, offset):
    return torch.empty_like(x), torch.empty_like(weight)


def _rms_setup(ctx, inputs, output):
    x, weight, _, offset = inputs
    ctx.save_for_backward(x, weight, output[1])
    ctx.offset = offset


def _rms_backward(ctx, dy, _drstd):
    x, weight, rstd = ctx.saved_tensors
    dx, dw = rms_norm_bwd(dy, x, weight, rstd, ctx.offset)
    return dx, dw, None, None


register_autograd("stellarbyte::rms_norm_fwd", _rms_backward, setup_context=_rms_setup)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, offset: bool) -> torch.Tensor:
    """(..., D) in and out, through the custom op on (N, D) rows."""
    y, _ = rms_norm_fwd(x.reshape(-1, x.shape[-1]).contiguous(), weight, eps, offset)
    return y.view(x.shape)


# ---- gated activation (SwiGLU / GeGLU) ------------------------------------------------------------------


@custom_op("stellarbyte::gated_fwd", mutates_args=())
def gated_fwd(gate: torch.Tensor, up: torch.Tensor, act: int) -> torch.Tensor:
    y = torch.empty_like(gate, memory_format=torch.contiguous_format)
    n = gate.numel()
    if n:
        _gated._gated_fwd[(_gated.triton.cdiv(n, _gated.BLOCK),)](gate, up, y, n, ACT=act, BLOCK=_gated.BLOCK,
                                                                  num_warps=8)
    return y


@register_fake("stellarbyte::gated_fwd")
def _(gate, up, act):
    return torch.empty_like(gate, memory_format=torch.contiguous_format)


@custom_op("stellarbyte::gated_bwd", mutates_args=())
def gated_bwd(dy: torch.Tensor, gate: torch.Tensor, up: torch.Tensor,
              act: int) -> tuple[torch.Tensor, torch.Tensor]:
    dy = dy.contiguous()
    dg, du = torch.empty_like(gate), torch.empty_like(up)
    n = gate.numel()
    if n:
        _gated._gated_bwd[(_gated.triton.cdiv(n, _gated.BLOCK),)](dy, gate, up, dg, du, n, ACT=act,
                                                                  BLOCK=_gated.BLOCK, num_warps=8)
    return dg, du


@register_fake("stellarbyte::gated_bwd")
def _(dy, gate, up, act):
    return torch.empty_like(gate), torch.empty_like(up)


def _gated_setup(ctx, inputs, output):
    gate, up, act = inputs
    ctx.save_for_backward(gate, up)
    ctx.act = act


def _gated_backward(ctx, dy):
    gate, up = ctx.saved_tensors
    dg, du = gated_bwd(dy, gate, up, ctx.act)
    return dg, du, None


register_autograd("stellarbyte::gated_fwd", _gated_backward, setup_context=_gated_setup)


def gated(gate: torch.Tensor, up: torch.Tensor, act: int) -> torch.Tensor:
    return gated_fwd(gate.contiguous(), up.contiguous(), act)


# ---- RoPE ----------------------------------------------------------------------------------------------


@custom_op("stellarbyte::rope", mutates_args=())
def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
         backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q (B, Hq, T, D) and k (B, Hkv, T, D) (backward=True: by the transposed rotation)."""
    return _rope._launch(q, k, cos, sin, backward=backward)


@register_fake("stellarbyte::rope")
def _(q, k, cos, sin, backward):
    return torch.empty_like(q), torch.empty_like(k)


def _rope_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[2], inputs[3])


def _rope_backward(ctx, dq, dk):
    cos, sin = ctx.saved_tensors
    dq_in, dk_in = rope(dq, dk, cos, sin, True)
    return dq_in, dk_in, None, None, None


register_autograd("stellarbyte::rope", _rope_backward, setup_context=_rope_setup)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
               sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return rope(q, k, cos, sin, False)


# ---- cross-entropy ------------------------------------------------------------------------------------


def _check_labels_async(labels: torch.Tensor, n_cols: int, ignore_index: int) -> None:
    """The range check without a host sync on CUDA (a device assert); the usual ValueError elsewhere."""
    if labels.is_cuda:
        bad = ((labels < 0) | (labels >= n_cols)) & (labels != ignore_index)
        torch._assert_async(~bad.any(), "cross_entropy: labels must lie in [0, V) or equal ignore_index")
    else:
        _ce.check_labels(labels, n_cols, ignore_index)


def _reduce(loss: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()


@custom_op("stellarbyte::cross_entropy_fwd", mutates_args=())
def cross_entropy_fwd(x: torch.Tensor, labels: torch.Tensor, ignore_index: int, smoothing: float, z_loss: float,
                      reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, V), labels (N,) -> loss (reduced, or (N,) for "none") float32, lse (N,) float32."""
    _check_labels_async(labels, x.shape[1], ignore_index)
    loss = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    lse = torch.empty_like(loss)
    _ce.launch(x, labels, ignore_index, smoothing, z_loss, forward=True, backward=False, loss=loss, lse=lse)
    return _reduce(loss, labels != ignore_index, reduction), lse


@register_fake("stellarbyte::cross_entropy_fwd")
def _(x, labels, ignore_index, smoothing, z_loss, reduction):
    n = x.shape[0]
    loss = x.new_empty((n,) if reduction == "none" else (), dtype=torch.float32)
    return loss, x.new_empty(n, dtype=torch.float32)


@custom_op("stellarbyte::cross_entropy_bwd", mutates_args=())
def cross_entropy_bwd(grad_out: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, lse: torch.Tensor,
                      ignore_index: int, smoothing: float, z_loss: float, reduction: str) -> torch.Tensor:
    dx = torch.empty_like(x)
    gscale = _ce.row_scale(labels != ignore_index, reduction, grad_out).contiguous()
    _ce.launch(x, labels, ignore_index, smoothing, z_loss, forward=False, backward=True, lse=lse, gscale=gscale,
               dx=dx)
    return dx


@register_fake("stellarbyte::cross_entropy_bwd")
def _(grad_out, x, labels, lse, ignore_index, smoothing, z_loss, reduction):
    return torch.empty_like(x)


def _ce_setup(ctx, inputs, output):
    x, labels, *args = inputs
    ctx.save_for_backward(x, labels, output[1])
    ctx.args = args


def _ce_backward(ctx, grad_loss, _dlse):
    x, labels, lse = ctx.saved_tensors
    return cross_entropy_bwd(grad_loss, x, labels, lse, *ctx.args), None, None, None, None, None


register_autograd("stellarbyte::cross_entropy_fwd", _ce_backward, setup_context=_ce_setup)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, smoothing: float, z_loss: float,
                  reduction: str) -> torch.Tensor:
    x = logits.reshape(-1, logits.shape[-1]).contiguous()
    loss, _ = cross_entropy_fwd(x, labels.reshape(-1).contiguous(), ignore_index, smoothing, z_loss, reduction)
    return loss.view(labels.shape) if reduction == "none" else loss


# ---- fused linear + cross-entropy ---------------------------------------------------------------------


@custom_op("stellarbyte::fused_linear_ce", mutates_args=())
def fused_linear_ce(h: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, bias: torch.Tensor | None,
                    ignore_index: int, smoothing: float, z_loss: float, reduction: str, chunk: int,
                    need_h: bool, need_w: bool,
                    need_b: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """h (N, H), weight (V, H) -> (loss float32 scalar, dL/dh (N, H), dL/dW (V, H), dL/db (V,) float32) for an
    upstream gradient of 1; a gradient not asked for comes back as an empty (0,) tensor."""
    _check_labels_async(labels, weight.shape[0], ignore_index)
    loss, gh, gw, gb = _flce.forward_and_grads(h, weight, labels, bias, ignore_index, smoothing, z_loss,
                                               reduction, chunk, need_h, need_w, need_b)
    # outputs of a custom op may not alias each other: one fresh empty tensor per missing gradient
    return (loss, gh if gh is not None else h.new_empty(0), gw if gw is not None else h.new_empty(0),
            gb if gb is not None else h.new_empty(0))


@register_fake("stellarbyte::fused_linear_ce")
def _(h, weight, labels, bias, ignore_index, smoothing, z_loss, reduction, chunk, need_h, need_w, need_b):
    return (h.new_empty((), dtype=torch.float32), torch.empty_like(h) if need_h else h.new_empty(0),
            torch.empty_like(weight) if need_w else h.new_empty(0),
            h.new_empty(weight.shape[0], dtype=torch.float32) if need_b else h.new_empty(0))


def _flce_setup(ctx, inputs, output):
    ctx.save_for_backward(*output[1:])
    ctx.need = inputs[9:12]
    ctx.bias_dtype = None if inputs[3] is None else inputs[3].dtype


def _flce_backward(ctx, grad_loss, *_unused):
    gh, gw, gb = ctx.saved_tensors
    need_h, need_w, need_b = ctx.need
    # the gradients were computed for an upstream gradient of 1; scaling on the device avoids a host sync
    dh = gh * grad_loss.to(gh.dtype) if need_h else None
    dw = gw * grad_loss.to(gw.dtype) if need_w else None
    db = (gb * grad_loss).to(ctx.bias_dtype) if need_b else None
    return dh, dw, None, db, None, None, None, None, None, None, None, None


register_autograd("stellarbyte::fused_linear_ce", _flce_backward, setup_context=_flce_setup)


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                               bias: torch.Tensor | None, ignore_index: int, smoothing: float, z_loss: float,
                               reduction: str, chunk_size: int | None) -> torch.Tensor:
    h = hidden.reshape(-1, hidden.shape[-1]).contiguous()  # (N, H)
    lab = labels.reshape(-1).contiguous()
    chunk = chunk_size or _flce.default_chunk_size(h.shape[0], h.shape[1], weight.shape[0])
    need_b = bias is not None and bias.requires_grad
    loss, gh, _, _ = fused_linear_ce(h, weight, lab, bias, ignore_index, smoothing, z_loss, reduction, chunk,
                                     hidden.requires_grad, weight.requires_grad, need_b)
    del gh  # saved inside the op's autograd context; the returned copy is not needed here
    return loss
