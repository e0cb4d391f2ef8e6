"""Exactness: the engine's greedy tokens equal ByteModel.generate()'s, token for token.

The reference is the contiguous-cache generate() of stellarbyte.infer (itself pinned against transformers in
tests/model). Models run in float64 so that a different but equivalent summation order (padding, chunked
prefill, gathered blocks) cannot flip an argmax; one float32 case checks the default dtype as well.
Each case mixes prompt lengths 1..30 with a block size of 4 and a token budget that chunks long prompts.
"""

import pytest
import torch
from tiny_models import VARIANTS, tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams

LENGTHS = (3, 17, 1, 30, 9, 12)


def prompts(lengths=LENGTHS, seed=0, vocab=128):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g).tolist() for n in lengths]


def reference(model, prompt, max_new, **kwargs):
    kwargs.setdefault("eos_token_id", [])
    out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, **kwargs)
    return out[0, len(prompt):].tolist()


def greedy(max_tokens=10, **kwargs):
    return SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True, **kwargs)


def check(model, llm, ps, max_tokens=10):
    outs = llm.generate(ps, greedy(max_tokens))
    for p, o in zip(ps, outs):
        assert o.prompt_token_ids == p
        assert o.outputs[0].token_ids == reference(model, p, max_tokens), f"prompt of length {len(p)}"
        assert o.outputs[0].finish_reason == "length"
    stats = llm.engine.get_stats()
    assert stats.num_free_blocks == stats.num_blocks  # every block came back
    return stats


VARIANT_NAMES = ["llama", "mha", "mqa", "sdpa", "qk_norm_bias", "window", "alibi", "xpos", "learned", "nope",
                 "layernorm_post", "offset_parallel_gelu"]


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_greedy_matches_generate_across_architectures(variant):
    model = tiny_model(**VARIANTS[variant]).double()
    check(model, LLM(model, block_size=4, num_blocks=64, max_num_batched_tokens=16), prompts())


@pytest.mark.parametrize("max_num_seqs", [1, 2, 8])
def test_greedy_matches_generate_for_batch_sizes(max_num_seqs):
    model = tiny_model().double()
    check(model, LLM(model, block_size=4, num_blocks=64, max_num_seqs=max_num_seqs), prompts(seed=1))


def test_float32_model():
    model = tiny_model()
    check(model, LLM(model, block_size=8, num_blocks=32), prompts(seed=2))


def test_tiny_pool_forces_preemption_and_stays_exact():
    model = tiny_model().double()
    llm = LLM(model, block_size=4, num_blocks=12, max_num_batched_tokens=32, enable_prefix_caching=False)
    stats = check(model, llm, prompts(seed=3), max_tokens=16)  # the 30-token prompt + 16 needs all 12 blocks
    assert stats.num_preemptions > 0


def test_prefix_cache_hits_with_shared_prefixes_stay_exact():
    model = tiny_model().double()
    system = prompts((13,), seed=4)[0]
    ps = [system + tail for tail in prompts((1, 5, 9, 2), seed=5)]
    llm = LLM(model, block_size=4, num_blocks=64)
    check(model, llm, ps[:1])  # the first conversation fills the cache
    outs = llm.generate(ps[1:], greedy(10))
    assert [o.num_cached_tokens for o in outs] == [12, 12, 12]  # three full blocks of the system prompt
    for p, o in zip(ps[1:], outs):
        assert o.outputs[0].token_ids == reference(model, p, 10)
    assert llm.engine.get_stats().prefix_cache_hit_rate > 0.3
    # a later turn of the same conversation reuses the blocks of the earlier turn and its answer
    answer = llm.generate([ps[0]], greedy(10))[0].outputs[0].token_ids
    turn2 = ps[0] + answer + [3, 4, 5]
    out = llm.generate([turn2], greedy(6))[0]
    # the answer's last token was sampled but never fed back, so 14 + 9 tokens have K/V: 5 full blocks
    assert out.num_cached_tokens == (len(ps[0]) + len(answer) - 1) // 4 * 4 == 20
    assert out.outputs[0].token_ids == reference(model, turn2, 6)


def test_preemption_with_prefix_cache_and_shared_prompts():
    model = tiny_model().double()
    system = prompts((10,), seed=6)[0]
    ps = [system + tail for tail in prompts((3, 7, 1, 12, 5), seed=7)]
    llm = LLM(model, block_size=2, num_blocks=24, max_num_batched_tokens=8)
    stats = check(model, llm, ps, max_tokens=12)
    assert stats.num_preemptions > 0 and stats.prefix_cache_hit_rate > 0


def test_eos_and_stop_token_ids_end_like_generate():
    base = tiny_model().double()
    p = prompts((7,), seed=8)[0]
    free_run = reference(base, p, 12)
    eos = free_run[4]  # a token greedy decoding reaches: generation must stop there
    model = tiny_model(eos_token_id=eos).double()
    llm = LLM(model, block_size=4, num_blocks=32)
    out = llm.generate([p], SamplingParams(temperature=0, max_tokens=12))[0].outputs[0]
    assert out.token_ids == free_run[:free_run.index(eos) + 1] == reference(model, p, 12, eos_token_id=eos)
    assert out.finish_reason == "stop" and out.stop_reason == eos
    out = llm.generate([p], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True,
                                           stop_token_ids=[free_run[6]]))[0].outputs[0]
    assert out.token_ids == free_run[:free_run.index(free_run[6]) + 1] and out.finish_reason == "stop"


def test_repetition_penalty_greedy_matches_generate():
    model = tiny_model().double()
    ps = prompts((5, 11), seed=9)
    llm = LLM(model, block_size=4, num_blocks=32)
    outs = llm.generate(ps, greedy(12, repetition_penalty=1.7))
    for p, o in zip(ps, outs):
        assert o.outputs[0].token_ids == reference(model, p, 12, repetition_penalty=1.7)


def test_max_tokens_none_runs_to_the_context_window():
    model = tiny_model(max_position_embeddings=40).double()
    p = prompts((33,), seed=10)[0]
    out = LLM(model, block_size=4).generate([p], greedy(None))[0].outputs[0]
    assert len(out.token_ids) == 7 and out.finish_reason == "length"
    assert out.token_ids == reference(model, p, 7)
