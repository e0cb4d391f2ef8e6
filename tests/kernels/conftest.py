"""Kernel tests: Triton kernels run on CUDA when there is a GPU, else in Triton's interpreter on CPU.

TRITON_INTERPRET must be set when @triton.jit decorates a kernel, so this file sets it, imports every kernel
module (which decorates them as interpreted functions), then puts the variable back: other test directories in
the same pytest run see the environment unchanged. An autouse fixture sets it again around each kernel test,
because the interpreter also reads it while running a kernel.
"""

from __future__ import annotations

import pytest
from triton_interpreter import INTERPRET, ON_GPU, import_kernels

KERNEL_MODULES = ["rmsnorm", "layernorm", "rope", "gated", "softmax", "cross_entropy", "fused_linear_ce", "matmul",
                  "attention"]
HAS_TRITON = import_kernels(*(f"stellarbyte.kernels.ops.{name}" for name in KERNEL_MODULES))


@pytest.fixture(autouse=True)
def _triton_interpreter(monkeypatch):
    if INTERPRET:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


@pytest.fixture
def device() -> str:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install 'stellarbyte[kernels]')")
    return "cuda" if ON_GPU else "cpu"
