"""Kernel tests: Triton kernels run on CUDA when there is a GPU, else in Triton's interpreter on CPU.

TRITON_INTERPRET must be set when @triton.jit decorates a kernel, so this file sets it, imports every kernel
module (which decorates them as interpreted functions), then puts the variable back: other test directories in
the same pytest run see the environment unchanged. An autouse fixture sets it again around each kernel test,
because the interpreter also reads it while running a kernel.
"""

from __future__ import annotations

import importlib
import os

import pytest
import torch

KERNEL_MODULES = ["rmsnorm", "layernorm", "rope", "gated", "softmax", "cross_entropy", "fused_linear_ce", "matmul",
                  "attention"]
ON_GPU = torch.cuda.is_available()
INTERPRET = not ON_GPU

_previous = os.environ.get("TRITON_INTERPRET")
if INTERPRET:
    os.environ["TRITON_INTERPRET"] = "1"
try:
    importlib.import_module("triton")
    for name in KERNEL_MODULES:
        importlib.import_module(f"stellarbyte.kernels.ops.{name}")
    HAS_TRITON = True
except ImportError:
    HAS_TRITON = False
finally:
    if INTERPRET:
        if _previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = _previous


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
