"""Overlapped steps (EngineConfig.overlap_steps): step i+1 is launched before step i's outputs are built. Forced on
here on the CPU: the tokens, streaming order, aborts in flight and block accounting must be those of the
synchronous engine."""

import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.llm_engine import LLMEngine


def prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in lengths]


def greedy(n):
    return SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)


def test_overlapped_greedy_equals_generate_with_preemption_and_prefix_cache():
    model = tiny_model().double()
    system = prompts((13,), seed=3)[0]
    ps = [system + p for p in prompts((3, 9, 1, 14, 6), seed=4)]
    llm = LLM(model, block_size=4, num_blocks=16, max_num_batched_tokens=16, attention_backend="flat",
              overlap_steps=True)
    assert llm.engine.overlap
    outs = llm.generate(ps, greedy(12))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p]), max_new_tokens=12, eos_token_id=[])[0, len(p):].tolist()
        assert o.outputs[0].token_ids == ref
    stats = llm.engine.get_stats()
    assert stats.num_preemptions > 0 and stats.prefix_cache_hit_rate > 0
    assert stats.num_free_blocks == stats.num_blocks and stats.num_generated_tokens == 5 * 12


def test_overlapped_streaming_matches_synchronous_and_abort_in_flight():
    model = tiny_model()
    runs = {}
    for overlap in (False, True):
        engine = LLMEngine(model, EngineConfig(block_size=4, num_blocks=32, attention_backend="flat",
                                               overlap_steps=overlap))
        engine.add_request([5, 6, 7, 8, 9], greedy(6), request_id="a")
        engine.add_request([1, 2], greedy(9), request_id="b")
        seen = []
        while engine.has_unfinished_requests():
            seen.append([(o.request_id, list(o.outputs[0].token_ids), o.finished) for o in engine.step()])
        runs[overlap] = seen
    assert runs[True] == runs[False]  # same outputs at the same steps
    engine = LLMEngine(model, EngineConfig(block_size=4, num_blocks=16, attention_backend="flat",
                                           overlap_steps=True))
    engine.add_request(list(range(1, 14)), greedy(20), request_id="x")
    engine.add_request([1, 2, 3], greedy(20), request_id="y")
    for _ in range(3):
        engine.step()
    assert engine._inflight is not None  # the next step is already launched
    engine.abort_request("x")
    out = engine.step()  # the in-flight step's result for x is dropped; y goes on
    assert [o.request_id for o in out] == ["y"] and len(out[0].outputs[0].token_ids) == 4
    engine.abort_request("y")
    assert not engine.has_unfinished_requests() and engine.get_stats().num_free_blocks == 16
    assert engine.step() == []
    engine.add_request([4, 5], greedy(3), request_id="z")  # the engine keeps serving after aborts
    results = []
    while engine.has_unfinished_requests():
        results += engine.step()
    ref = model.generate(torch.tensor([[4, 5]]), max_new_tokens=3, eos_token_id=[])[0, 2:].tolist()
    assert results[-1].finished and results[-1].outputs[0].token_ids == ref
