"""Engine tests. The Triton kernels of the engine's fast path run on CUDA when there is a GPU, else in Triton's
interpreter on CPU: as tests/kernels/conftest.py does, TRITON_INTERPRET is set while the kernel modules are
imported (that decides how @triton.jit builds them) and put back afterwards; the `triton_device` fixture sets it
again around a test that launches them, because the interpreter reads it while running a kernel."""

from __future__ import annotations

import importlib
import os

import pytest
import torch

ON_GPU = torch.cuda.is_available()
_previous = os.environ.get("TRITON_INTERPRET")
if not ON_GPU:
    os.environ["TRITON_INTERPRET"] = "1"
try:
    importlib.import_module("triton")
    for _name in ("paged_attention", "kv_write", "sampling"):
        importlib.import_module(f"stellarbyte.kernels.ops.{_name}")
    HAS_TRITON = True
except ImportError:
    HAS_TRITON = False
finally:
    if not ON_GPU:
        if _previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = _previous


@pytest.fixture
def triton_device(monkeypatch) -> str:
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install 'stellarbyte[triton]')")
    if not ON_GPU:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    return "cuda" if ON_GPU else "cpu"
