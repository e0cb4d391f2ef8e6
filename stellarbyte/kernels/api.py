"""The public kernel functions: each validates its arguments once and dispatches through the registry.

Every function takes `backend=None | "torch" | "triton" | "auto"` (see registry.py). Both backends compute the
same function; the torch one is the reference the tests compare against.
"""

from __future__ import annotations

import torch

from stellarbyte.kernels.registry import dispatch, register

_R = "stellarbyte.kernels.reference"
_T = "stellarbyte.kernels.ops"
# Under torch.compile "auto" keeps the torch reference of the elementwise ops: inductor fuses them with the
# residual adds, casts and views around them, which our opaque kernels cannot join. Measured on the H100 (whole
# training steps, docs/training_performance.md): llama-1b 253.2 ms (torch ops + Triton fused linear CE) vs 264.3
# (all Triton), gpt2-124m-like 67.8 vs 75.3. The fused linear + CE keeps Triton: the same time, 4-19% less memory.
_ELEMENTWISE = dict(auto_when_compiling=False)
register("rms_norm", f"{_R}.norms:rms_norm", f"{_T}.rmsnorm:rms_norm", **_ELEMENTWISE)
register("add_rms_norm", f"{_R}.norms:add_rms_norm", f"{_T}.rmsnorm:add_rms_norm", **_ELEMENTWISE)
# torch's fused LayerNorm backward beat ours on the H100 (0.24 vs 0.67 ms fwd+bwd at 8192x4096): auto keeps torch
register("layer_norm", f"{_R}.norms:layer_norm", f"{_T}.layernorm:layer_norm", auto_prefers_triton=False)
register("apply_rope", f"{_R}.rope:apply_rope", f"{_T}.rope:apply_rope", **_ELEMENTWISE)
register("silu_mul", f"{_R}.activations:silu_mul", f"{_T}.gated:silu_mul", **_ELEMENTWISE)
register("gelu_mul", f"{_R}.activations:gelu_mul", f"{_T}.gated:gelu_mul", **_ELEMENTWISE)
register("softmax", f"{_R}.softmax:softmax", f"{_T}.softmax:softmax")
register("cross_entropy", f"{_R}.cross_entropy:cross_entropy", f"{_T}.cross_entropy:cross_entropy")
register("fused_linear_cross_entropy", f"{_R}.cross_entropy:fused_linear_cross_entropy",
         f"{_T}.fused_linear_ce:fused_linear_cross_entropy")
# cuBLAS beats the teaching matmul on the sizes we measured, so "auto" keeps torch; backend="triton" forces it.
register("matmul", f"{_R}.matmul:matmul", f"{_T}.matmul:matmul", auto_prefers_triton=False)
# SDPA's flash backend beat our full causal attention on the H100 (forward 0.92 vs 1.28 ms, fwd+bwd 3.87 vs
# 6.05 ms at 4x32x4096x128), so "auto" keeps torch; backend="triton" forces ours (3.5x faster with a window).
register("attention", f"{_R}.attention:attention", f"{_T}.attention:attention", auto_prefers_triton=False)


