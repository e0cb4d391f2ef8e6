"""The registry: backend names, env var, set_backend/use_backend, auto policy, lazy Triton import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import stellarbyte.kernels as K
from stellarbyte.kernels import registry
from stellarbyte.kernels.ops._common import check_device


def test_env_var_and_override(monkeypatch):
    monkeypatch.delenv("STELLARBYTE_KERNELS", raising=False)
    assert K.get_backend() == "auto"
    monkeypatch.setenv("STELLARBYTE_KERNELS", "torch")
    assert K.get_backend() == "torch"
    with K.use_backend("triton"):
        assert K.get_backend() == "triton"
        with K.use_backend("auto"):
            assert K.get_backend() == "auto"
        assert K.get_backend() == "triton"
    assert K.get_backend() == "torch"
    K.set_backend("triton")
    try:
        assert K.get_backend() == "triton"
    finally:
        K.set_backend(None)
    assert K.get_backend() == "torch"


def test_bad_backend_names(monkeypatch):
    with pytest.raises(ValueError, match="unknown kernel backend 'cuda'"):
        K.set_backend("cuda")
    monkeypatch.setenv("STELLARBYTE_KERNELS", "fast")
    with pytest.raises(ValueError, match="STELLARBYTE_KERNELS"):
        K.rms_norm(torch.ones(2, 4), torch.ones(4))


def test_auto_picks_torch_on_cpu_and_matmul_policy():
    x = torch.randn(2, 8)
    for op in K.registered_ops():
        assert K.resolve(op, "auto", x) == "torch"
    assert K.resolve("rms_norm", "torch", x) == "torch"
    assert registry._OPS["matmul"].auto_prefers_triton is False  # cuBLAS stays the default for matmul
    assert registry._OPS["layer_norm"].auto_prefers_triton is False  # torch's LayerNorm won on the H100
    assert registry._OPS["rms_norm"].auto_prefers_triton is True
    assert set(K.registered_ops()) == {"rms_norm", "add_rms_norm", "layer_norm", "apply_rope", "silu_mul",
                                       "gelu_mul", "softmax", "cross_entropy", "fused_linear_cross_entropy",
                                       "matmul", "attention"}


def test_compiled_kernel_refuses_cpu_tensors():
    class JITFunction:  # stands in for a kernel compiled for the GPU (not the interpreter)
        pass

    with pytest.raises(ValueError, match="needs CUDA tensors"):
        check_device(JITFunction(), torch.ones(2))


def test_import_does_not_pull_triton():
    code = ("import sys, torch, stellarbyte.kernels as K; x = torch.randn(3, 8); "
            "K.rms_norm(x, torch.ones(8)); K.attention(torch.randn(1, 2, 4, 8), torch.randn(1, 1, 4, 8), "
            "torch.randn(1, 1, 4, 8)); assert 'triton' not in sys.modules, 'triton imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_argument_errors():
    with pytest.raises(ValueError, match="does not match the last dim"):
        K.rms_norm(torch.ones(2, 4), torch.ones(5))
    with pytest.raises(ValueError, match="differ in shape"):
        K.add_rms_norm(torch.ones(2, 4), torch.ones(3, 4), torch.ones(4))
    with pytest.raises(ValueError, match="must be even"):
        K.apply_rope(torch.ones(1, 1, 2, 8), torch.ones(1, 1, 2, 8), torch.ones(1, 2, 3), torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match="multiple of kv heads"):
        K.attention(torch.ones(1, 3, 4, 8), torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8))
    with pytest.raises(ValueError, match="T <= S"):
        K.attention(torch.ones(1, 2, 5, 8), torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8))
    with pytest.raises(ValueError, match="needs causal=True"):
        K.attention(torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8), causal=False,
                    sliding_window=2)
    with pytest.raises(ValueError, match="one label per row"):
        K.cross_entropy(torch.ones(4, 10), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        K.cross_entropy(torch.ones(4, 10), torch.zeros(4, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="'mean' or 'sum'"):
        K.fused_linear_cross_entropy(torch.ones(4, 8), torch.ones(10, 8), torch.zeros(4, dtype=torch.long),
                                     reduction="none")
    with pytest.raises(ValueError, match="approximate"):
        K.gelu_mul(torch.ones(3), torch.ones(3), approximate="erf")
