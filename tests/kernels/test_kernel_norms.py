"""RMSNorm, fused add + RMSNorm and LayerNorm: Triton vs the torch reference, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import stellarbyte.kernels as K
from stellarbyte.kernels.testing import assert_parity

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
SHAPES = [(1, 73), (3, 5, 4097), (7, 128), (2, 16384)]  # one row, odd hidden sizes, a long row


def _tri(fn):
    return lambda *a: fn(*a, backend="triton")


def _ref(fn):
    return lambda *a: fn(*a, backend="torch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("offset", [False, True])
def test_rms_norm(device, dtype, shape, offset):
    torch.manual_seed(hash((shape, offset)) % 1000)
    x = torch.randn(shape, dtype=dtype, device=device) * 3
    w = torch.randn(shape[-1], dtype=dtype, device=device)
    assert_parity(_ref(K.rms_norm), _tri(K.rms_norm), [x, w, 1e-6, offset])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 73), (4, 4097), (2, 3, 256)])
def test_add_rms_norm(device, dtype, shape):
    torch.manual_seed(1)
    x, r = (torch.randn(shape, dtype=dtype, device=device) for _ in range(2))
    w = torch.randn(shape[-1], dtype=dtype, device=device)
    assert_parity(_ref(K.add_rms_norm), _tri(K.add_rms_norm), [x, r, w, 1e-5, False])
    assert_parity(_ref(K.add_rms_norm), _tri(K.add_rms_norm), [x, r, w, 1e-5, True])


@pytest.mark.parametrize("rows", [1, 7, 33])
def test_rms_norm_backward_implementations(device, rows):
    from stellarbyte.kernels.ops import rmsnorm

    x, r = torch.randn(rows, 300, device=device), torch.randn(rows, 300, device=device)
    w = torch.randn(300, device=device)
    for bwd in rmsnorm.BWD_IMPLS:
        assert_parity(_ref(K.rms_norm), lambda x, w, b=bwd: rmsnorm.rms_norm(x, w, bwd=b), [x, w])
        assert_parity(_ref(K.add_rms_norm), lambda x, r, w, b=bwd: rmsnorm.add_rms_norm(x, r, w, bwd=b), [x, r, w])
        assert_parity(lambda x, w: K.rms_norm(x, w, 1e-6, True, backend="torch"),
                      lambda x, w, b=bwd: rmsnorm.rms_norm(x, w, 1e-6, True, bwd=b), [x.bfloat16(), w.bfloat16()])
    with pytest.raises(ValueError, match="must be one of"):
        rmsnorm.rms_norm_backward(x, x, w, x[:, 0], None, False, bwd="fast")


def test_rms_norm_float32_weight_on_bf16_activations(device):
    x = torch.randn(6, 96, dtype=torch.bfloat16, device=device)
    w = torch.randn(96, device=device)
    y = K.rms_norm(x, w, backend="triton")
    assert y.dtype == torch.float32  # weight * x_hat promotes, as in LlamaRMSNorm
    assert_parity(_ref(K.rms_norm), _tri(K.rms_norm), [x, w, 1e-6, False], dtype=torch.bfloat16)


def test_rms_norm_matches_published_formula(device):
    x = torch.randn(4, 33, dtype=torch.float64).float().to(device)
    w = torch.rand(33, device=device)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
    torch.testing.assert_close(K.rms_norm(x, w, 1e-6, backend="triton"), expected, rtol=1e-5, atol=1e-6)


def test_add_rms_norm_only_sum_used(device):
    x, r = torch.randn(3, 40, device=device, requires_grad=True), torch.randn(3, 40, device=device)
    _, s = K.add_rms_norm(x, r, torch.ones(40, device=device), backend="triton")
    (s * 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 2.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 73), (5, 4097), (3, 2, 64)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(device, dtype, shape, affine):
    torch.manual_seed(2)
    x = torch.randn(shape, dtype=dtype, device=device) * 2 + 1
    w = torch.randn(shape[-1], dtype=dtype, device=device) if affine else None
    b = torch.randn(shape[-1], dtype=dtype, device=device) if affine else None
    assert_parity(_ref(K.layer_norm), _tri(K.layer_norm), [x, w, b, 1e-5])


@pytest.mark.parametrize("rows", [1, 40])
def test_layer_norm_split_backward(device, rows):
    from stellarbyte.kernels.ops import layernorm

    x = torch.randn(rows, 200, device=device) + 3
    w, b = torch.randn(200, device=device), torch.randn(200, device=device)
    assert_parity(_ref(K.layer_norm), lambda x, w, b: layernorm.layer_norm(x, w, b, 1e-5, bwd="split"), [x, w, b])
    assert_parity(lambda x: K.layer_norm(x, None, None, backend="torch"),
                  lambda x: layernorm.layer_norm(x, None, None, bwd="split"), [x])


def test_layer_norm_matches_torch_functional(device):
    x = torch.randn(8, 50, device=device)
    w, b = torch.randn(50, device=device), torch.randn(50, device=device)
    torch.testing.assert_close(K.layer_norm(x, w, b, 1e-5, backend="triton"), F.layer_norm(x, (50,), w, b, 1e-5),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["rms_norm", "layer_norm"])
def test_nan_rows_stay_nan_and_do_not_leak(device, op):
    x = torch.randn(4, 64, device=device)
    x[1, 7] = float("nan")
    w = torch.ones(64, device=device)
    y = K.rms_norm(x, w, backend="triton") if op == "rms_norm" else K.layer_norm(x, w, None, backend="triton")
    assert torch.isnan(y[1]).all()
    assert torch.isfinite(y[[0, 2, 3]]).all()
    with pytest.raises(AssertionError):  # the parity check itself never lets NaN through
        assert_parity(_ref(K.rms_norm), lambda x, w: K.rms_norm(x, w, backend="torch") * float("nan"),
                      [torch.randn(2, 8, device=device), torch.ones(8, device=device)])
