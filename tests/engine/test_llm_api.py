"""The offline API end to end (checkpoint directory with tokenizer, string prompts), KV sizing from a memory
budget, the paged step cache against a plain forward, and clear errors for bad requests."""

import pytest
import torch
from tiny_models import save_tiny_model_dir, tiny_model

from stellarbyte.infer.engine import LLM, EngineConfig, SamplingParams
from stellarbyte.infer.engine.block_manager import BlockManager
from stellarbyte.infer.engine.kv_cache import PagedKVCache, bytes_per_block
from stellarbyte.infer.engine.model_runner import ModelRunner
from stellarbyte.infer.engine.scheduler import ScheduledBatch
from stellarbyte.infer.engine.sequence import Sequence

GREEDY = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine_ckpt")
    model, tok = save_tiny_model_dir(out)
    return out, model, tok


def test_llm_from_directory_with_string_prompts(model_dir):
    path, model, tok = model_dir
    llm = LLM(path, block_size=4, num_blocks=32)
    texts = ["the cat sat", "a dog ran to the park"]
    outs = llm.generate(texts, GREEDY)
    for text, out in zip(texts, outs):
        ids = tok.encode(text)
        ref = model.generate(torch.tensor([ids]), max_new_tokens=8, eos_token_id=[])[0, len(ids):].tolist()
        assert out.prompt == text and out.prompt_token_ids == ids
        assert out.outputs[0].token_ids == ref
        assert out.outputs[0].text == tok.decode(ref, skip_special_tokens=True)
    single = llm.generate("the cat sat", GREEDY)  # one prompt, not a list
    assert single[0].outputs[0].token_ids == outs[0].outputs[0].token_ids


def test_kv_pool_sized_from_memory_budget():
    model = tiny_model()
    c = model.config
    per_block = bytes_per_block(c.num_hidden_layers, 16, c.num_key_value_heads, c.head_dim, torch.float32)
    assert per_block == 2 * 2 * 16 * 2 * 16 * 4  # K and V, 2 layers, 16 tokens, 2 heads, dim 16, fp32
    llm = LLM(model, kv_cache_memory_bytes=10 * per_block + 7)
    assert llm.engine.kv_cache.num_blocks == 10
    assert tuple(llm.engine.kv_cache.keys[0].shape) == (10, 16, 2, 16)
    with pytest.raises(ValueError, match="smaller than one KV block"):
        LLM(model, kv_cache_memory_bytes=per_block - 1)
    default = LLM(model, max_num_seqs=3).engine.kv_cache.num_blocks
    assert default == 3 * (c.context_length // 16)


def test_paged_step_cache_matches_plain_forward():
    """Mixed step: one sequence's second prefill chunk beside another's decode, blocks scattered."""
    model = tiny_model().double()
    c = model.config
    cache = PagedKVCache(c.num_hidden_layers, 16, 4, c.num_key_value_heads, c.head_dim, torch.float64)
    runner, bm = ModelRunner(model, cache), BlockManager(16, 4)
    bm.free.move_to_end(0)  # scatter: the first sequence does not start at block 0
    a, b = (Sequence(r, p, SamplingParams()) for r, p in (("a", list(range(3, 14))), ("b", [5, 9, 2, 7, 1])))
    batch = ScheduledBatch([a, b], [bm.admit(a, 6), bm.admit(b, 100)])
    runner.run(batch)
    a.num_computed_tokens, b.num_computed_tokens = 6, 5
    b.append_token(42)
    assert bm.allocate_slots(a, 5) and bm.allocate_slots(b, 1)
    input_ids, position_ids, mask, meta = runner.prepare(ScheduledBatch([a, b], [5, 1]))
    assert input_ids.tolist() == [a.token_ids[6:], [0, 0, 0, 0, 42]]  # right-aligned
    assert position_ids.tolist() == [[6, 7, 8, 9, 10], [0, 0, 0, 0, 5]]
    assert mask.tolist() == [[1] * 11, [0] * 5 + [1] * 6]
    expected_slots = [a.block_table[p // 4] * 4 + p % 4 for p in range(6, 11)] + [b.block_table[1] * 4 + 1]
    assert meta.slot_mapping.tolist() == expected_slots
    logits = runner.run(ScheduledBatch([a, b], [5, 1]))
    with torch.no_grad():
        for row, seq in enumerate((a, b)):
            ref = model(torch.tensor([seq.token_ids])).logits[0, -1].float()
            torch.testing.assert_close(logits[row], ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("prompt, params, match", [
    ([], GREEDY, "prompt is empty"),
    ([1, 500], GREEDY, r"ints in \[0, 128\)"),
    (list(range(128)), GREEDY, "context window is 128"),
    ([1] * 120, SamplingParams(max_tokens=9), "use max_tokens <= 8"),
    ([1] * 10, SamplingParams(max_tokens=100), "needs 7 KV blocks but the pool has 6"),
    ([1, 2], SamplingParams(stop=["x"]), "stop strings need a tokenizer"),
])
def test_bad_requests_raise_and_leave_the_engine_usable(prompt, params, match):
    model = tiny_model()
    llm = LLM(model, block_size=16, num_blocks=6)
    with pytest.raises(ValueError, match=match):
        llm.generate([[3, 4, 5], prompt], [GREEDY, params])
    assert not llm.engine.has_unfinished_requests()  # the good request queued first was withdrawn
    assert llm.engine.get_stats().num_free_blocks == 6
    out = llm.generate([[3, 4, 5]], GREEDY)[0].outputs[0]
    assert len(out.token_ids) == 8


def test_api_misuse():
    model = tiny_model()
    with pytest.raises(TypeError, match="unknown engine options"):
        LLM(model, blocksize=4)
    with pytest.raises(ValueError, match="EngineConfig.block_size"):
        EngineConfig(block_size=0)
    llm = LLM(model)
    with pytest.raises(ValueError, match="string prompts need a tokenizer"):
        llm.generate("hello")
    with pytest.raises(ValueError, match="2 SamplingParams for 1 prompts"):
        llm.generate([[1, 2]], [GREEDY, GREEDY])
    with pytest.raises(ValueError, match="already in use"):
        llm.engine.add_request([1], GREEDY, request_id="x")
        llm.engine.add_request([1], GREEDY, request_id="x")


def test_interrupted_generate_releases_everything(monkeypatch):
    llm = LLM(tiny_model(), block_size=4, num_blocks=16)
    real_step, calls = llm.engine.step, []

    def failing_step():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step()

    monkeypatch.setattr(llm.engine, "step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        llm.generate([[1, 2, 3, 4, 5], [6, 7]], GREEDY)
    assert not llm.engine.has_unfinished_requests() and llm.engine.get_stats().num_free_blocks == 16
    assert llm.engine.requests == {}


def test_gpu_memory_utilization_budget():
    from stellarbyte.infer.engine.config import kv_budget_from_utilization

    gib = 2**30
    assert kv_budget_from_utilization(free_bytes=70 * gib, total_bytes=80 * gib, utilization=0.9) == 62 * gib
    with pytest.raises(ValueError, match="already in use"):
        kv_budget_from_utilization(free_bytes=10 * gib, total_bytes=80 * gib, utilization=0.5)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        EngineConfig(gpu_memory_utilization=1.5)
