"""SwiGLU / GeGLU activation-multiply in Triton: y = act(gate) * up, forward and backward.

Math (float32 inside the kernel; Shazeer, 2020)
  silu(g) = g * sigmoid(g)                  silu'(g) = sig * (1 + g * (1 - sig))
  gelu_tanh(g) = 0.5 g (1 + tanh(u)), u = sqrt(2/pi) (g + 0.044715 g^3)
                gelu_tanh'(g) = 0.5 (1 + t) + 0.5 g (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 g^2)
  gelu(g) = 0.5 g (1 + erf(g / sqrt 2))    gelu'(g) = 0.5 (1 + erf(g / sqrt 2)) + g exp(-g^2 / 2) / sqrt(2 pi)
  dgate = dy * up * act'(gate),  dup = dy * act(gate)
One flat 1-D grid over the elements; the backward recomputes act(gate) instead of saving it (a read is cheaper
than a write plus a read).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device

BLOCK = 2048
SQRT_2_OVER_PI = tl.constexpr(0.7978845608028654)  # constexpr: @triton.jit may only read constexpr globals
INV_SQRT_2 = tl.constexpr(0.7071067811865476)
INV_SQRT_2PI = tl.constexpr(0.3989422804014327)

ACTS = {"silu": 0, "gelu_tanh": 1, "gelu": 2}


@triton.jit
def _act_and_grad(g, ACT: tl.constexpr):
    """act(g) and act'(g) in float32."""
    if ACT == 0:
        sig = tl.sigmoid(g)
        a = g * sig
        da = sig * (1.0 + g * (1.0 - sig))
    elif ACT == 1:
        u = SQRT_2_OVER_PI * (g + 0.044715 * g * g * g)
        t = 2.0 * tl.sigmoid(2.0 * u) - 1.0  # tanh(u)
        a = 0.5 * g * (1.0 + t)
        da = 0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * g * g)
    else:
        e = tl.math.erf(g * INV_SQRT_2)
        a = 0.5 * g * (1.0 + e)
        da = 0.5 * (1.0 + e) + g * tl.exp(-0.5 * g * g) * INV_SQRT_2PI
    return a, da


@triton.jit
def _gated_fwd(G, U, Y, n, ACT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    a, _ = _act_and_grad(g, ACT)
    tl.store(Y + offs, (a * u).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _gated_bwd(DY, G, U, DG, DU, n, ACT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dy = tl.load(DY + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    a, da = _act_and_grad(g, ACT)
    tl.store(DG + offs, (dy * u * da).to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offs, (dy * a).to(DU.dtype.element_ty), mask=mask)


class GatedActFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor, act: int) -> torch.Tensor:
        check_device(_gated_fwd, gate, up)
        gate, up = gate.contiguous(), up.contiguous()
        y = torch.empty_like(gate, memory_format=torch.contiguous_format)
        n = gate.numel()
        if n:
            _gated_fwd[(triton.cdiv(n, BLOCK),)](gate, up, y, n, ACT=act, BLOCK=BLOCK, num_warps=8)
        ctx.save_for_backward(gate, up)
        ctx.act = act
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        gate, up = ctx.saved_tensors
        dy = dy.contiguous()
        dg, du = torch.empty_like(gate), torch.empty_like(up)
        n = gate.numel()
        if n:
            _gated_bwd[(triton.cdiv(n, BLOCK),)](dy, gate, up, dg, du, n, ACT=ctx.act, BLOCK=BLOCK, num_warps=8)
        return dg, du, None


def _gated(gate: torch.Tensor, up: torch.Tensor, act: int) -> torch.Tensor:
    if torch.compiler.is_compiling():  # one opaque node for torch.compile (see library.py)
        from stellarbyte.kernels.ops import library

        return library.gated(gate, up, act)
    return GatedActFunction.apply(gate, up, act)


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return _gated(gate, up, ACTS["silu"])


def gelu_mul(gate: torch.Tensor, up: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    return _gated(gate, up, ACTS["gelu_tanh" if approximate == "tanh" else "gelu"])
