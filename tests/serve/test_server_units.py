"""The server's parts in process: request -> SamplingParams mapping, streaming deltas, metrics text, the app
without an API key, the web page mount, and the `serve` command's options and errors."""

import argparse
import json
import sys

import pytest
from starlette.testclient import TestClient
from tiny_models import save_tiny_model_dir

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.outputs import CompletionOutput
from stellarbyte.serve import create_app
from stellarbyte.serve.commands import add_parser, build_llm, parse_bytes
from stellarbyte.serve.errors import OpenAIError
from stellarbyte.serve.metrics import prometheus_text
from stellarbyte.serve.protocol import ChatCompletionRequest, CompletionRequest
from stellarbyte.serve.streaming import DeltaTracker


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve_units")
    model, tok = save_tiny_model_dir(out)
    return out, model, tok


def test_completion_request_maps_every_sampling_field():
    req = CompletionRequest(model="m", prompt="hi", max_tokens=7, temperature=0.5, top_p=0.9, n=2,
                            stop="x", seed=3, presence_penalty=0.1, frequency_penalty=-0.2, logprobs=2, top_k=5,
                            min_p=0.05, repetition_penalty=1.1, ignore_eos=True, stop_token_ids=[9], user="u")
    assert req.to_sampling_params() == SamplingParams(
        n=2, temperature=0.5, top_k=5, top_p=0.9, min_p=0.05, repetition_penalty=1.1, presence_penalty=0.1,
        frequency_penalty=-0.2, max_tokens=7, stop=["x"], stop_token_ids=[9], ignore_eos=True, seed=3, logprobs=2)
    defaults = CompletionRequest(model="m", prompt=[1, 2]).to_sampling_params()
    assert defaults == SamplingParams(max_tokens=16)  # OpenAI's completions default; temperature 1
    assert CompletionRequest(model="m", prompt=[1, 2]).prompts() == [[1, 2]]
    assert CompletionRequest(model="m", prompt=[[1], [2, 3]]).prompts() == [[1], [2, 3]]
    assert CompletionRequest(model="m", prompt=["a", "b"]).prompts() == ["a", "b"]
    with pytest.raises(OpenAIError, match="prompt is empty") as info:
        CompletionRequest(model="m", prompt=[]).prompts()
    assert info.value.param == "prompt" and info.value.status == 400


def test_chat_request_mapping():
    req = ChatCompletionRequest(model="m", messages=[
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]}],
        max_tokens=5, max_completion_tokens=9, logprobs=True, top_logprobs=3)
    assert req.template_messages() == [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "hello"}]
    params = req.to_sampling_params()
    assert params.max_tokens == 9 and params.logprobs == 3  # max_completion_tokens wins
    plain = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}]).to_sampling_params()
    assert plain.max_tokens is None and plain.logprobs is None  # chat: up to the window; no logprobs
    assert ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}],
                                 logprobs=True).to_sampling_params().logprobs == 0
    image = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": [{"type": "image_url"}]}])
    with pytest.raises(OpenAIError, match="text parts only"):
        image.template_messages()
    with pytest.raises(OpenAIError, match="last message must come from the user"):
        ChatCompletionRequest(model="m", messages=[{"role": "assistant", "content": "x"}]).template_messages()
    with pytest.raises(OpenAIError, match="stream_options is only allowed"):
        ChatCompletionRequest(model="m", messages=[], stream_options={"include_usage": True}).to_sampling_params()


def _out(text, ids, finish=None):
    return CompletionOutput(0, text, ids, finish)


def test_delta_tracker_holds_back_stop_prefixes_and_partial_characters():
    tracker = DeltaTracker(stop=["END"])
    assert tracker.update(_out("ab", [1, 2])).text == "ab"
    d = tracker.update(_out("abcE", [1, 2, 3]))  # "E" could start "END": held back
    assert d.text == "c" and d.token_ids == [3]
    d = tracker.update(_out("abcEN", [1, 2, 3, 4]))
    assert d.text == "" and d.token_ids == [4]  # nothing safe to send; the caller skips it
    d = tracker.update(_out("abcENx\ufffd", [1, 2, 3, 4, 5]))  # not a stop after all; half a character waits
    assert d.text == "ENx"
    d = tracker.update(_out("abcENx\u00e9", [1, 2, 3, 4, 5, 6], "length"))
    assert d.text == "\u00e9" and d.finish_reason == "length" and tracker.sent_text == "abcENx\u00e9"
    assert tracker.update(_out("abcENx\u00e9", [1, 2, 3, 4, 5, 6], "length")) is None  # done
    cut = DeltaTracker(stop=["END"])
    cut.update(_out("hi E", [1, 2]))
    d = cut.update(_out("hi ", [1, 2, 3], "stop"))  # the engine cut "END" from the text: nothing was sent early
    assert cut.sent_text == "hi " and d.finish_reason == "stop"


def test_prometheus_text():
    text = prometheus_text({"kv_blocks_total": 8, "kv_blocks_free": 5, "prefix_cache_hit_rate": 0.25})
    lines = text.splitlines()
    assert "# TYPE stellarbyte_kv_blocks_total gauge" in lines and "stellarbyte_kv_blocks_free 5" in lines
    assert "stellarbyte_prefix_cache_hit_rate 0.25" in lines and text.endswith("\n")


