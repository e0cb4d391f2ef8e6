"""Softmax, cross-entropy and fused linear + cross-entropy: Triton vs the torch reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import stellarbyte.kernels as K
from stellarbyte.kernels.testing import assert_parity

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 73), (3, 4097)])
def test_softmax(device, dtype, shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype, device=device) * 4
    assert_parity(lambda x: K.softmax(x, backend="torch"), lambda x: K.softmax(x, backend="triton"), [x])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_softmax_online_path_and_other_dims(device, dtype):
    from stellarbyte.kernels.ops.softmax import softmax

    x = torch.randn(3, 1000, dtype=dtype, device=device) * 10
    x[0, :500] = -float("inf")  # a masked half: the online max must skip the padding lanes
    assert_parity(lambda x: torch.softmax(x, -1), lambda x: softmax(x, -1, tile_max=64), [x])
    y = torch.randn(2, 7, 5, dtype=dtype, device=device)
    assert_parity(lambda y: torch.softmax(y, 1), lambda y: K.softmax(y, 1, backend="triton"), [y])


def test_softmax_is_stable_for_huge_logits(device):
    x = torch.tensor([[1e4, 1e4 - 1.0, -1e4]], device=device)
    torch.testing.assert_close(K.softmax(x, backend="triton"), torch.softmax(x, -1))
    assert torch.isfinite(K.softmax(x, backend="triton")).all()


def _ce(backend, **kw):
    return lambda x, y: K.cross_entropy(x, y, backend=backend, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vocab", [73, 4097, 10000])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-3},
                                     {"reduction": "sum", "label_smoothing": 0.05, "z_loss": 1e-4},
                                     {"reduction": "none"}])
def test_cross_entropy(device, dtype, vocab, options):
    torch.manual_seed(vocab)
    logits = (torch.randn(6, vocab, device=device) * 3).to(dtype)
    labels = torch.randint(0, vocab, (6,), device=device)
    labels[1] = -100
    assert_parity(_ce("torch", **options), _ce("triton", **options), [logits, labels], dtype=dtype)


def test_cross_entropy_reference_is_torch_with_z_loss(device):
    logits = torch.randn(2, 3, 50, device=device)
    labels = torch.randint(0, 50, (2, 3), device=device)
    labels[0, 0] = 7
    labels[1, 2] = -100
    expected = F.cross_entropy(logits.reshape(-1, 50), labels.reshape(-1), label_smoothing=0.1)
    torch.testing.assert_close(K.cross_entropy(logits, labels, label_smoothing=0.1, backend="triton"), expected)
    valid = labels.reshape(-1) != -100
    lse = torch.logsumexp(logits.reshape(-1, 50), -1)[valid]
    with_z = F.cross_entropy(logits.reshape(-1, 50), labels.reshape(-1)) + 1e-2 * lse.square().mean()
    torch.testing.assert_close(K.cross_entropy(logits, labels, z_loss=1e-2, backend="triton"), with_z)


def test_cross_entropy_bad_labels_and_all_ignored(device):
    logits = torch.randn(3, 10, device=device)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        K.cross_entropy(logits, torch.tensor([1, 10, 2], device=device), backend="triton")
    ignored = torch.full((3,), -100, device=device)
    assert torch.isnan(K.cross_entropy(logits, ignored, backend="triton"))  # mean over no tokens, like torch
    assert K.cross_entropy(logits, ignored, reduction="sum", backend="triton").item() == 0.0


def _flce(backend, **kw):
    return lambda h, w, y, b=None: K.fused_linear_cross_entropy(h, w, y, b, backend=backend, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("options", [{"chunk_size": 8}, {"chunk_size": 64, "label_smoothing": 0.1, "z_loss": 1e-4},
                                     {"chunk_size": 5, "reduction": "sum"}, {}])
def test_fused_linear_cross_entropy(device, dtype, bias, options):
    torch.manual_seed(4)
    n, h, v = 37, 32, 301
    hidden = torch.randn(n, h, device=device).to(dtype)
    weight = (torch.randn(v, h, device=device) / h**0.5).to(dtype)
    labels = torch.randint(0, v, (n,), device=device)
    labels[::7] = -100
    inputs = [hidden, weight, labels] + ([torch.randn(v, device=device).to(dtype)] if bias else [])
    assert_parity(_flce("torch", **options), _flce("triton", **options), inputs, dtype=dtype, scale_tol=2.0)


def test_fused_linear_cross_entropy_never_builds_full_logits(device, monkeypatch):
    """Every product the fused op runs has at most chunk_size rows of logits."""
    from stellarbyte.kernels.ops import fused_linear_ce

    n, h, v, chunk = 40, 16, 500, 8
    seen = []
    real_launch = fused_linear_ce.launch

    def spy(x, *args, **kwargs):
        seen.append(tuple(x.shape))
        return real_launch(x, *args, **kwargs)

    monkeypatch.setattr(fused_linear_ce, "launch", spy)
    hidden = torch.randn(2, n // 2, h, device=device, requires_grad=True)
    weight = torch.randn(v, h, device=device, requires_grad=True)
    labels = torch.randint(0, v, (2, n // 2), device=device)
    loss = K.fused_linear_cross_entropy(hidden, weight, labels, chunk_size=chunk, backend="triton")
    (loss * 3).backward()  # a non-unit upstream gradient scales the stored gradients
    assert seen == [(chunk, v)] * (n // chunk)
    ref_h, ref_w = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    (F.cross_entropy(ref_h.reshape(-1, h) @ ref_w.t(), labels.reshape(-1)) * 3).backward()
    torch.testing.assert_close(hidden.grad, ref_h.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(weight.grad, ref_w.grad, rtol=1e-4, atol=1e-6)
    assert fused_linear_ce.default_chunk_size(8192, 4096, 128256) == 512  # chunk logits ~ 2x the hidden states
