"""The server contract, end to end: a real `stellarbyte serve` process on localhost, the official openai client.

References: greedy tokens of ByteModel.generate() (our model's own decoding loop) and log_softmax of one full
forward for logprobs; the OpenAI API's object shapes as the openai package parses them.
"""

import json
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.serve.launch import ServerProcess
from stellarbyte.tokenizer import train_tokenizer

KEY = "test-key"
NAME = "tiny"
SENTENCE = "the cat dog sat on a mat and ran to the park big small red house tree bird sang happy"
WORDS = SENTENCE.split(" ")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve_api")
    corpus = out / "corpus.txt"
    corpus.write_text("".join(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(9)) + ".\n" for i in range(200)))
    tok = train_tokenizer([str(corpus)], 320, out)
    model = tiny_model(vocab_size=tok.vocab_size, eos_token_id=tok.eos_token_id, max_position_embeddings=512)
    model.save_pretrained(out)
    args = ["--api-key", KEY, "--served-model-name", NAME, "--threads", "1", "--num-blocks", "600", "--max-n", "4"]
    with ServerProcess(out, args) as proc:
        client = openai.OpenAI(base_url=proc.base_url + "/v1", api_key=KEY, max_retries=0, timeout=60)
        yield proc, client, model, tok


def greedy(model, ids, max_tokens, stops):
    """ByteModel.generate's greedy tokens, cut after the first stop id (the engine keeps it in token_ids)."""
    out = model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, eos_token_id=[])[0, len(ids):].tolist()
    for i, t in enumerate(out):
        if t in stops:
            return out[:i + 1], "stop"
    return out, "length"


def metrics(proc):
    with urllib.request.urlopen(proc.base_url + "/metrics?format=json", timeout=10) as r:
        return json.loads(r.read())


def chat_ids(tok, messages):
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)


def test_models_and_health(server):
    proc, client, _, _ = server
    assert [m.id for m in client.models.list().data] == [NAME]
    assert client.models.retrieve(NAME).id == NAME
    with urllib.request.urlopen(proc.base_url + "/health", timeout=10) as r:
        assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}


@pytest.mark.parametrize("prompt", ["the cat sat on", "a big red house and a small tree"])
def test_completion_stream_equals_text_equals_greedy(server, prompt):
    proc, client, model, tok = server
    ids = tok.encode(prompt)
    ref, reason = greedy(model, ids, 12, {tok.eos_token_id})
    want = tok.decode(ref, skip_special_tokens=True)
    raw = client.completions.with_raw_response.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0)
    full = raw.parse()
    assert raw.headers["x-request-id"] == full.id and full.id.startswith("cmpl-")
    assert full.choices[0].text == want and full.choices[0].finish_reason == reason
    assert (full.usage.prompt_tokens, full.usage.completion_tokens) == (len(ids), len(ref))
    assert full.usage.total_tokens == len(ids) + len(ref)
    chunks = list(client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    *body, usage = chunks
    assert "".join(c.choices[0].text for c in body) == want
    assert [c.choices[0].finish_reason for c in body] == [None] * (len(body) - 1) + [reason]
    assert usage.choices == [] and usage.usage.completion_tokens == len(ref)
    assert usage.usage.prompt_tokens == len(ids) and len({c.id for c in chunks}) == 1
    # token ids in, same answer (the prompt as a list of ints)
    assert client.completions.create(model=NAME, prompt=ids, max_tokens=12, temperature=0).choices[0].text == want


def test_chat_stream_equals_text_equals_greedy(server):
    proc, client, model, tok = server
    messages = [{"role": "system", "content": "you are a cat."}, {"role": "user", "content": "the dog ran to the park"}]
    ids = chat_ids(tok, messages)
    ref, reason = greedy(model, ids, 10, {tok.eos_token_id, tok.im_end_token_id})
    want = tok.decode(ref, skip_special_tokens=True)
    raw = client.chat.completions.with_raw_response.create(model=NAME, messages=messages, max_tokens=10,
                                                           temperature=0)
    full = raw.parse()
    assert raw.headers["x-request-id"] == full.id and full.id.startswith("chatcmpl-")
    msg = full.choices[0]
    assert msg.message.role == "assistant" and msg.message.content == want and msg.finish_reason == reason
    assert (full.usage.prompt_tokens, full.usage.completion_tokens) == (len(ids), len(ref))
    chunks = list(client.chat.completions.create(model=NAME, messages=messages, max_completion_tokens=10,
                                                 temperature=0, stream=True, stream_options={"include_usage": True}))
    first, *body, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in body) == want
    assert body[-1].choices[0].finish_reason == reason
    assert all(c.choices[0].finish_reason is None for c in body[:-1])
    assert usage.usage.completion_tokens == len(ref) and usage.usage.prompt_tokens == len(ids)


