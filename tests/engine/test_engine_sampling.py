"""Per-request sampling: seeded parity with generate(), seed reproducibility whatever the batch, n > 1,
penalties by their published formulas, logprobs against log_softmax of the full forward, stop strings."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.sampler import penalize
from stellarbyte.infer.engine.sequence import Sequence


def prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in lengths]


@pytest.fixture(scope="module")
def model():
    return tiny_model().double()


def sampled(**kwargs):
    base = dict(temperature=0.9, top_k=40, top_p=0.95, min_p=0.01, max_tokens=12, ignore_eos=True)
    base.update(kwargs)
    return SamplingParams(**base)


def test_seeded_sampling_matches_generate(model):
    p = prompts((6,), seed=1)[0]
    out = LLM(model, block_size=4, num_blocks=32).generate([p], sampled(seed=1234))[0].outputs[0].token_ids
    ref = model.generate(torch.tensor([p]), max_new_tokens=12, do_sample=True, temperature=0.9, top_k=40,
                         top_p=0.95, min_p=0.01, seed=1234, eos_token_id=[])[0, 6:].tolist()
    assert out == ref


def test_seed_reproducible_regardless_of_batch_and_preemption(model):
    p = prompts((8,), seed=2)[0]
    alone = LLM(model, block_size=4, num_blocks=32).generate([p], sampled(seed=7))[0].outputs[0].token_ids
    others = prompts((20, 3, 25, 11), seed=3)
    llm = LLM(model, block_size=4, num_blocks=14, max_num_batched_tokens=8)  # small: forces preemption
    outs = llm.generate(others[:2] + [p] + others[2:], [sampled(seed=i) for i in range(2)] + [sampled(seed=7)]
                        + [sampled(seed=i) for i in range(2)])
    assert llm.engine.get_stats().num_preemptions > 0
    assert outs[2].outputs[0].token_ids == alone
    different = LLM(model, block_size=4, num_blocks=32).generate([p], sampled(seed=8))[0].outputs[0].token_ids
    assert different != alone


def test_n_completions_are_seed_plus_index_and_share_the_prompt(model):
    p = prompts((13,), seed=4)[0]
    llm = LLM(model, block_size=4, num_blocks=64)
    out = llm.generate([p], sampled(seed=100, n=3))[0]
    assert [c.index for c in out.outputs] == [0, 1, 2]
    assert llm.engine.block_manager.stats.hit_tokens == 2 * 12  # siblings reuse the 3 full prompt blocks
    singles = [llm.generate([p], sampled(seed=100 + i))[0].outputs[0].token_ids for i in range(3)]
    assert [c.token_ids for c in out.outputs] == singles
    assert len({tuple(s) for s in singles}) == 3


def test_presence_and_frequency_penalties_follow_openai_formula():
    seq = Sequence("r", [1, 2, 3], SamplingParams(presence_penalty=0.5, frequency_penalty=0.25))
    for t in (4, 4, 4, 2):
        seq.append_token(t)
    logits = torch.linspace(-1, 1, 8)
    expected = logits.clone()
    expected[4] -= 0.5 + 0.25 * 3  # generated three times
    expected[2] -= 0.5 + 0.25 * 1  # once in the output (its prompt occurrence does not count)
    torch.testing.assert_close(penalize(logits, seq), expected)


def test_logprobs_match_log_softmax_of_full_forward(model):
    p = prompts((9,), seed=5)[0]
    out = LLM(model, block_size=4, num_blocks=32).generate(
        [p], SamplingParams(temperature=0, max_tokens=5, ignore_eos=True, logprobs=3))[0].outputs[0]
    full = torch.tensor([p + out.token_ids])
    with torch.no_grad():
        ref = torch.log_softmax(model(full).logits[0].float(), -1)[len(p) - 1:-1]  # (5, V) at each choice
    total = 0.0
    for step, (token, lp) in enumerate(zip(out.token_ids, out.logprobs)):
        top = torch.topk(ref[step], 3)
        assert set(lp) == set(top.indices.tolist()) | {token}
        assert token == int(top.indices[0])  # greedy picks the top-1
        for t, v in lp.items():
            assert v == pytest.approx(float(ref[step, t]), abs=1e-5)
        total += lp[token]
    assert out.cumulative_logprob == pytest.approx(total)


class CharTokenizer:
    """Stand-in tokenizer: id i <-> one character; enough for the engine's stop-string logic."""

    def encode(self, text):
        return [ord(c) - 32 for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(32 + i) for i in ids)


def test_stop_strings_end_and_are_cut_from_text(model):
    tok = CharTokenizer()
    llm = LLM(model, tokenizer=tok, block_size=4, num_blocks=32)
    free = llm.generate(["hello world"], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))[0]
    text = free.outputs[0].text
    assert text == tok.decode(free.outputs[0].token_ids) and free.prompt == "hello world"
    stop = text[5:7]
    out = llm.generate(["hello world"], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True,
                                                       stop=[stop]))[0].outputs[0]
    cut = text.index(stop)
    assert out.text == text[:cut] and out.finish_reason == "stop" and out.stop_reason == stop
    assert out.token_ids == free.outputs[0].token_ids[:cut + len(stop)]  # ids run through the stop string


def test_filter_rows_equals_filter_logits_row_by_row():
    from stellarbyte.infer.engine.sampler import filter_rows
    from stellarbyte.infer.sampling import filter_logits

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 64, generator=g) * 3
    settings = [(0, 1.0, 0.0), (5, 1.0, 0.0), (0, 0.8, 0.0), (0, 1.0, 0.2), (10, 0.9, 0.05)]
    got = filter_rows(logits, torch.tensor([s[0] for s in settings]), torch.tensor([s[1] for s in settings]),
                      torch.tensor([s[2] for s in settings]))
    for i, (k, p, m) in enumerate(settings):
        assert torch.equal(got[i], filter_logits(logits[i:i + 1], k, p, m)[0]), settings[i]


def test_mixed_batch_greedy_rows_unaffected_by_sampled_neighbours(model):
    ps = prompts((6, 9, 4), seed=11)
    llm = LLM(model, block_size=4, num_blocks=64)
    greedy = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    alone = llm.generate([ps[1]], greedy)[0].outputs[0].token_ids
    outs = llm.generate(ps, [sampled(), greedy, sampled(top_k=3)])
    assert outs[1].outputs[0].token_ids == alone
    assert all(len(o.outputs[0].token_ids) == 12 for o in (outs[0], outs[2]))
