"""The kernel benchmark's cases: for each op and size, how to build inputs, the competing implementations
(torch eager reference, torch.compile of it, Liger-Kernel, ours) and the minimum work a pass must do.

Byte counts are the minimum a separate forward and backward kernel must move: each input read once and each
output written once per pass (the backward re-reads what it needs from the forward's inputs). FLOP counts are
the matrix products (2 per multiply-add; causal attention counts the visible half).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import stellarbyte.kernels as K
from stellarbyte.kernels.reference import activations, attention, cross_entropy, matmul, norms, rope, softmax


@dataclass
class Case:
    op: str
    size: str
    make: Callable[[str, torch.dtype], list]  # device, dtype -> inputs (tensors require grad where differentiable)
    providers: dict[str, Callable]
    fwd_bytes: float = 0.0
    bwd_bytes: float = 0.0
    fwd_flops: float = 0.0
    bwd_flops: float = 0.0
    issue_size: bool = False  # the size the issue's goals name
    memory: bool = False  # also measure extra peak memory
    no_grad: tuple[int, ...] = field(default_factory=tuple)


def _liger(name: str) -> Callable | None:
    """A Liger-Kernel entry point, or None when liger_kernel is not importable."""
    try:
        if name == "rms_norm":
            from liger_kernel.ops.rms_norm import LigerRMSNormFunction

            return lambda x, w, eps=1e-6, offset=False: LigerRMSNormFunction.apply(x, w, eps, 0.0, "llama", False)
        if name == "add_rms_norm":
            from liger_kernel.ops.fused_add_rms_norm import LigerFusedAddRMSNormFunction

            return lambda x, r, w, eps=1e-6, offset=False: LigerFusedAddRMSNormFunction.apply(x, r, w, eps)
        if name == "layer_norm":
            from liger_kernel.ops.layer_norm import LigerLayerNormFunction

            return lambda x, w, b, eps=1e-5: LigerLayerNormFunction.apply(x, w, b, eps)
        if name == "silu_mul":
            from liger_kernel.ops.swiglu import LigerSiLUMulFunction

            return lambda g, u: LigerSiLUMulFunction.apply(g, u)
        if name == "gelu_mul":
            from liger_kernel.ops.geglu import LigerGELUMulFunction

            return lambda g, u, approximate="tanh": LigerGELUMulFunction.apply(g, u)
        if name == "apply_rope":
            from liger_kernel.ops.rope import LigerRopeFunction

            return lambda q, k, cos, sin: LigerRopeFunction.apply(q, k, cos, sin)
        if name == "softmax":
            from liger_kernel.ops.softmax import LigerSoftmaxFunction

            return lambda x, dim=-1: LigerSoftmaxFunction.apply(x)
        if name == "cross_entropy":
            from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction

            def ce(x, y):
                out = LigerCrossEntropyFunction.apply(x, y, None, -100, 0.0, 0.0, "mean")
                return out[0] if isinstance(out, tuple) else out

            return ce
        if name == "fused_linear_cross_entropy":
            from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction

            def flce(h, w, y):
                out = LigerFusedLinearCrossEntropyFunction.apply(h, w, y)
                return out[0] if isinstance(out, tuple) else out

            return flce
    except Exception:  # noqa: BLE001 -- any import failure just drops the column
        return None
    return None


def _providers(op: str, reference: Callable, compile_ok: bool = True) -> dict[str, Callable]:
    ours = getattr(K, op)
    out: dict[str, Callable] = {"torch": reference}
    if compile_ok:
        out["compile"] = torch.compile(reference, dynamic=False)
    liger = _liger(op)
    if liger is not None:
        out["liger"] = liger
    out["triton"] = lambda *a: ours(*a, backend="triton")
    return out


def _t(shape, device, dtype, scale=1.0):
    return (torch.randn(shape, device=device, dtype=torch.float32) * scale).to(dtype).requires_grad_()


def _norm_variant(op: str, bwd: str) -> Callable:
    from stellarbyte.kernels.ops import rmsnorm

    fn = getattr(rmsnorm, op)
    return lambda *a: fn(*a, bwd=bwd)


def _ln_split(x, w, b, eps=1e-5):
    from stellarbyte.kernels.ops import layernorm

    return layernorm.layer_norm(x, w, b, eps, bwd="split")


def norm_cases(rows: int, hidden: int, issue: bool, e: int) -> list[Case]:
    n = rows * hidden * e
    cases = [
        Case("rms_norm", f"{rows}x{hidden}", lambda d, t: [_t((rows, hidden), d, t), _t(hidden, d, t)],
             _providers("rms_norm", norms.rms_norm), 2 * n, 3 * n, issue_size=issue),
        Case("add_rms_norm", f"{rows}x{hidden}",
             lambda d, t: [_t((rows, hidden), d, t), _t((rows, hidden), d, t), _t(hidden, d, t)],
             _providers("add_rms_norm", norms.add_rms_norm), 4 * n, 4 * n, issue_size=issue),
        Case("layer_norm", f"{rows}x{hidden}",
             lambda d, t: [_t((rows, hidden), d, t), _t(hidden, d, t), _t(hidden, d, t)],
             _providers("layer_norm", norms.layer_norm), 2 * n, 3 * n),
    ]
    for case in cases[:2]:  # the other backward implementations, for comparison
        case.providers["triton_loop"] = _norm_variant(case.op, "loop")
        case.providers["triton_split"] = _norm_variant(case.op, "split")
    cases[2].providers["triton_split"] = _ln_split
    return cases


def gated_cases(rows: int, ffn: int, issue: bool, e: int) -> list[Case]:
    n = rows * ffn * e
    return [
        Case("silu_mul", f"{rows}x{ffn}", lambda d, t: [_t((rows, ffn), d, t), _t((rows, ffn), d, t)],
             _providers("silu_mul", activations.silu_mul), 3 * n, 5 * n, issue_size=issue),
        Case("gelu_mul", f"{rows}x{ffn}", lambda d, t: [_t((rows, ffn), d, t), _t((rows, ffn), d, t)],
             _providers("gelu_mul", activations.gelu_mul), 3 * n, 5 * n),
    ]


def rope_case(b: int, t_len: int, hq: int, hk: int, d: int, issue: bool, e: int) -> Case:
    def make(dev, dt):
        q = _t((b, t_len, hq, d), dev, dt).detach().transpose(1, 2).requires_grad_()  # the model's strided view
        k = _t((b, t_len, hk, d), dev, dt).detach().transpose(1, 2).requires_grad_()
        inv = 1.0 / (500000 ** (torch.arange(0, d, 2, device=dev).float() / d))
        f = torch.outer(torch.arange(t_len, device=dev).float(), inv)
        emb = torch.cat((f, f), -1)[None]
        return [q, k, emb.cos(), emb.sin()]

    n = b * t_len * (hq + hk) * d * e
    return Case("apply_rope", f"{b}x{t_len}x({hq}+{hk})x{d}", make, _providers("apply_rope", rope.apply_rope),
                2 * n, 2 * n, issue_size=issue, no_grad=(2, 3))


def softmax_case(rows: int, cols: int, e: int) -> Case:
    n = rows * cols * e
    return Case("softmax", f"{rows}x{cols}", lambda d, t: [_t((rows, cols), d, t, 4.0)],
                _providers("softmax", softmax.softmax), 2 * n, 3 * n)


def ce_case(rows: int, vocab: int, e: int) -> Case:
    def make(d, t):
        return [_t((rows, vocab), d, t, 2.0), torch.randint(0, vocab, (rows,), device=d)]

    n = rows * vocab * e
    return Case("cross_entropy", f"{rows}x{vocab}", make, _providers("cross_entropy", cross_entropy.cross_entropy),
                n, 2 * n, memory=True)


def flce_case(tokens: int, hidden: int, vocab: int, issue: bool) -> Case:
    def make(d, t):
        return [_t((tokens, hidden), d, t), _t((vocab, hidden), d, t, 1 / math.sqrt(hidden)),
                torch.randint(0, vocab, (tokens,), device=d)]

    flops = 2 * tokens * hidden * vocab
    providers = _providers("fused_linear_cross_entropy", cross_entropy.fused_linear_cross_entropy, compile_ok=False)
    for chunk in (512, 1024):  # the memory / time trade-off of the chunk size
        providers[f"triton_c{chunk}"] = (lambda c: lambda h, w, y: K.fused_linear_cross_entropy(
            h, w, y, chunk_size=c, backend="triton"))(chunk)
    io = 2 * (tokens * hidden + vocab * hidden)  # hidden + weight in; their gradients out (bf16)
    return Case("fused_linear_cross_entropy", f"{tokens}x{hidden}x{vocab}", make, providers, fwd_bytes=io / 2,
                bwd_bytes=io, fwd_flops=flops, bwd_flops=2 * flops, issue_size=issue, memory=True)


def matmul_case(m: int, n: int, k: int) -> Case:
    return Case("matmul", f"{m}x{n}x{k}", lambda d, t: [_t((m, k), d, t), _t((k, n), d, t)],
                {"torch": matmul.matmul, "triton": lambda a, b: K.matmul(a, b, backend="triton")},
                fwd_bytes=2 * (m * k + k * n + m * n), bwd_bytes=4 * (m * k + k * n + m * n),
                fwd_flops=2 * m * n * k, bwd_flops=4 * m * n * k)


def attention_case(b: int, h: int, hk: int, t_len: int, d: int, issue: bool, window: int | None = None) -> Case:
    def make(dev, dt):
        return [_t((b, h, t_len, d), dev, dt), _t((b, hk, t_len, d), dev, dt), _t((b, hk, t_len, d), dev, dt)]

    if window is None:
        visible = t_len * (t_len + 1) / 2
    else:
        visible = sum(min(i + 1, window) for i in range(t_len))
    flops = 4 * b * h * visible * d  # QK^T and PV over the visible pairs
    ref = lambda q, k, v: attention.attention(q, k, v, True, window)  # SDPA (flash backend when eligible)
    ours = lambda q, k, v: K.attention(q, k, v, True, window, backend="triton")
    label = f"{b}x{h}/{hk}x{t_len}x{d}" + (f" w{window}" if window else "")
    q_bytes, kv_bytes = 2 * b * h * t_len * d, 2 * b * hk * t_len * d
    return Case("attention", label, make, {"torch": ref, "triton": ours}, fwd_bytes=2 * q_bytes + 2 * kv_bytes,
                bwd_bytes=4 * q_bytes + 4 * kv_bytes, fwd_flops=flops, bwd_flops=2.5 * flops, issue_size=issue)


def build_cases(preset: str, e: int = 2) -> list[Case]:
    """'issue': the sizes the issue's goals name; 'sweep': those plus smaller and larger ones; 'tiny': CPU smoke."""
    if preset == "tiny":
        return (norm_cases(64, 256, True, e) + gated_cases(64, 512, True, e) + [rope_case(1, 64, 4, 2, 32, True, e)]
                + [softmax_case(64, 1000, e), ce_case(64, 1000, e), flce_case(64, 64, 1000, True),
                   matmul_case(64, 64, 64), attention_case(1, 2, 1, 64, 32, True)])
    cases = (norm_cases(8192, 4096, True, e) + gated_cases(4096, 14336, True, e)
             + [rope_case(4, 4096, 32, 8, 128, True, e), softmax_case(8192, 32768, e), ce_case(8192, 128256, e),
                flce_case(8192, 4096, 128256, True), matmul_case(8192, 8192, 8192),
                attention_case(4, 32, 32, 4096, 128, True), attention_case(4, 32, 8, 4096, 128, False),
                attention_case(4, 32, 8, 4096, 128, False, window=1024)])
    if preset == "sweep":
        for hidden in (1024, 2048, 8192):
            cases += norm_cases(8192, hidden, False, e)
        for ffn in (4096, 8192, 28672):
            cases += gated_cases(4096, ffn, False, e)
        cases += [rope_case(4, 1024, 32, 8, 128, False, e), softmax_case(8192, 4096, e), ce_case(4096, 32000, e),
                  matmul_case(4096, 4096, 4096), attention_case(4, 32, 32, 1024, 128, False),
                  attention_case(4, 32, 32, 16384, 128, False)]
    elif preset != "issue":
        raise ValueError(f"--preset must be tiny, issue or sweep, got {preset!r}")
    return cases
