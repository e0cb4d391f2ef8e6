"""The engine on a CUDA device: float64 exactness against generate(), and bf16 paged logits against a plain
forward (the torch reference path is device-agnostic; the fast kernels will be compared against it)."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in lengths]


def test_greedy_exact_on_cuda_float64():
    model = tiny_model().to("cuda", torch.float64)
    llm = LLM(model, block_size=4, num_blocks=14, max_num_batched_tokens=16)  # chunking and preemption
    ps = prompts((3, 17, 1, 30, 9))
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=16, eos_token_id=[])
        assert o.outputs[0].token_ids == ref[0, len(p):].tolist()
    assert llm.engine.get_stats().num_preemptions > 0
    assert llm.engine.kv_cache.keys[0].device.type == "cuda"


def test_bf16_paged_logits_close_to_plain_forward():
    model = tiny_model().to("cuda", torch.bfloat16)
    llm = LLM(model, block_size=4, num_blocks=32)
    ps = prompts((5, 12, 8), seed=1)
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=1, ignore_eos=True, logprobs=5))
    for p, o in zip(ps, outs):
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.tensor([p], device="cuda")).logits[0, -1].float(), -1)
        for token, value in o.outputs[0].logprobs[0].items():
            assert value == pytest.approx(float(ref[token]), abs=3e-2)


def test_pool_sized_from_gpu_memory_utilization():
    model = tiny_model().to("cuda")
    free, total = torch.cuda.mem_get_info()
    engine = LLM(model, block_size=16, gpu_memory_utilization=0.05).engine
    pool = engine.kv_cache.num_blocks * engine.kv_cache.keys[0][0].numel() * 4 * 2 * model.config.num_hidden_layers
    assert 0 < pool <= 0.05 * total - (total - free)
    out = engine.add_request([1, 2, 3], SamplingParams(temperature=0, max_tokens=2, ignore_eos=True))
    while engine.has_unfinished_requests():
        engine.step()
    assert out == "0"


# ---- the fast path: Triton paged attention, flattened batches, CUDA graphs ----------------------------------

@pytest.mark.parametrize("cuda_graphs,compile_decode,sample_in_graph",
                         [(True, True, True), (True, False, False), (True, True, False), (False, False, False)])
def test_triton_engine_greedy_exact_float32(cuda_graphs, compile_decode, sample_in_graph):
    """Chunked prefill, preemption and graph padding (5 sequences replay the graph of 8) vs generate(); decode
    graphs with and without the compiled step (fused projections) and the in-graph sampler."""
    model = tiny_model(qk_norm=True).to("cuda", torch.float32)
    llm = LLM(model, block_size=4, num_blocks=20, max_num_batched_tokens=16, max_num_seqs=8,
              attention_backend="triton", cuda_graphs=cuda_graphs, compile_decode=compile_decode,
              sample_in_graph=sample_in_graph, compile_max_batch_size=8)
    runner = llm.engine.runner
    assert (runner.graphs is not None) == cuda_graphs and (runner.compiled is not None) == compile_decode
    if cuda_graphs:
        assert (runner.graphs.sample is not None) == sample_in_graph
    assert llm.engine.overlap  # the flat runner on CUDA overlaps host work with the next step by default
    ps = prompts((3, 17, 1, 30, 9))
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=16, eos_token_id=[])
        assert o.outputs[0].token_ids == ref[0, len(p):].tolist()
    stats = llm.engine.get_stats()
    assert stats.num_preemptions > 0 and stats.num_free_blocks == stats.num_blocks


def test_auto_backend_on_cuda_is_triton_with_graphs():
    model = tiny_model().to("cuda", torch.bfloat16)
    engine = LLM(model, block_size=16, num_blocks=64, max_num_seqs=4).engine
    assert engine.attention_backend == "triton" and engine.runner.graphs.sizes == [1, 2, 4]
    # defaults on CUDA: compiled batch-1 decode steps with fused projections, the sampler inside the graphs
    assert engine.runner.compiled is not None and engine.runner.graphs.sample is not None
    assert engine.runner.fused_groups == [2 * model.config.num_hidden_layers]  # one compiled graph: batch 1


def test_graph_sampled_tokens_bf16():
    """Greedy and near-zero temperature through the in-graph sampler == greedy of the eager (no graphs) engine; a
    decode step leaves the graph's ids on the runner."""
    model = tiny_model(qk_norm=True).to("cuda", torch.bfloat16)
    ps = prompts((5, 12, 8), seed=2)
    eager = LLM(model, block_size=4, num_blocks=64, cuda_graphs=False, max_num_seqs=4)
    want = [o.outputs[0].token_ids for o in eager.generate(ps, SamplingParams(temperature=0, max_tokens=8,
                                                                              ignore_eos=True))]
    llm = LLM(model, block_size=4, num_blocks=64, max_num_seqs=4)
    for t in (0.0, 1e-4):
        outs = llm.generate(ps, SamplingParams(temperature=t, max_tokens=8, ignore_eos=True))
        assert [o.outputs[0].token_ids for o in outs] == want
    assert llm.engine.runner.graph_ids is not None and llm.engine.runner.graph_ids.shape == (3,)
    hot = llm.generate(ps * 4, SamplingParams(temperature=1.0, max_tokens=8, ignore_eos=True))
    tokens = [t for o in hot for t in o.outputs[0].token_ids]
    assert max(tokens) < model.config.vocab_size and len(set(tokens)) > 8  # sampled, not collapsed


