"""Conversation memory: the drop-oldest-turns policy, and KV reuse of earlier turns through the prefix cache."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.conversation import fit_conversation
from stellarbyte.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv_tok")
    corpus = out / "corpus.txt"
    corpus.write_text("hello there, how are you? i am fine. tell me a story about a cat.\n" * 50)
    return train_tokenizer([str(corpus)], 300, out)


def chat(n_turns):
    msgs = [{"role": "system", "content": "you are a cat."}]
    for i in range(n_turns):
        msgs.append({"role": "user", "content": f"hello {i}, tell me a story"})
        msgs.append({"role": "assistant", "content": f"i am fine {i}, a cat story"})
    return msgs + [{"role": "user", "content": "how are you?"}]


def test_everything_kept_when_it_fits(tok):
    msgs = chat(3)
    fitted = fit_conversation(msgs, tok, context_length=4096, max_tokens=16)
    assert fitted.messages == msgs and fitted.num_dropped_messages == 0
    assert fitted.prompt_token_ids == tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)


def test_oldest_turns_dropped_system_kept(tok):
    msgs = chat(6)
    full = len(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True))
    two_turns = chat(2)
    two_turns[1:-1] = msgs[-5:-1]  # system + the last two exchanges + the final question
    need = len(tok.apply_chat_template(two_turns, add_generation_prompt=True, tokenize=True))
    fitted = fit_conversation(msgs, tok, context_length=need + 10, max_tokens=10)
    assert full > need + 10 > len(fitted.prompt_token_ids)
    assert fitted.messages == two_turns and fitted.num_dropped_messages == 8
    assert fitted.messages[0]["role"] == "system" and fitted.messages[-1]["content"] == "how are you?"


def test_errors(tok):
    with pytest.raises(ValueError, match="alone take"):
        fit_conversation(chat(0), tok, context_length=12, max_tokens=4)
    with pytest.raises(ValueError, match="last message must come from the user"):
        fit_conversation(chat(1)[:-1], tok, context_length=512, max_tokens=4)
    with pytest.raises(ValueError, match="messages is empty"):
        fit_conversation([], tok, context_length=512, max_tokens=4)


def test_second_turn_reuses_first_turn_blocks(tok):
    model = tiny_model(vocab_size=tok.vocab_size, max_position_embeddings=512)
    llm = LLM(model, tokenizer=tok, block_size=4, num_blocks=128)
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    msgs = chat(0)
    turn1 = fit_conversation(msgs, tok, 512, 8).prompt_token_ids
    answer = llm.generate([turn1], params)[0].outputs[0]
    msgs = msgs + [{"role": "assistant", "content": answer.text}, {"role": "user", "content": "tell me more"}]
    turn2 = fit_conversation(msgs, tok, 512, 8).prompt_token_ids
    out = llm.generate([turn2], params)[0]
    shared = 0
    while shared < len(turn1) and turn1[shared] == turn2[shared]:
        shared += 1
    assert shared >= len(turn1) - 1  # the new prompt extends the old one (the last newline may merge)
    assert out.num_cached_tokens >= shared // 4 * 4 > 0  # turn 1's full blocks are served from the cache


def test_llm_chat_fits_renders_and_stops_at_end_of_turn(tok):
    model = tiny_model(vocab_size=tok.vocab_size, max_position_embeddings=512)
    llm = LLM(model, tokenizer=tok, block_size=4, num_blocks=128)
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    convs = [chat(0), chat(2)]
    outs = llm.chat(convs, params)
    for conv, out in zip(convs, outs):
        ids = fit_conversation(conv, tok, 512, 8).prompt_token_ids
        assert out.prompt_token_ids == ids
        ref = llm.generate([ids], SamplingParams(temperature=0, max_tokens=8, ignore_eos=True,
                                                 stop_token_ids=[tok.im_end_token_id]))[0]
        assert out.outputs[0].token_ids == ref.outputs[0].token_ids
    # the end-of-turn token ends a reply: make the model's first greedy token im_end's id and see it stop
    first = outs[0].outputs[0].token_ids[0]
    with torch.no_grad():
        model.lm_head.weight[[first, tok.im_end_token_id]] = model.lm_head.weight[[tok.im_end_token_id, first]]
    out = LLM(model, tokenizer=tok, block_size=4, num_blocks=128).chat(convs[0], params)[0].outputs[0]
    assert out.token_ids == [tok.im_end_token_id] and out.finish_reason == "stop"
    with pytest.raises(ValueError, match="needs a tokenizer"):
        LLM(tiny_model()).chat(chat(0))
