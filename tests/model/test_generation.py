"""KV-cached decoding equals recomputation; sampling filters equal transformers' logits processors."""

import pytest
import torch
from tiny_models import VARIANTS, tiny_model
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from stellarbyte.infer import SamplingConfig, SlidingWindowCache, StaticCache, stream_generate
from stellarbyte.infer.sampling import apply_repetition_penalty, filter_logits


def left_pad(seqs, pad=0):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = s
        mask[i, width - len(s):] = 1
    return ids, mask


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cached_greedy_equals_recomputation(name):
    model = tiny_model(**VARIANTS[name], eos_token_id=None)
    ids = torch.randint(3, 128, (2, 7))
    reference = model.generate(ids, max_new_tokens=24, use_cache=False)
    assert reference.shape == (2, 31)
    kinds = ["dynamic", "static"] + (["sliding"] if "sliding_window" in VARIANTS[name] else [])
    for kind in kinds:
        assert torch.equal(model.generate(ids, max_new_tokens=24, cache_implementation=kind), reference), kind


def test_batched_left_padded_generation_equals_each_prompt_alone():
    model = tiny_model(eos_token_id=None)
    prompts = [torch.randint(3, 128, (n,)) for n in (8, 3, 5)]
    ids, mask = left_pad(prompts)
    for kind in ("dynamic", "static"):
        batched = model.generate(ids, attention_mask=mask, max_new_tokens=16, cache_implementation=kind)
        for i, p in enumerate(prompts):
            alone = model.generate(p[None], max_new_tokens=16)
            assert torch.equal(batched[i, -16:], alone[0, -16:])


def test_sliding_window_cache_keeps_only_the_window():
    model = tiny_model(sliding_window=6, eos_token_id=None)
    cache = SlidingWindowCache(6)
    with torch.no_grad():
        model(torch.randint(0, 128, (1, 20)), past_key_values=cache)
        assert cache.keys[0].shape[2] == 5
        model.forward_step(torch.tensor([3]), cache)
    assert cache.keys[1].shape[2] == 5 and cache.get_seq_length() == 21


def test_static_cache_is_preallocated_and_bounded():
    cache = StaticCache(2, 1, 2, 16, max_length=8)
    ptrs = [k.data_ptr() for k in cache.keys]
    model = tiny_model()
    with torch.no_grad():
        model(torch.randint(0, 128, (1, 8)), past_key_values=cache)
    assert [k.data_ptr() for k in cache.keys] == ptrs  # written in place
    with pytest.raises(ValueError, match="StaticCache holds 8 tokens"):
        model.forward_step(torch.tensor([1]), cache)


def test_max_length_and_max_new_tokens():
    model = tiny_model(eos_token_id=None)
    ids = torch.randint(3, 128, (1, 5))
    assert model.generate(ids, max_length=12).shape == (1, 12)
    assert model.generate(ids, max_new_tokens=4).shape == (1, 9)
    assert torch.equal(model.generate(ids, max_length=12), model.generate(ids, max_new_tokens=7))
    with pytest.raises(ValueError, match="max_length=5 leaves no room"):
        model.generate(ids, max_length=5)


def test_eos_stops_rows_and_pads_the_rest():
    model = tiny_model(eos_token_id=None)
    ids = torch.randint(3, 128, (2, 5))
    free = model.generate(ids, max_new_tokens=10)
    eos = int(free[0, 7])  # the 3rd token row 0 generates becomes the EOS
    out = model.generate(ids, max_new_tokens=10, eos_token_id=eos, pad_token_id=0)
    assert torch.equal(out[0, :8], free[0, :8])
    assert torch.all(out[0, 8:] == 0)
    first_eos_row1 = (free[1, 5:] == eos).nonzero()
    if len(first_eos_row1) == 0:
        assert torch.equal(out[1], free[1])
    stopped = model.generate(ids[:1], max_new_tokens=10, stop_token_ids=[eos])
    assert stopped.shape == (1, 8) and stopped[0, -1] == eos  # every row finished: generation ends early


def test_stream_yields_the_same_tokens():
    model = tiny_model(eos_token_id=None)
    ids = torch.randint(3, 128, (2, 5))
    streamed = list(model.generate(ids, max_new_tokens=8, stream=True))
    assert len(streamed) == 8 and streamed[0].shape == (2,)
    assert torch.equal(torch.stack(streamed, 1), model.generate(ids, max_new_tokens=8)[:, 5:])
    assert torch.equal(torch.stack(list(stream_generate(model, ids, max_new_tokens=8)), 1),
                       torch.stack(streamed, 1))


def test_seeded_sampling_is_reproducible_and_varies_with_seed():
    model = tiny_model(eos_token_id=None)
    ids = torch.randint(3, 128, (1, 4))
    kwargs = dict(max_new_tokens=100, do_sample=True, temperature=0.8, top_k=50, top_p=0.95)
    a = model.generate(ids, seed=1, **kwargs)
    assert torch.equal(a, model.generate(ids, seed=1, **kwargs))
    assert not torch.equal(a, model.generate(ids, seed=2, **kwargs))
    cached = model.generate(ids, seed=3, min_p=0.05, repetition_penalty=1.3, **kwargs)
    assert torch.equal(cached, model.generate(ids, seed=3, min_p=0.05, repetition_penalty=1.3, use_cache=False,
                                              **kwargs))


def test_filters_match_transformers_processors():
    torch.manual_seed(0)
    logits = torch.randn(4, 200) * 3
    ids = torch.randint(0, 200, (4, 30))
    neg = torch.finfo(torch.float32).min

    def same_support(ours, ref):
        assert torch.equal(ours > neg / 2, ref > neg / 2)
        torch.testing.assert_close(ours[ours > neg / 2], ref[ref > neg / 2])

    same_support(filter_logits(logits, top_k=17), TopKLogitsWarper(17)(ids, logits.clone()))
    for p in (0.3, 0.9, 0.999):
        same_support(filter_logits(logits, top_p=p), TopPLogitsWarper(p)(ids, logits.clone()))
    same_support(filter_logits(logits, min_p=0.1), MinPLogitsWarper(0.1)(ids, logits.clone()))
    seen = torch.zeros(4, 200, dtype=torch.bool).scatter_(1, ids, True)
    torch.testing.assert_close(apply_repetition_penalty(logits, seen, 1.7),
                               RepetitionPenaltyLogitsProcessor(1.7)(ids, logits.clone()))


def test_top_p_sampling_frequencies_follow_the_truncated_distribution():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    from stellarbyte.infer.sampling import next_token

    cfg = SamplingConfig(do_sample=True, top_p=0.8)
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([next_token(logits, cfg, generator=gen) for _ in range(4000)])
    freq = torch.bincount(draws.flatten(), minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.03, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-1.0, do_sample=True), "temperature"),
    (dict(top_p=0.0, do_sample=True), "top_p"),
    (dict(top_k=-5, do_sample=True), "top_k"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(cache_implementation="paged"), "cache_implementation"),
])
def test_bad_generation_arguments(kwargs, match):
    model = tiny_model()
    with pytest.raises(ValueError, match=match):
        model.generate(torch.tensor([[1, 2, 3]]), **kwargs)