def test_app_without_key_and_web_page_mount(saved, tmp_path):
    path, model, tok = saved
    llm = LLM(model, tokenizer=tok, num_blocks=64)
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>chat</html>")
    (static / "app.js").write_text("// js")
    with TestClient(create_app(llm, "m", static_dir=static)) as client:
        assert client.get("/v1/models").json()["data"][0]["id"] == "m"  # no key configured: open
        assert client.get("/").text == "<html>chat</html>" and client.get("/static/app.js").text == "// js"
        r = client.post("/v1/completions", json={"model": "m", "prompt": "the cat", "max_tokens": 3,
                                                  "temperature": 0})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3
        m = client.get("/metrics?format=json").json()
        assert m["requests_finished_total"] == 1 and m["kv_blocks_total"] == 64 and m["kv_blocks_free"] == 64
    with TestClient(create_app(llm.engine, "m", static_dir=tmp_path / "missing")) as client:  # no page: still up
        assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 404
        assert client.get("/health").json() == {"status": "ok"}
    with pytest.raises(ValueError, match="needs a tokenizer"):
        create_app(LLM(model, num_blocks=8), "m")
    with pytest.raises(ValueError, match="LLM, LLMEngine or AsyncLLM"):
        create_app(model, "m")


def _args(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(), "serve")
    return parser.parse_args(["serve", *argv])


def test_serve_command_options_and_errors(saved, tmp_path, monkeypatch, capsys):
    path, model, tok = saved
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("1000") == 1000
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes("lots")
    llm = build_llm(_args([str(path), "--kv-memory", "1MiB", "--block-size", "8", "--max-num-seqs", "3",
                           "--attention-backend", "flat", "--no-prefix-caching"]))
    assert llm.engine.config.block_size == 8 and llm.engine.config.max_num_seqs == 3
    assert llm.engine.config.attention_backend == "flat" and not llm.engine.config.enable_prefix_caching
    assert llm.engine.config.kv_cache_memory_bytes == 2**20
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_llm(_args([str(tmp_path)]))
    model.save_pretrained(tmp_path / "no_tok")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        build_llm(_args([str(tmp_path / "no_tok")]))
    quantized = build_llm(_args([str(path), "--quantize", "int8", "--num-blocks", "16"]))  # dynamic int8, CPU
    linears = [m for m in quantized.engine.model.modules() if type(m).__name__ == "Linear" and "quantized" not in
               type(m).__module__]
    assert len(linears) == 1  # every decoder linear swapped; lm_head stays float (the quant module's policy)
    out = quantized.generate("the cat", SamplingParams(temperature=0, max_tokens=4, ignore_eos=True))
    assert len(out[0].outputs[0].token_ids) == 4
    monkeypatch.setitem(sys.modules, "stellarbyte.infer.quant", None)  # as in a build without the quant module
    with pytest.raises(ValueError, match="--quantize int8 needs stellarbyte.infer.quant"):
        build_llm(_args([str(path), "--quantize", "int8"]))
    with pytest.raises(SystemExit):
        _args(["--help"])
    help_text = capsys.readouterr().out
    for needle in ("curl", "OpenAI(base_url=", "--api-key", "STELLARBYTE_API_KEY", "--served-model-name", "--dtype",
                   "--device", "--max-num-seqs", "--kv-memory", "--num-blocks", "--quantize",
                   "--attention-backend"):
        assert needle in help_text, needle


def test_engine_failure_mid_request_is_reported_and_the_server_recovers(saved):
    path, model, tok = saved
    llm = LLM(model, tokenizer=tok, num_blocks=64)
    engine, real_step = llm.engine, llm.engine.step
    calls = {"n": 0}

    def flaky_step():
        calls["n"] += 1
        if calls["n"] == 2:  # the second step of a request fails (a device error, say)
            raise RuntimeError("device fell over")
        return real_step()

    engine.step = flaky_step
    # Starlette re-raises after a 500 so that servers log it; the test client must not turn that into a failure
    with TestClient(create_app(llm, "m", static_dir=None), raise_server_exceptions=False) as client:
        body = {"model": "m", "prompt": "the cat", "max_tokens": 6, "temperature": 0, "stream": True}
        with client.stream("POST", "/v1/completions", json=body) as r:
            assert r.status_code == 200  # the stream had started
            events = [line for line in r.iter_lines() if line]
        assert events[-1] == "data: [DONE]"
        error = json.loads(events[-2][len("data: "):])["error"]
        assert "device fell over" in error["message"] and error["type"] == "internal_error"
        assert engine.block_manager.num_free_blocks == 64  # the failed request was aborted
        calls["n"] = 1
        r = client.post("/v1/completions", json={**body, "stream": False})
        assert r.status_code == 500 and "device fell over" in r.json()["error"]["message"]
        r = client.post("/v1/completions", json={**body, "stream": False})  # later requests are served
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 6
        text = client.get("/metrics").text
        assert "stellarbyte_kv_blocks_total 64" in text and "stellarbyte_kv_blocks_free 64" in text
        assert "# TYPE stellarbyte_generation_tokens_total counter" in text
