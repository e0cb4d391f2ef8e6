"""The Triton paged-attention and KV-write kernels against their torch references (interpreter on CPU).

Fresh random inputs per case; block tables are random permutations of the pool (so a wrong page lookup reads
another sequence's keys); the output is poisoned with NaN first, so an unwritten row fails.
"""

import pytest
import torch

from stellarbyte.kernels.reference import paged_attention as ref


def make_case(q_lens, seq_lens, hq, hkv, d, page, dtype, device, seed=0, pad_tokens=0):
    g = torch.Generator().manual_seed(seed)
    width = max(1, max(-(-s // page) for s in seq_lens))
    num_blocks = width * len(seq_lens) + 3
    perm = torch.randperm(num_blocks, generator=g)[: width * len(seq_lens)]
    tables = perm.view(len(seq_lens), width).to(torch.int32)
    n = sum(q_lens) + pad_tokens
    q = torch.randn(n, hq, d, generator=g).to(dtype)
    kc = torch.randn(num_blocks, page, hkv, d, generator=g).to(dtype)
    vc = torch.randn(num_blocks, page, hkv, d, generator=g).to(dtype)
    cu = torch.tensor([0] + list(torch.tensor(q_lens).cumsum(0)), dtype=torch.int32)
    lens = torch.tensor(seq_lens, dtype=torch.int32)
    return [t.to(device) for t in (q, kc, vc, cu, lens, tables)]


CASES = {  # q_lens, seq_lens (context incl. new tokens), hq, hkv, d, page
    "decode_gqa": ((1, 1, 1, 1), (5, 33, 17, 64), 4, 2, 16, 4),
    "mixed_prefill_decode": ((7, 1, 20, 1), (7, 40, 25, 3), 4, 2, 32, 16),
    "mha_odd_dim": ((3, 5), (10, 5), 2, 2, 24, 4),
    "mqa_group3": ((4, 1, 2), (9, 30, 2), 3, 1, 16, 8),
    "long_prefill_chunk": ((40,), (70,), 4, 1, 16, 16),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("num_splits", [1, 4])
def test_kernel_matches_reference_float32(triton_device, case, num_splits):
    from stellarbyte.kernels.ops.paged_attention import paged_attention

    q_lens, seq_lens, hq, hkv, d, page = CASES[case]
    q, kc, vc, cu, lens, tables = make_case(q_lens, seq_lens, hq, hkv, d, page, torch.float32, triton_device)
    expected = ref.paged_attention(q, kc, vc, cu, lens, tables, scale=d**-0.5)
    out = torch.full_like(q, float("nan"))
    got = paged_attention(q, kc, vc, cu, lens, tables, scale=d**-0.5, max_query_len=max(q_lens),
                          num_splits=num_splits, out=out)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_kernel_bfloat16_and_sliding_window(triton_device):
    from stellarbyte.kernels.ops.paged_attention import paged_attention

    q_lens, seq_lens = (6, 1, 1), (20, 37, 9)
    q, kc, vc, cu, lens, tables = make_case(q_lens, seq_lens, 4, 2, 16, 4, torch.bfloat16, triton_device, seed=3)
    for window in (None, 5):
        expected = ref.paged_attention(q, kc, vc, cu, lens, tables, scale=0.25, sliding_window=window)
        got = paged_attention(q, kc, vc, cu, lens, tables, scale=0.25, sliding_window=window, max_query_len=6)
        err = (got.float() - expected.float()).norm() / expected.float().norm()
        assert err < 1e-2, (window, float(err))


def test_padding_sequences_and_tokens_are_zero(triton_device):
    """CUDA-graph padding: sequences with seq_len 0 and rows past cu_seqlens_q[-1] produce zeros, others exact."""
    from stellarbyte.kernels.ops.paged_attention import paged_attention

    q, kc, vc, cu, lens, tables = make_case((1, 1, 1), (9, 0, 4), 4, 2, 16, 4, torch.float32, triton_device, seed=5)
    for splits in (1, 2):
        got = paged_attention(q, kc, vc, cu, lens, tables, scale=0.25, max_query_len=1, num_splits=splits,
                              out=torch.full_like(q, float("nan")))
        expected = ref.paged_attention(q, kc, vc, cu, lens, tables, scale=0.25)
        assert torch.equal(got[1], torch.zeros_like(got[1]))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_reference_matches_dense_causal_attention():
    """One sequence whose blocks are scattered equals plain causal SDPA over its contiguous keys."""
    q, kc, vc, cu, lens, tables = make_case((6,), (11,), 4, 2, 8, 4, torch.float64, "cpu", seed=7)
    got = ref.paged_attention(q, kc, vc, cu, lens, tables, scale=0.3)
    pos = torch.arange(11)
    slots = tables[0, pos // 4].long() * 4 + pos % 4
    k = kc.view(-1, 2, 8)[slots].transpose(0, 1)  # (Hkv, S, D)
    v = vc.view(-1, 2, 8)[slots].transpose(0, 1)
    mask = torch.ones(6, 11, dtype=torch.bool).tril(11 - 6)
    dense = torch.nn.functional.scaled_dot_product_attention(q.transpose(0, 1)[None], k[None], v[None],
                                                             attn_mask=mask, scale=0.3, enable_gqa=True)
    torch.testing.assert_close(got, dense[0].transpose(0, 1), rtol=1e-12, atol=1e-12)


def test_write_kv_matches_reference_and_skips_negative_slots(triton_device):
    from stellarbyte.kernels.ops.kv_write import write_kv

    g = torch.Generator().manual_seed(11)
    key = torch.randn(5, 3, 16, generator=g)[:, 1:]  # (5, 2, 16) with a token stride of 48: strided rows
    value = torch.randn(5, 2, 16, generator=g)
    slots = torch.tensor([3, -1, 0, 17, 9])
    caches = [torch.randn(6, 4, 2, 16, generator=g) for _ in range(2)]
    mine = [c.clone().to(triton_device) for c in caches]
    ref.write_kv(key, value, caches[0], caches[1], slots)
    write_kv(key.to(triton_device), value.to(triton_device), mine[0], mine[1], slots.to(triton_device))
    assert torch.equal(mine[0].cpu(), caches[0]) and torch.equal(mine[1].cpu(), caches[1])
    assert torch.equal(caches[0].view(-1, 2, 16)[17], key[3])
    with pytest.raises(ValueError, match="slot_mapping"):
        write_kv(key.to(triton_device), value.to(triton_device), mine[0], mine[1], slots[:3].to(triton_device))
