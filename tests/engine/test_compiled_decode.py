"""compile_decode: the torch.compile'd decode forward (inductor on CPU here, paged attention and the KV write as
custom ops, q/k/v and gate/up fused into one GEMM each) against the eager flat runner: the same logits at a decode
step, the same greedy tokens as the eager engine and generate(), one compiled graph per decode batch size, 4 GEMMs
per layer, and no copy of the KV cache in the compiled code (the custom op's in-place write must survive
functionalization). The projection-fusion pass alone: outputs equal the unfused module's, with and without bias."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.scheduler import ScheduledBatch
from stellarbyte.kernels.ops import paged_library

QWEN_LIKE = dict(qk_norm=True, num_key_value_heads=2, tie_word_embeddings=True)  # the benchmark's features


@pytest.mark.slow  # one inductor compile on CPU: ~20 s on 2 shared cores
def test_compiled_decode_matches_eager_step_and_generate():
    from torch._dynamo.utils import counters
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    counters.clear()
    model = tiny_model(**QWEN_LIKE)
    ps = [[5, 9, 2, 7, 1], list(range(7, 30)), [9]]
    greedy = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    options = dict(attention_backend="flat", num_blocks=64, block_size=4, max_num_seqs=4)
    eager = LLM(model, **options)
    compiled = LLM(model, compile_decode=True, compile_max_batch_size=4, **options)
    assert eager.engine.runner.compiled is None and compiled.engine.runner.compiled is not None

    outs, codes = run_and_get_code(lambda: compiled.generate(ps, greedy))
    expected = [o.outputs[0].token_ids for o in eager.generate(ps, greedy)]
    assert [o.outputs[0].token_ids for o in outs] == expected
    for p, tokens in zip(ps, expected):
        ref = model.generate(torch.tensor([p]), max_new_tokens=6, eos_token_id=[])[0, len(p):].tolist()
        assert tokens == ref
    # one graph for the decode steps of 3 sequences (prefill steps stay eager), no recompile step after step
    assert counters["stats"]["unique_graphs"] == 1
    code = "\n".join(codes)
    layers = model.config.num_hidden_layers
    assert code.count("torch.ops.stellarbyte.paged_write_kv.default(") == layers
    assert code.count("torch.ops.stellarbyte.paged_attention.default(") == layers
    assert "clone" not in code and ".copy_(" not in code  # the cache is written in place, never copied
    # fuse_projections (default on): q/k/v and gate/up as one GEMM each -> qkv, o, gate_up, down per layer + lm_head
    assert compiled.engine.runner.fused_groups == [2 * layers]
    assert code.count("extern_kernels.mm(") + code.count("extern_kernels.addmm(") == 4 * layers + 1

    # one decode step by hand: compiled logits == eager logits (same runner, same metadata, same cache)
    runner = compiled.engine.runner
    engine = compiled.engine
    for p in ps:
        engine.add_request(p, SamplingParams(temperature=0, max_tokens=4, ignore_eos=True))
    engine.step()  # prefill of all three prompts (eager)
    batch = engine.scheduler.schedule()
    assert max(batch.num_new_tokens) == 1
    meta = runner.builder.build(ScheduledBatch(batch.seqs, batch.num_new_tokens))
    assert runner.uses_compiled(meta)
    with torch.inference_mode():
        got = runner.forward(meta)
        want = runner._model_forward(meta.input_ids, meta.positions, meta.slot_mapping, meta.cu_seqlens_q,
                                     meta.seq_lens, meta.block_tables, meta.logits_indices, 1, 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got.shape == (3, model.config.vocab_size)
    for rid in list(engine.requests):
        engine.abort_request(rid)


def test_compile_decode_config_errors_and_default():
    with pytest.raises(ValueError, match="compile_decode"):
        EngineConfig(compile_decode="yes")
    with pytest.raises(ValueError, match="compile_max_batch_size"):
        EngineConfig(compile_max_batch_size=0)
    llm = LLM(tiny_model(), attention_backend="flat", num_blocks=16, block_size=4)
    assert llm.engine.runner.compiled is None  # auto: compile only for triton + CUDA graphs on a GPU


def test_paged_custom_ops_equal_the_reference():
    """The custom ops called directly (eager) compute what the reference functions compute."""
    from stellarbyte.kernels.reference.paged_attention import paged_attention, write_kv

    g = torch.Generator().manual_seed(0)
    kc, vc = torch.zeros(6, 4, 2, 8), torch.zeros(6, 4, 2, 8)
    k, v = torch.randn(3, 2, 8, generator=g), torch.randn(3, 2, 8, generator=g)
    slots = torch.tensor([5, -1, 13])
    torch.ops.stellarbyte.paged_write_kv(k, v, kc, vc, slots, "flat")
    kr, vr = torch.zeros_like(kc), torch.zeros_like(vc)
    write_kv(k, v, kr, vr, slots)
    assert torch.equal(kc, kr) and torch.equal(vc, vr) and kc.view(-1, 2, 8)[5].equal(k[0])
    q = torch.randn(3, 4, 8, generator=g)
    cu, lens = torch.tensor([0, 2, 3]), torch.tensor([6, 3])
    tables = torch.tensor([[1, 3, 0], [2, 0, 0]])
    got = torch.ops.stellarbyte.paged_attention(q, kc, vc, cu, lens, tables, 0.3, 0, 2, 1, "flat")
    torch.testing.assert_close(got, paged_attention(q, kc, vc, cu, lens, tables, 0.3, None))
    with pytest.raises(ValueError, match="unknown backend"):
        paged_library.paged_attention(q, kc, vc, cu, lens, tables, 0.3, 0, 2, 1, "cuda")


class _Siblings(torch.nn.Module):
    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(8, n, bias=bias) for n in (6, 4, 4))
        self.o = torch.nn.Linear(14, 8, bias=bias)

    def forward(self, x):
        h = torch.cat([self.q(x).relu(), self.k(x) * 2, self.v(x)], -1)
        return self.o(h)  # o reads another input: not fused


@pytest.mark.parametrize("bias", [False, True])
def test_fuse_sibling_linears_pass(bias):
    from stellarbyte.infer.engine.fuse_projections import fuse_sibling_linears

    torch.manual_seed(0)
    module, x = _Siblings(bias), torch.randn(3, 5, 8)
    weights, seen = {}, []

    def backend(gm, example_inputs):  # the pass alone, the rewritten graph run eagerly
        seen.append(fuse_sibling_linears(gm, example_inputs, weights))
        linears = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is torch._C._nn.linear]
        seen.append(len(linears))
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(module, backend=backend, fullgraph=True)(x)
        torch.testing.assert_close(got, module(x), rtol=1e-6, atol=1e-6)
    assert seen == [1, 2]  # one group (q, k, v) -> one linear, plus o
    (fused_w, fused_b), = weights.values()
    assert fused_w.shape == (14, 8) and torch.equal(fused_w[6:10], module.k.weight)
    assert (fused_b is None) == (not bias)


def test_each_runner_has_its_own_compile_cache(monkeypatch):
    """Dynamo's graph cache and its recompile limit (8) are per code object: nine engines in one process, each
    compiling its decode step, must not exhaust a shared cache (fullgraph=True would fail). Inductor is swapped for
    the fusion pass alone here, to keep the test fast."""
    from stellarbyte.infer.engine import flat_runner
    from stellarbyte.infer.engine.fuse_projections import fuse_sibling_linears

    def pass_only(weights, report=None):
        def backend(gm, example_inputs):
            fuse_sibling_linears(gm, example_inputs, weights)
            return gm.forward
        return backend

    monkeypatch.setattr(flat_runner, "fusing_inductor_backend", pass_only)
    model = tiny_model(**QWEN_LIKE)
    greedy = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)
    codes, engines = set(), []
    for i in range(9):  # one more engine than the limit of 8 a shared cache would allow
        llm = LLM(model, attention_backend="flat", num_blocks=16, block_size=4, compile_decode=True,
                  compile_max_batch_size=4)  # limit 8 per code object
        out = llm.generate([[1, 2, 3 + i]] * (1 + i % 3), greedy)  # decode batches of 1-3 sequences
        codes.add(id(llm.engine.runner.compiled.__wrapped__.__func__.__code__))
        engines.append(llm)  # alive: no id reuse
        assert len(out) == 1 + i % 3
    assert len(codes) == 9
    assert id(flat_runner.FlatModelRunner._model_forward.__code__) not in codes