def test_raw_sse_wire_format(server):
    proc, _, _, _ = server
    body = json.dumps({"model": NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(proc.base_url + "/v1/chat/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream") and r.headers["X-Request-Id"]
        raw = r.read().decode()
    assert raw.endswith("data: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {r.headers["X-Request-Id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == NAME for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 4
    assert all(c["usage"] is None for c in chunks[:-1])


def test_64_concurrent_clients_each_get_their_answer(server):
    proc, client, model, tok = server
    prompts = [" ".join(WORDS[(i * 5 + j * 3) % len(WORDS)] for j in range(2 + i % 7)) for i in range(64)]
    refs = [tok.decode(greedy(model, tok.encode(p), 8, {tok.eos_token_id})[0], skip_special_tokens=True)
            for p in prompts]

    def ask(i):
        c = openai.OpenAI(base_url=proc.base_url + "/v1", api_key=KEY, max_retries=0, timeout=120)
        if i % 2:  # half stream, half not
            stream = c.completions.create(model=NAME, prompt=prompts[i], max_tokens=8, temperature=0, stream=True)
            return "".join(ch.choices[0].text for ch in stream)
        return c.completions.create(model=NAME, prompt=prompts[i], max_tokens=8, temperature=0).choices[0].text

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(ask, range(64)))
    assert answers == refs
    m = metrics(proc)
    assert m["kv_blocks_free"] == m["kv_blocks_total"] and m["num_requests_running"] == 0


def test_disconnect_mid_stream_frees_kv_blocks(server):
    proc, client, _, _ = server
    before = metrics(proc)
    assert before["kv_blocks_free"] == before["kv_blocks_total"]
    stream = client.completions.create(model=NAME, prompt="the cat sat on the mat", max_tokens=480, temperature=0,
                                       stream=True, extra_body={"ignore_eos": True})
    for i, _ in enumerate(stream):
        if i == 2:
            break
    during = metrics(proc)
    stream.close()  # the client goes away with 470+ tokens still to generate
    deadline = time.monotonic() + 20
    while True:
        after = metrics(proc)
        if after["kv_blocks_free"] == after["kv_blocks_total"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert during["kv_blocks_used"] > 0 and during["num_requests_running"] == 1
    assert after["kv_blocks_free"] == after["kv_blocks_total"] and after["num_requests_running"] == 0
    assert after["requests_aborted_total"] == before["requests_aborted_total"] + 1
    assert after["generation_tokens_total"] - before["generation_tokens_total"] < 480  # it really was cut short
    assert client.completions.create(model=NAME, prompt="the cat", max_tokens=2).usage.completion_tokens <= 2


def wait_until_idle(proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(proc)
        if m["kv_blocks_free"] == m["kv_blocks_total"] or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def test_disconnect_while_waiting_for_a_non_streamed_answer(server):
    proc, client, _, _ = server
    before = wait_until_idle(proc)
    body = json.dumps({"model": NAME, "prompt": "the cat", "max_tokens": 500, "temperature": 0,
                       "ignore_eos": True}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", proc.port)) as sock:
        sock.sendall(head + body)
        deadline = time.monotonic() + 20
        while metrics(proc)["num_requests_running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        during = metrics(proc)
    after = wait_until_idle(proc)  # the socket is closed: the server notices and aborts
    assert during["num_requests_running"] == 1 and during["kv_blocks_used"] > 0
    assert after["kv_blocks_free"] == after["kv_blocks_total"] and after["num_requests_running"] == 0
    assert after["requests_aborted_total"] == before["requests_aborted_total"] + 1
    assert after["generation_tokens_total"] - before["generation_tokens_total"] < 500


def test_list_of_prompts_gives_indexed_choices(server):
    proc, client, model, tok = server
    prompts = ["the cat", "a red bird sang", "the park"]
    r = client.completions.create(model=NAME, prompt=prompts, max_tokens=5, temperature=0, n=2)
    assert [c.index for c in r.choices] == list(range(6))  # prompt i's j-th completion is i * n + j
    for i, p in enumerate(prompts):
        ref, _ = greedy(model, tok.encode(p), 5, {tok.eos_token_id})
        want = tok.decode(ref, skip_special_tokens=True)
        assert r.choices[2 * i].text == r.choices[2 * i + 1].text == want  # greedy: both completions agree
    assert r.usage.prompt_tokens == sum(len(tok.encode(p)) for p in prompts)
    streamed = {}
    for chunk in client.completions.create(model=NAME, prompt=prompts, max_tokens=5, temperature=0, n=2, stream=True):
        c = chunk.choices[0]
        streamed[c.index] = streamed.get(c.index, "") + c.text
    assert [streamed[i] for i in range(6)] == [c.text for c in r.choices]


def test_stop_strings(server):
    proc, client, model, tok = server
    prompt = "the dog sat on a mat"
    ref, _ = greedy(model, tok.encode(prompt), 24, set())
    text = tok.decode(ref, skip_special_tokens=True)
    start = next(i for i in range(3, len(text) - 2) if "\ufffd" not in text[i:i + 2] and text[i:i + 2].strip())
    stop = text[start:start + 2]
    want = text[:text.find(stop)]
    kw = dict(model=NAME, prompt=prompt, max_tokens=24, temperature=0, stop=[stop, "zzzz"],
              extra_body={"ignore_eos": True})
    full = client.completions.create(**kw)
    assert full.choices[0].text == want and full.choices[0].finish_reason == "stop"
    streamed = list(client.completions.create(**kw, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == want
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_n2_with_seed(server):
    proc, client, _, _ = server
    kw = dict(model=NAME, prompt="the red bird sang", max_tokens=8, temperature=1.0)
    a = client.completions.create(**kw, n=2, seed=7)
    b = client.completions.create(**kw, n=2, seed=7)
    assert [c.index for c in a.choices] == [0, 1]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    singles = [client.completions.create(**kw, seed=7 + i).choices[0].text for i in range(2)]  # i-th uses seed + i
    assert [c.text for c in a.choices] == singles and singles[0] != singles[1]
    counted = client.completions.create(**kw, n=2, seed=7, logprobs=0)  # logprobs do not change sampling
    assert [c.text for c in counted.choices] == singles
    assert counted.usage.completion_tokens == sum(len(c.logprobs.tokens) for c in counted.choices)
    chat = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "hi"}], n=2, seed=3,
                                          max_tokens=4)
    assert [c.index for c in chat.choices] == [0, 1]


def _reference_logprobs(model, ids, out):
    with torch.no_grad():
        logits = model(torch.tensor([ids + out])).logits[0, len(ids) - 1:-1]  # (T_out, V)
    return torch.log_softmax(logits.float(), -1)


def test_completion_logprobs(server):
    proc, client, model, tok = server
    prompt = "the small cat"
    ids = tok.encode(prompt)
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=6, temperature=0, logprobs=3,
                                  extra_body={"ignore_eos": True})
    lp = r.choices[0].logprobs
    out, _ = greedy(model, ids, 6, set())
    ref = _reference_logprobs(model, ids, out)
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 6
    assert lp.tokens == [tok.decode([t]) for t in out]
    assert lp.token_logprobs == pytest.approx([float(ref[i, t]) for i, t in enumerate(out)], abs=1e-4)
    for i, top in enumerate(lp.top_logprobs):
        best = torch.topk(ref[i], 3)
        want = {tok.decode([int(t)]): float(v) for t, v in zip(best.indices, best.values)}
        assert top == pytest.approx(want, abs=1e-4)
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(6)]


def test_chat_logprobs_and_stream_logprobs(server):
    proc, client, model, tok = server
    messages = [{"role": "user", "content": "a happy dog"}]
    ids = chat_ids(tok, messages)
    kw = dict(model=NAME, messages=messages, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2,
              extra_body={"ignore_eos": True})
    r = client.chat.completions.create(**kw)
    content = r.choices[0].logprobs.content
    out = greedy(model, ids, 5, {tok.im_end_token_id})[0]
    ref = _reference_logprobs(model, ids, out)
    assert len(content) == len(out) == r.usage.completion_tokens
    for i, entry in enumerate(content):
        assert entry.token == tok.decode([out[i]]) and entry.bytes == list(entry.token.encode())
        assert entry.logprob == pytest.approx(float(ref[i, out[i]]), abs=1e-4)
        assert len(entry.top_logprobs) == 2 and entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob
        assert entry.top_logprobs[0].logprob == pytest.approx(float(ref[i].max()), abs=1e-4)
    streamed = [e for c in client.chat.completions.create(**kw, stream=True) if c.choices and c.choices[0].logprobs
                for e in c.choices[0].logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in content]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in content], abs=1e-6)
