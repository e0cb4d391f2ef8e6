"""Import Triton kernel modules for tests: on CUDA as compiled kernels, elsewhere in Triton's interpreter.

TRITON_INTERPRET must be set when @triton.jit decorates a kernel (at import), so `import_kernels` sets it, imports
the modules, then puts the variable back: other test directories in the same pytest run see the environment
unchanged. The interpreter also reads the variable while a kernel runs, so conftests set it again around each test
that launches one (monkeypatch.setenv).
"""

from __future__ import annotations

import importlib
import os

import torch

ON_GPU = torch.cuda.is_available()
INTERPRET = not ON_GPU


def import_kernels(*modules: str) -> bool:
    """Import triton and the given modules (interpreted without a GPU); False when triton is not installed."""
    previous = os.environ.get("TRITON_INTERPRET")
    if INTERPRET:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        importlib.import_module("triton")
        for name in modules:
            importlib.import_module(name)
        return True
    except ImportError:
        return False
    finally:
        if INTERPRET:
            if previous is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = previous