def _last_dim(name: str, x: torch.Tensor, *params: torch.Tensor | None) -> None:
    for p in params:
        if p is not None and p.shape != (x.shape[-1],):
            raise ValueError(f"{name}: parameter of shape {tuple(p.shape)} does not match the last dim of x "
                             f"({x.shape[-1]}); pass a 1-D tensor of size {x.shape[-1]}")


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: bool = False, *,
             backend: str | None = None) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dim; offset=True multiplies by (1 + weight) (Gemma)."""
    _last_dim("rms_norm", x, weight)
    return dispatch("rms_norm", backend, x)(x, weight, eps, offset)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                 offset: bool = False, *, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rms_norm(x + residual), x + residual) in one pass."""
    if x.shape != residual.shape:
        raise ValueError(f"add_rms_norm: x {tuple(x.shape)} and residual {tuple(residual.shape)} differ in shape")
    _last_dim("add_rms_norm", x, weight)
    return dispatch("add_rms_norm", backend, x)(x, residual, weight, eps, offset)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float = 1e-5, *,
               backend: str | None = None) -> torch.Tensor:
    _last_dim("layer_norm", x, weight, bias)
    return dispatch("layer_norm", backend, x)(x, weight, bias, eps)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *,
               backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first R dims of q (B, Hq, T, D) and k (B, Hkv, T, D) by cos/sin (B or 1, T, R)."""
    if q.dim() != 4 or k.dim() != 4 or cos.dim() != 3 or cos.shape != sin.shape:
        raise ValueError(f"apply_rope wants q (B, Hq, T, D), k (B, Hkv, T, D), cos/sin (B, T, R); got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(cos.shape)}, {tuple(sin.shape)}")
    b, _, t, d = q.shape
    r = cos.shape[-1]
    if k.shape[0] != b or k.shape[2:] != q.shape[2:] or cos.shape[1] != t or cos.shape[0] not in (1, b):
        raise ValueError(f"apply_rope: shapes disagree: q {tuple(q.shape)}, k {tuple(k.shape)}, cos "
                         f"{tuple(cos.shape)} (k needs q's B, T, D; cos needs B or 1 rows and T positions)")
    if r % 2 or r > d or r == 0:
        raise ValueError(f"apply_rope: rotary dims R={r} must be even, positive and <= head_dim {d}")
    return dispatch("apply_rope", backend, q, k)(q, k, cos, sin)


def _same_shape(name: str, gate: torch.Tensor, up: torch.Tensor) -> None:
    if gate.shape != up.shape:
        raise ValueError(f"{name}: gate {tuple(gate.shape)} and up {tuple(up.shape)} must have the same shape")


def silu_mul(gate: torch.Tensor, up: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """silu(gate) * up (SwiGLU)."""
    _same_shape("silu_mul", gate, up)
    return dispatch("silu_mul", backend, gate)(gate, up)


def gelu_mul(gate: torch.Tensor, up: torch.Tensor, approximate: str = "tanh", *,
             backend: str | None = None) -> torch.Tensor:
    """gelu(gate) * up (GeGLU); approximate is "tanh" or "none" as in torch.nn.functional.gelu."""
    _same_shape("gelu_mul", gate, up)
    if approximate not in ("tanh", "none"):
        raise ValueError(f"gelu_mul: approximate must be 'tanh' or 'none', got {approximate!r}")
    return dispatch("gelu_mul", backend, gate)(gate, up, approximate)


def softmax(x: torch.Tensor, dim: int = -1, *, backend: str | None = None) -> torch.Tensor:
    if not -x.dim() <= dim < max(x.dim(), 1):
        raise ValueError(f"softmax: dim {dim} out of range for a {x.dim()}-D tensor")
    return dispatch("softmax", backend, x)(x, dim)


def _check_ce(logits_rows: int, labels: torch.Tensor, label_smoothing: float, z_loss: float) -> None:
    if labels.numel() != logits_rows:
        raise ValueError(f"cross_entropy: {labels.numel()} labels for {logits_rows} rows of logits; "
                         "pass one label per row (flatten (B, T) with the logits' leading dims)")
    if labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"cross_entropy: labels must be int64/int32 class ids, got {labels.dtype}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if z_loss < 0:
        raise ValueError(f"z_loss must be >= 0, got {z_loss}")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100,
                  label_smoothing: float = 0.0, z_loss: float = 0.0, reduction: str = "mean", *,
                  backend: str | None = None) -> torch.Tensor:
    """Cross-entropy of logits (..., V) against labels (...), float32 result (see reference/cross_entropy.py)."""
    _check_ce(logits.numel() // max(logits.shape[-1], 1), labels, label_smoothing, z_loss)
    fn = dispatch("cross_entropy", backend, logits)
    return fn(logits, labels, ignore_index, label_smoothing, z_loss, reduction)


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                               bias: torch.Tensor | None = None, ignore_index: int = -100,
                               label_smoothing: float = 0.0, z_loss: float = 0.0, chunk_size: int | None = None,
                               reduction: str = "mean", *, backend: str | None = None) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T + bias, labels) without materialising the (N, V) logits (Triton path:
    chunks of `chunk_size` tokens; None picks one so a chunk of logits is about twice the hidden states, 512 tokens
    for 8192 x 4096 -> 128256, which measured faster than the unfused op at under 10% of its extra memory)."""
    if hidden.shape[-1] != weight.shape[-1] or weight.dim() != 2:
        raise ValueError(f"fused_linear_cross_entropy: hidden (..., H) {tuple(hidden.shape)} and weight (V, H) "
                         f"{tuple(weight.shape)} disagree")
    if reduction == "none":
        raise ValueError("fused_linear_cross_entropy supports reduction 'mean' or 'sum'; use cross_entropy for "
                         "per-token losses")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    _check_ce(hidden.numel() // hidden.shape[-1], labels, label_smoothing, z_loss)
    fn = dispatch("fused_linear_cross_entropy", backend, hidden)
    return fn(hidden, weight, labels, bias, ignore_index, label_smoothing, z_loss, reduction, chunk_size)


def matmul(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """a (..., M, K) @ b (K, N). "auto" uses torch (cuBLAS); backend="triton" runs the Triton kernel."""
    if a.dim() < 2 or b.dim() != 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul wants a (..., M, K) and b (K, N); got {tuple(a.shape)} and {tuple(b.shape)}")
    return dispatch("matmul", backend, a, b)(a, b)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              sliding_window: int | None = None, scale: float | None = None, *,
              backend: str | None = None) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v with GQA; q (B, Hq, T, D), k/v (B, Hkv, S, D) -> (B, Hq, T, D)."""
    from stellarbyte.kernels.reference.attention import check_attention_args

    check_attention_args(q, k, v, causal, sliding_window)
    return dispatch("attention", backend, q, k, v)(q, k, v, causal, sliding_window, scale)
