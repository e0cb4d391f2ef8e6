"""Quantization tests: the fused Triton kernel runs on CUDA when there is a GPU, else in Triton's interpreter.

As tests/kernels/conftest.py: TRITON_INTERPRET must be set when @triton.jit decorates the kernel, so it is set
while triton_wo imports, then restored (other test directories see the environment unchanged), and set again
around each test by an autouse fixture (the interpreter reads it while running).
"""

from __future__ import annotations

import pytest
import torch
from triton_interpreter import ON_GPU, import_kernels

HAS_TRITON = import_kernels("stellarbyte.infer.quant.triton_wo")


@pytest.fixture(autouse=True)
def _triton_interpreter(monkeypatch):
    if not ON_GPU:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


@pytest.fixture
def kernel_device() -> str:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install 'stellarbyte[kernels]')")
    return "cuda" if ON_GPU else "cpu"


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tensors are small, and on shared cores a second thread's spin-waits cost more
    than it saves (a tiny training step measured 0.06 s on one thread, 0.5-3 s on two under load)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
