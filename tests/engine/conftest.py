"""Engine tests. The Triton kernels of the engine's fast path run on CUDA when there is a GPU, else in Triton's
interpreter on CPU: as tests/kernels/conftest.py does, TRITON_INTERPRET is set while the kernel modules are
imported (that decides how @triton.jit builds them) and put back afterwards; the `triton_device` fixture sets it
again around a test that launches them, because the interpreter reads it while running a kernel."""

from __future__ import annotations

import pytest
from triton_interpreter import ON_GPU, import_kernels

HAS_TRITON = import_kernels(*(f"stellarbyte.kernels.ops.{name}" for name in ("paged_attention", "kv_write",
                                                                               "sampling")))


@pytest.fixture
def triton_device(monkeypatch) -> str:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install 'stellarbyte[kernels]')")
    if not ON_GPU:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    return "cuda" if ON_GPU else "cpu"
