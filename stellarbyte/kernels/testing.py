"""Parity checking shared by the tests and the GPU check script: run an op with two backends on the same
fresh inputs, push the same random upstream gradient through both, and compare outputs and input gradients
with per-dtype tolerances. NaN never passes (torch.testing.assert_close treats NaN as unequal by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

# (rtol, atol) per dtype, relative to the outputs' scale: bf16 has 8 mantissa bits (one ulp = 2^-8 relative),
# fp16 has 11; a kernel that computes in float32 and rounds once differs from torch's op-by-op rounding by a
# few ulps. (The Triton interpreter also rounds float32 -> bf16 toward zero where GPUs round to nearest.)
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 2e-3),
    torch.bfloat16: (5e-2, 2e-2),
}


def run_with_grads(fn: Callable, inputs: Sequence, grad_seed: int = 0,
                   no_grad: Sequence[int] = ()) -> list[torch.Tensor]:
    """Clone inputs (floating tensors require grad unless their index is in no_grad), run fn, backprop seeded
    random weights; return outputs followed by each differentiated input's gradient."""
    ins = [x.detach().clone().requires_grad_(x.is_floating_point() and i not in no_grad)
           if isinstance(x, torch.Tensor) else x for i, x in enumerate(inputs)]
    out = fn(*ins)
    outs = list(out) if isinstance(out, tuple) else [out]
    gen = torch.Generator().manual_seed(grad_seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum() for o in outs)
    loss.backward()
    grads = [x.grad for x in ins if isinstance(x, torch.Tensor) and x.requires_grad]
    return [o.detach() for o in outs] + grads


def assert_parity(ref: Callable, test: Callable, inputs: Sequence, dtype: torch.dtype | None = None,
                  scale_tol: float = 1.0, grad_seed: int = 0, no_grad: Sequence[int] = ()) -> None:
    """Outputs and gradients of `test` match `ref` within the dtype's tolerance (times scale_tol).

    atol is scaled by each reference tensor's largest magnitude, so gradients of very different sizes are judged
    on the same relative footing.
    """
    expected = run_with_grads(ref, inputs, grad_seed, no_grad)
    actual = run_with_grads(test, inputs, grad_seed, no_grad)
    assert len(expected) == len(actual), "the two backends returned different numbers of tensors"
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert a is not None and e is not None, f"tensor {i}: a gradient is missing"
        assert a.shape == e.shape, f"tensor {i}: shape {tuple(a.shape)} != {tuple(e.shape)}"
        assert a.dtype == e.dtype, f"tensor {i}: dtype {a.dtype} != {e.dtype}"
        rtol, atol = TOLERANCES[dtype or e.dtype]
        mag = float(e.float().abs().max()) if e.numel() and torch.isfinite(e).all() else 1.0
        torch.testing.assert_close(a.float(), e.float(), rtol=rtol * scale_tol, atol=atol * scale_tol * max(mag, 1.0),
                                   msg=lambda m, i=i: f"tensor {i} (0 = first output): {m}")
