"""Bad requests against a real server: each gets its status, an OpenAI error body naming the field, and the
server keeps serving. Reference: the OpenAI API's error object and the openai client's exception classes."""

import json
import urllib.error
import urllib.request

import openai
import pytest
from tiny_models import save_tiny_model_dir

from stellarbyte.serve.launch import ServerProcess

KEY = "s3cret"
NAME = "tiny"
CONTEXT = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve_errors")
    save_tiny_model_dir(out, "hello there, how are you? i am fine. tell me a story about a cat.\n",
                        max_position_embeddings=CONTEXT)
    with ServerProcess(out, ["--served-model-name", NAME, "--threads", "1", "--max-n", "4"],
                       env={"STELLARBYTE_API_KEY": KEY}) as proc:  # the key from the environment
        client = openai.OpenAI(base_url=proc.base_url + "/v1", api_key=KEY, max_retries=0, timeout=30)
        yield proc, client


def raw(proc, path, body=None, key=KEY, method=None):
    """(status, parsed JSON) of one request; body: bytes sent as is, or an object sent as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(proc.base_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def assert_error_body(body, param):
    err = body.get("error", body)  # the openai client keeps the inner object; raw requests see the envelope
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"] and err["param"] == param


def assert_still_serving(proc, client):
    assert raw(proc, "/health", key=None) == (200, {"status": "ok"})
    assert client.completions.create(model=NAME, prompt="hello", max_tokens=2).usage.completion_tokens <= 2


MSG = [{"role": "user", "content": "hello"}]
BAD = [  # (endpoint, body overrides, param, message fragment)
    ("chat", {"messages": []}, "messages", "messages is empty"),
    ("chat", {"messages": [{"role": "user", "content": "tell me a story " * 40}]}, "messages", "alone take"),
    ("chat", {"messages": [{"role": "wizard", "content": "hi"}]}, "messages", "invalid 'messages.0.role'"),
    ("chat", {"max_tokens": 0}, "max_tokens", "must be an int >= 1"),
    ("chat", {"max_tokens": CONTEXT}, "max_tokens", "must be in [1"),
    ("chat", {"temperature": -0.5}, "temperature", "temperature=-0.5 is invalid"),
    ("chat", {"n": 50}, "n", "at most n=4"),
    ("chat", {"top_logprobs": 3}, "top_logprobs", "needs logprobs=true"),
    ("chat", {"max_tokens": "many"}, "max_tokens", "invalid 'max_tokens'"),
    ("completions", {"prompt": "hello " * 80}, "prompt", "context window is 64"),
    ("completions", {"prompt": list(range(5)) * 20}, "prompt", "context window is 64"),
    ("completions", {"prompt": ""}, "prompt", "the prompt is empty"),
    ("completions", {"prompt": [100000]}, "prompt", "prompt token ids must be ints"),
    ("completions", {"max_tokens": -3}, "max_tokens", "must be an int >= 1"),
    ("completions", {"max_tokens": CONTEXT}, "max_tokens", "exceeds the context window"),
    ("completions", {"temperature": -1}, "temperature", "temperature=-1.0 is invalid"),
    ("completions", {"top_p": 0}, "top_p", "top_p=0.0 is invalid"),
    ("completions", {"n": 0}, "n", "n=0 is invalid"),
    ("completions", {"n": 5}, "n", "at most n=4"),
    ("completions", {"temperature": "hot"}, "temperature", "invalid 'temperature'"),
    ("completions", {"stop": 3}, "stop", "invalid 'stop"),
    ("completions", {"echo": True}, "echo", "echo=true is not supported"),
    ("completions", {"logprobs": 99}, "logprobs", "logprobs=99"),
    ("completions", {"seed": 2**64 - 1, "n": 2}, "seed", "out of range"),  # seed + 1 would overflow torch's seed
]


@pytest.mark.parametrize("stream", [False, True])
def test_bad_requests_get_400_with_openai_body(server, stream):
    proc, client = server
    for endpoint, overrides, param, fragment in BAD:
        if endpoint == "chat":
            kw = {"model": NAME, "messages": MSG, "max_tokens": 4, **overrides}
            call = client.chat.completions.create
        else:
            kw = {"model": NAME, "prompt": "hello", "max_tokens": 4, **overrides}
            call = client.completions.create
        with pytest.raises(openai.BadRequestError) as info:
            call(**kw, stream=stream)  # a stream is refused before it starts
            pytest.fail(f"no error for {endpoint} {overrides}")
        assert info.value.status_code == 400, (endpoint, overrides)
        body = info.value.body.get("error", info.value.body)
        assert_error_body(body, param)
        assert fragment in body["message"], (body["message"], fragment)
    assert_still_serving(proc, client)


def test_invalid_json_and_wrong_shapes_are_400(server):
    proc, client = server
    for body in (b"{not json", b"", b"[1, 2]", b'{"model": "tiny"}'):
        status, out = raw(proc, "/v1/completions", body, method="POST")
        assert status == 400, body
        assert out["error"]["type"] == "invalid_request_error" and out["error"]["message"]
    assert "not valid JSON" in raw(proc, "/v1/chat/completions", b"{oops", method="POST")[1]["error"]["message"]
    status, out = raw(proc, "/v1/completions", {"model": NAME}, method="POST")
    assert status == 400 and out["error"]["param"] == "prompt" and "required" in out["error"]["message"]
    assert_still_serving(proc, client)


def test_unknown_model_is_404(server):
    proc, client = server
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=MSG, max_tokens=2)
    assert info.value.status_code == 404 and info.value.body.get("error", info.value.body)["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="hi", max_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")
    status, out = raw(proc, "/v1/no-such-path", key=KEY)
    assert status == 404 and set(out["error"]) == {"message", "type", "param", "code"}
    assert_still_serving(proc, client)


def test_api_key(server):
    proc, client = server
    for key in (None, "wrong", KEY + "x"):
        status, out = raw(proc, "/v1/models", key=key)
        assert status == 401 and out["error"]["code"] == "invalid_api_key"
    wrong = openai.OpenAI(base_url=proc.base_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=NAME, messages=MSG, max_tokens=2)
    assert info.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):  # 401 comes before the body is even parsed
        wrong.completions.create(model=NAME, prompt="x", max_tokens="bad")
    status, out = raw(proc, "/v1/models", key=KEY)
    assert status == 200 and out["data"][0]["id"] == NAME
    assert raw(proc, "/health", key=None)[0] == 200  # health and metrics stay open
    assert_still_serving(proc, client)


def test_unsupported_but_valid_openai_fields_are_ignored(server):
    proc, client = server
    r = client.chat.completions.create(model=NAME, messages=MSG, max_tokens=3, temperature=0, user="alice",
                                       metadata={"k": "v"}, store=False)
    plain = client.chat.completions.create(model=NAME, messages=MSG, max_tokens=3, temperature=0)
    assert r.choices[0].message.content == plain.choices[0].message.content