def test_triton_engine_bf16_logprobs_close_to_plain_forward():
    model = tiny_model().to("cuda", torch.bfloat16)
    llm = LLM(model, block_size=4, num_blocks=32, attention_backend="triton")
    ps = prompts((5, 12, 8), seed=1)
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=3, ignore_eos=True, logprobs=5))
    for p, o in zip(ps, outs):
        ids = p + o.outputs[0].token_ids
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.tensor([ids], device="cuda")).logits[0].float(), -1)
        for step, lp in enumerate(o.outputs[0].logprobs):  # step 0 from prefill, later ones from graph decodes
            for token, value in lp.items():
                assert value == pytest.approx(float(ref[len(p) - 1 + step, token]), abs=5e-2)


@pytest.mark.parametrize("num_splits", [1, 8])
def test_triton_kernel_qwen3_shape_vs_reference(num_splits):
    """The benchmark's attention shape (16 q / 8 kv heads, head dim 128, pages of 16) in bf16, long contexts."""
    from stellarbyte.kernels.ops.paged_attention import paged_attention
    from stellarbyte.kernels.reference.paged_attention import paged_attention as reference

    g = torch.Generator().manual_seed(0)
    q_lens, seq_lens = [1, 1, 300, 1, 57], [1000, 17, 300, 2047, 600]
    width, pool = 128, 700
    tables = torch.randperm(pool, generator=g)[: width * 5].view(5, width).int().cuda()
    kc, vc = (torch.randn(pool, 16, 8, 128, generator=g).to("cuda", torch.bfloat16) for _ in range(2))
    q = torch.randn(sum(q_lens), 16, 128, generator=g).to("cuda", torch.bfloat16)
    cu = torch.tensor([0, *torch.tensor(q_lens).cumsum(0).tolist()], dtype=torch.int32, device="cuda")
    lens = torch.tensor(seq_lens, dtype=torch.int32, device="cuda")
    expected = reference(q, kc, vc, cu, lens, tables, scale=128**-0.5).float()
    got = paged_attention(q, kc, vc, cu, lens, tables, scale=128**-0.5, max_query_len=300, num_splits=num_splits,
                          out=torch.full_like(q, float("nan"))).float()
    assert ((got - expected).norm() / expected.norm()) < 1e-2
