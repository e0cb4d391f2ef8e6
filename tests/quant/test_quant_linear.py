"""Quantized linear layers against F.linear, torch.ao's dynamic Linear, torch's own int8/int4 kernels, and the
fused Triton kernel against the torch reference (interpreter on CPU, real kernel on CUDA)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stellarbyte.infer.quant import Int8DynamicLinear, WeightOnlyLinear, ao_dynamic_linear
from stellarbyte.infer.quant.int8_dynamic import int8_matmul
from stellarbyte.infer.quant.peers import int4pack_linear, int8pack_linear


def linear(k=256, n=96, bias=True, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Linear(k, n, bias=bias).to(dtype)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def test_int8_matmul_is_exact():
    a = torch.randint(-127, 128, (5, 300), dtype=torch.int8)
    b = torch.randint(-127, 128, (300, 40), dtype=torch.int8)
    expected = (a.double() @ b.double()).to(torch.int64)
    assert torch.equal(int8_matmul(a, b).to(torch.int64), expected)


def test_int8_dynamic_within_analytic_bound():
    """|y_q - y| <= sum_k |x| s_n / 2 + |W| a_m / 2 + a_m s_n / 4 (each operand off by at most half a step)."""
    lin = linear()
    q = Int8DynamicLinear.from_linear(lin)
    x = torch.randn(2, 7, 256)
    x[0, 3] *= 30  # a loud token gets its own scale and does not coarsen the others (per-token quantization)
    with torch.no_grad():
        y, ref = q(x), lin(x)
    assert y.shape == ref.shape == (2, 7, 96) and y.dtype == torch.float32
    a = x.abs().amax(-1, keepdim=True) / 127  # (2, 7, 1)
    s = q.weight_scale  # (N,)
    bound = (x.abs() @ torch.ones(256, 96)) * s / 2 + a / 2 * (lin.weight.abs().sum(1)) + 256 * a * s / 4
    assert torch.all((y - ref).abs() <= bound * 1.001 + 1e-5)
    assert rel(y, ref) < 0.01


def test_int8_dynamic_vs_torch_ao():
    lin = linear(seed=1)
    ours, ao = Int8DynamicLinear.from_linear(lin), ao_dynamic_linear(lin)
    x = torch.randn(9, 256)
    x[2] *= 50  # ao scales the whole batch by one (uint8, reduce_range) step: a loud row hurts every row
    with torch.no_grad():
        y, y_ao, ref = ours(x), ao(x), lin(x)
    e_ours, e_ao = rel(y, ref), rel(y_ao, ref)
    assert e_ours < 0.01 and e_ao < 0.1
    quiet = torch.arange(9) != 2
    assert rel(y[quiet], ref[quiet]) < rel(y_ao[quiet], ref[quiet])  # per-token wins on the quiet rows
    torch.testing.assert_close(y[2], y_ao[2], rtol=0.05, atol=0.05 * float(ref[2].abs().max()))


def test_int8_dynamic_bf16_input_and_weight_bytes():
    lin = linear(bias=False)
    q = Int8DynamicLinear.from_linear(lin)
    assert q.weight_bytes() == 96 * 256 + 96 * 4  # int8 codes + a float32 scale per row
    y = q(torch.randn(3, 256, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and y.shape == (3, 96)
    with pytest.raises(ValueError, match="expected 256"):
        q(torch.randn(3, 255))


@pytest.mark.parametrize("bits,group,sym", [(8, 128, True), (4, 32, True), (4, 64, False), (4, 128, True)])
def test_weight_only_reference_path(bits, group, sym):
    lin = linear()
    q = WeightOnlyLinear.from_linear(lin, bits, group, sym)
    x = torch.randn(4, 256)
    with torch.no_grad():
        y = q(x, backend="torch")
        torch.testing.assert_close(y, F.linear(x, q.dequantize(torch.float32), lin.bias))
        assert rel(y, lin(x)) < (0.01 if bits == 8 else 0.12)
    expected_bytes = 96 * 256 + 96 * 4 if bits == 8 else 96 * 128 + 96 * (256 // group) * 5
    assert q.weight_bytes() == expected_bytes + 96 * 4  # + the float32 bias


CASES = [  # (bits, group, symmetric, M, N, K)
    (8, 128, True, 1, 48, 256),
    (8, 128, True, 17, 45, 200),  # K not a multiple of the tile, odd N
    (4, 32, True, 1, 48, 256),
    (4, 64, False, 5, 45, 128),
    (4, 128, True, 70, 64, 256),  # M beyond one row tile
    (4, 128, False, 3, 33, 384),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_triton_kernel_matches_reference(kernel_device, case, dtype):
    bits, group, sym, m, n, k = case
    lin = linear(k, n, bias=True, seed=m).to(kernel_device)
    q = WeightOnlyLinear.from_linear(lin, bits, group, sym).to(dtype)
    x = torch.randn(m, k, device=kernel_device, dtype=dtype)
    with torch.no_grad():
        got = q(x, backend="triton")
        ref = x.double() @ q.dequantize(torch.float64).t() + q.bias.double()  # float64 reference
    assert got.dtype == dtype and got.shape == (m, n)
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: inputs and the output are rounded to 8 bits
    assert rel(got, ref) < tol


@pytest.mark.parametrize("split_k", [1, 4])
def test_triton_kernel_fixed_configs(kernel_device, split_k):
    from stellarbyte.infer.quant.triton_wo import weight_only_matmul

    q = WeightOnlyLinear.from_linear(linear(256, 40, bias=False).to(kernel_device), 4, 64, False)
    x = torch.randn(2, 256, device=kernel_device)
    got = weight_only_matmul(x, q.qweight, q.scales, q.zeros, 4, 64, config={"BN": 16, "BK": 32, "SPLIT_K": split_k})
    assert rel(got, x.double() @ q.dequantize(torch.float64).t()) < 1e-5
    with pytest.raises(ValueError, match="must divide the group size"):
        weight_only_matmul(x, q.qweight, q.scales, q.zeros, 4, 64, config={"BN": 16, "BK": 128, "SPLIT_K": 1})


def test_auto_backend_policy():
    q = WeightOnlyLinear.from_linear(linear(), 8)
    x = torch.randn(2, 256)
    assert q.resolve_backend(x, 2, "auto") == "torch"  # CPU tensors never take Triton under auto
    assert q.resolve_backend(x, 2, "triton") == "triton"
    with pytest.raises(ValueError, match="unknown backend"):
        q.resolve_backend(x, 2, "cuda")


def test_torch_int8pack_peer_matches():
    q = WeightOnlyLinear.from_linear(linear(bias=False), 8).to(torch.bfloat16)
    x = torch.randn(3, 256, dtype=torch.bfloat16)
    ref = x.double() @ q.dequantize(torch.float64).t()
    assert rel(int8pack_linear(q)(x), ref) < 1e-2


@pytest.mark.parametrize("sym", [True, False])
def test_torch_int4pack_peer_matches_our_layout(sym):
    """Pins the format conversion (nibble order, float zero point (8 - z) s) that the CUDA peer also uses."""
    q = WeightOnlyLinear.from_linear(linear(bias=False), 4, 64, sym).to(torch.bfloat16)
    x = torch.randn(3, 256, dtype=torch.bfloat16)
    ref = x.double() @ q.dequantize(torch.float64).t()
    assert rel(int4pack_linear(q, inner_k_tiles=2)(x), ref) < 1e-2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bits,group", [(8, 128), (4, 128), (4, 32)])
@pytest.mark.parametrize("m", [1, 33])
def test_tuned_kernel_on_gpu(bits, group, m):
    """Benchmark-size weights (3072 x 1024) go through the autotuned launcher (split-K with atomics)."""
    q = WeightOnlyLinear.from_linear(linear(1024, 3072, bias=False, seed=m).cuda(), bits, group).to(torch.bfloat16)
    x = torch.randn(m, 1024, device="cuda", dtype=torch.bfloat16)
    out = torch.full((m, 3072), float("nan"), device="cuda")
    for _ in range(2):  # the second call takes the tuned config from the cache
        out = q(x, backend="triton")
    assert torch.isfinite(out).all()
    assert rel(out, x.double() @ q.dequantize(torch.float64).t()) < 1e-2


def test_tinygemm_kernel_option_matches_reference():
    """backend="tinygemm" runs torch's int4 kernel (its CPU variant here, tinygemm on CUDA) on our weights."""
    from stellarbyte.infer.quant.weight_only import tinygemm_supported

    q = WeightOnlyLinear.from_linear(linear(256, 96, bias=True), 4, 64, False).to(torch.bfloat16)
    assert tinygemm_supported(q)
    x = torch.randn(2, 3, 256, dtype=torch.bfloat16)
    got = q(x, backend="tinygemm")
    ref = x.double() @ q.dequantize(torch.float64).t() + q.bias.double()
    assert got.dtype == torch.bfloat16 and got.shape == (2, 3, 96)
    assert rel(got, ref) < 1e-2
    assert q.resolve_backend(x, 6) == "torch"  # auto never picks it on CPU
    assert not tinygemm_supported(WeightOnlyLinear.from_linear(linear(256, 45), 4, 64))  # N % 8 != 0
    assert not tinygemm_supported(WeightOnlyLinear.from_linear(linear(256, 48), 8))  # int8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_picks_tinygemm_for_bf16_int4_on_gpu():
    q = WeightOnlyLinear.from_linear(linear(1024, 512, bias=False).cuda(), 4, 128).to(torch.bfloat16)
    x = torch.randn(4, 1024, device="cuda", dtype=torch.bfloat16)
    assert q.resolve_backend(x, 4) == "tinygemm"
    assert q.resolve_backend(x.float(), 4) == "triton"
    assert q.resolve_backend(x, 65) == "torch"
    assert rel(q(x), x.double() @ q.dequantize(torch.float64).t()) < 1e-2
