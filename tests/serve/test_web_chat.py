"""The web chat page in a real headless browser (Debian chromium + chromedriver, driven by Selenium) against a
real `stellarbyte serve` process: the API key field unlocks the model name, a typed message streams back the
same text as the API's non-streamed reply at temperature 0, the page keeps the history (the second turn is
the API's reply to the whole conversation and hits the prefix cache), a bad setting shows the server's error,
New chat clears the page, and Stop ends a long reply: it stops growing and /metrics shows its KV blocks freed.

Needs /usr/bin/chromium (or chromium on PATH), chromedriver and the selenium package; skipped with the reason
when one is missing. On a fresh Debian machine: apt-get install -y chromium chromium-driver; pip install selenium.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.tokenizer import train_tokenizer

API_KEY = "web-test-key"
CONTEXT = 2048


def _missing(reason: str) -> None:
    """Skip where the browser is absent, but fail in CI (.ci/run installs it and sets the variable)."""
    if os.environ.get("STELLARBYTE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"STELLARBYTE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    for path, name in ((chromium, "chromium"), (driver, "chromedriver")):
        if path is None:
            _missing(f"{name} is not installed (Debian: apt-get install -y chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium is not installed (pip install selenium)")
    return chromium, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900"):
        options.add_argument(arg)
    # chromium leaves singleton sockets under $TMPDIR: keep them in pytest's temporary directory
    env = {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("chromium"))}
    driver = webdriver.Chrome(service=Service(driver_path, env=env), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _browser_paths()  # skip before paying for a server when there is no browser
    from stellarbyte.serve.launch import ServerProcess

    out = tmp_path_factory.mktemp("web_model")
    corpus = out / "corpus.txt"
    corpus.write_text("hello there, how are you? i am fine. tell me a story about a cat and a dog.\n" * 50)
    tok = train_tokenizer([str(corpus)], 300, out)
    # a little wider and deeper than the other tests' model, so that a long reply takes seconds and Stop
    # lands well before max_tokens even on a fast machine
    model = tiny_model(vocab_size=tok.vocab_size, max_position_embeddings=CONTEXT, eos_token_id=tok.eos_token_id,
                       hidden_size=192, intermediate_size=384, num_hidden_layers=4)
    with torch.no_grad():  # no special token can win the argmax: a greedy reply runs to max_tokens
        model.lm_head.weight[:7] = 0.0
        model.lm_head.weight[7:] *= 4.0
    model.save_pretrained(out)
    with ServerProcess(out, ["--api-key", API_KEY, "--served-model-name", "tiny-web", "--block-size", "16",
                             "--num-blocks", "512", "--threads", "1"]) as proc:
        yield proc


def api(server, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(server.base_url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def last_reply(browser) -> str:
    return browser.execute_script(
        "const m = document.querySelectorAll('#messages .msg.assistant .content');"
        "return m.length ? m[m.length - 1].textContent : null;")


def status(browser) -> str:
    return browser.find_element("id", "status").get_attribute("data-state")


def set_field(browser, field: str, value: str) -> None:
    el = browser.find_element("id", field)
    el.clear()
    el.send_keys(value)


def send(browser, text: str) -> None:
    set_field(browser, "prompt", text)
    browser.find_element("id", "send").click()


def test_missing_browser_skips_with_the_install_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("STELLARBYTE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        _browser_paths()


def test_missing_browser_fails_where_required(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("STELLARBYTE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        _browser_paths()


@pytest.mark.slow  # a server process and a browser: ~30 s on 2 shared cores
def test_web_chat_streams_keeps_history_and_stops(server, browser):
    browser.get(server.base_url + "/")
    model_name = browser.find_element("id", "model-name")
    wait_for(lambda: "API key" in model_name.text, 20, "the page to ask for the API key")
    set_field(browser, "api-key", API_KEY)
    browser.find_element("id", "temperature").click()  # leaving the key field fires its change event
    wait_for(lambda: model_name.text == "tiny-web", 20, "the model name from /v1/models")

    # one turn: the streamed reply equals the API's non-streamed reply at temperature 0
    set_field(browser, "temperature", "0")
    set_field(browser, "max-tokens", "24")
    set_field(browser, "system", "you are a cat.")
    send(browser, "hello there")
    wait_for(lambda: status(browser) == "done", 60, "the reply to finish")  # (streaming is seen under Stop)
    page = last_reply(browser)
    system = {"role": "system", "content": "you are a cat."}
    history = [system, {"role": "user", "content": "hello there"}]
    ref = api(server, "/v1/chat/completions", {"model": "tiny-web", "messages": history, "temperature": 0,
                                               "max_tokens": 24})
    assert page == ref["choices"][0]["message"]["content"] and len(page) > 0
    assert ref["usage"]["completion_tokens"] == 24
    messages = browser.execute_script("return window.chatState.messages")
    assert messages == [*history[1:], {"role": "assistant", "content": page}]  # the system prompt stays apart

    # a second turn sends the whole history (system prompt first) and reuses the first turn's KV blocks
    send(browser, "tell me a story")
    wait_for(lambda: status(browser) == "done" and len(browser.execute_script(
        "return window.chatState.messages")) == 4, 60, "the second reply")
    history = [system, *messages,
               {"role": "user", "content": "tell me a story"}]
    ref = api(server, "/v1/chat/completions", {"model": "tiny-web", "messages": history, "temperature": 0,
                                               "max_tokens": 24})
    assert last_reply(browser) == ref["choices"][0]["message"]["content"]
    usage = browser.find_element("id", "usage").text
    assert "reply 24 tokens" in usage and "cached" in usage

    # a setting the server refuses: its error message is shown, the question comes back, history unchanged
    set_field(browser, "max-tokens", str(CONTEXT * 2))
    send(browser, "too long a reply")
    wait_for(lambda: status(browser) == "error", 20, "the error")
    error = browser.find_element("css selector", "#messages .msg.error .content").text
    assert "max_tokens" in error
    assert len(browser.find_elements("css selector", "#messages .msg.user, #messages .msg.assistant")) == 4
    assert browser.find_element("id", "prompt").get_attribute("value") == "too long a reply"
    assert len(browser.execute_script("return window.chatState.messages")) == 4

    # New chat clears the page's history
    browser.find_element("id", "new-chat").click()
    assert browser.execute_script("return window.chatState.messages") == []
    assert browser.find_elements("css selector", "#messages .msg") == []

    # Stop: a long reply stops growing and the server frees its blocks
    before = api(server, "/metrics?format=json")
    set_field(browser, "max-tokens", str(CONTEXT - 64))
    send(browser, "hello")
    wait_for(lambda: len(last_reply(browser) or "") >= 20, 60, "the long reply to stream some text")
    assert status(browser) == "streaming" and browser.find_element("id", "send").get_attribute("disabled")
    browser.find_element("id", "stop").click()
    wait_for(lambda: status(browser) == "stopped", 10, "the page to show the reply stopped")
    stopped_text = last_reply(browser)
    metrics = wait_for(lambda: (m := api(server, "/metrics?format=json"))["kv_blocks_free"] == m["kv_blocks_total"]
                       and m["num_requests_running"] == 0 and m, 20, "the KV blocks to return to the pool")
    assert metrics["requests_aborted_total"] == before["requests_aborted_total"] + 1
    generated = metrics["generation_tokens_total"] - before["generation_tokens_total"]
    assert 0 < generated < CONTEXT - 64, generated  # stopped early
    print(f"stopped after {generated} of {CONTEXT - 64} tokens")
    time.sleep(1.0)
    assert last_reply(browser) == stopped_text  # no longer growing
    messages = browser.execute_script("return window.chatState.messages")
    assert messages == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": stopped_text}]
    assert browser.find_element("id", "stop").get_attribute("disabled") is not None
    assert browser.find_element("id", "send").get_attribute("disabled") is None
