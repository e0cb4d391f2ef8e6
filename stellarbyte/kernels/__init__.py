"""Kernels: each hot op as a torch reference plus a Triton kernel with its autograd.Function, picked per call
by a registry (see registry.py; env STELLARBYTE_KERNELS=torch|triton|auto, default auto = Triton on CUDA).

Importing this package never imports Triton; the Triton modules under kernels/ops load on first use.
"""

from stellarbyte.kernels.api import (
    add_rms_norm,
    apply_rope,
    attention,
    cross_entropy,
    fused_linear_cross_entropy,
    gelu_mul,
    layer_norm,
    matmul,
    rms_norm,
    silu_mul,
    softmax,
)
from stellarbyte.kernels.registry import get_backend, registered_ops, resolve, set_backend, use_backend

__all__ = [
    "add_rms_norm", "apply_rope", "attention", "cross_entropy", "fused_linear_cross_entropy", "gelu_mul",
    "layer_norm", "matmul", "rms_norm", "silu_mul", "softmax",
    "get_backend", "registered_ops", "resolve", "set_backend", "use_backend",
]
