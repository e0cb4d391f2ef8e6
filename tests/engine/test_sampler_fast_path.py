"""The sampler's batched paths: unseeded rows draw by Gumbel-max (argmax of l / T - log E, E ~ Exp(1)), which must
follow softmax(l / T); greedy rows beside sampled ones keep their argmax; penalties apply to their rows only."""

import pytest
import torch

from stellarbyte.infer.engine import SamplingParams
from stellarbyte.infer.engine.sampler import sample
from stellarbyte.infer.engine.sequence import Sequence


def test_unseeded_draws_follow_softmax_with_temperature():
    torch.manual_seed(0)
    row = torch.tensor([1.0, 0.0, -1.0, 2.0, -30.0])
    n = 20000
    seqs = [Sequence("r", [1], SamplingParams(temperature=0.7, max_tokens=4)) for _ in range(n)]
    tokens, _ = sample(row.expand(n, 5).clone(), seqs)
    freq = torch.bincount(torch.tensor(tokens), minlength=5).float() / n
    expected = torch.softmax(row / 0.7, -1)
    assert torch.allclose(freq, expected, atol=0.012), (freq, expected)


def test_mixed_greedy_sampled_and_penalised_rows():
    torch.manual_seed(1)
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0], [0.0, 2.0, 1.9], [0.0, 0.0, 50.0]])
    greedy = SamplingParams(temperature=0, max_tokens=4)
    penalised = SamplingParams(temperature=0, max_tokens=4, repetition_penalty=100.0)
    seqs = [Sequence("a", [1], greedy), Sequence("b", [2], SamplingParams(temperature=1e-3, max_tokens=4)),
            Sequence("c", [1], penalised), Sequence("d", [1], SamplingParams(temperature=1.0, max_tokens=4))]
    tokens, _ = sample(logits, seqs)
    assert tokens[0] == 1  # greedy
    assert tokens[1] == 0  # near-zero temperature: the argmax
    assert tokens[2] == 2  # token 1 was seen in the prompt and is penalised below token 2
    assert tokens[3] == 2  # a 50-logit gap: the sampled row cannot miss it


def test_fused_triton_sampler_greedy_and_distribution(triton_device):
    """stellarbyte/kernels/ops/sampling.py: greedy rows == torch.argmax (first index on ties, across chunks);
    sampled rows follow softmax(l / T); a seed fixes the draw."""
    from stellarbyte.kernels.ops.sampling import sample_rows

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3000, generator=g)
    logits[2, 100] = logits[2, 2500] = 50.0  # a tie across chunks: the first index wins
    greedy = sample_rows(logits.to(triton_device), torch.zeros(6).to(triton_device), seed=1, any_sampled=False)
    assert greedy.tolist() == logits.argmax(-1).tolist() and greedy[2] == 100
    row = torch.tensor([1.0, 0.0, -1.0, 2.0] + [-1e4] * 1020)
    n = 4000 if triton_device == "cuda" else 400  # the interpreter runs programs one by one
    many = row.expand(n, 1024).contiguous().to(triton_device).to(torch.bfloat16)
    inv_t = torch.full((n,), 1 / 0.7).to(triton_device)
    draws = sample_rows(many, inv_t, seed=7).cpu()
    freq = torch.bincount(draws, minlength=1024)[:4].float() / n
    assert draws.max() < 4  # the -1e4 columns are never drawn
    assert torch.allclose(freq, torch.softmax(row[:4] / 0.7, -1), atol=4 * 0.5 / n**0.5), freq  # 4 sigma
    assert torch.equal(sample_rows(many, inv_t, seed=7).cpu(), draws)
    mixed = torch.tensor([0.0, 1 / 0.7] * 3).to(triton_device)  # greedy rows stay greedy beside sampled ones
    out = sample_rows(logits.to(triton_device), mixed, seed=3).cpu()
    assert out[0::2].tolist() == logits.argmax(-1)[0::2].tolist()
    # the seed read from a device tensor (the in-graph sampler) draws exactly what the same int seed draws;
    # float64 inverse temperatures (the step buffer's layout) act as float32 ones
    seed = torch.tensor([7], device=triton_device)
    assert torch.equal(sample_rows(many, inv_t.double(), seed).cpu(), draws)
    with pytest.raises(ValueError, match="tensor seed"):
        sample_rows(many, inv_t, torch.tensor([7], dtype=torch.int32, device=triton_device))
