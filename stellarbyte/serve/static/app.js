// StellarByte web chat: the page's whole logic, plain JS (no build step, no dependencies).
//
// Contract with the server (stellarbyte/serve/app.py, docs/serving.md):
//   GET  /v1/models            -> {"data": [{"id": NAME, ...}]}   the name is sent back as "model"
//   POST /v1/chat/completions  {model, messages, stream: true, stream_options: {include_usage: true},
//                               temperature, max_tokens}
//     -> Server-Sent Events: "data: {chunk}\n\n" ... "data: [DONE]\n\n". Each chunk is an OpenAI
//        chat.completion.chunk; choices[0].delta.content carries new text, finish_reason arrives on the
//        last content chunk, a final chunk with empty choices carries usage.
//   Errors are OpenAI bodies {"error": {"message", ...}} with status 400/401/404.
// Streaming: fetch() + response.body.getReader() + TextDecoder (EventSource cannot POST); events are split at
// blank lines, which may fall anywhere across network reads, so a buffer keeps the unfinished tail.
// Stop: an AbortController cancels the fetch; the server sees the disconnect, aborts the engine request and
// frees its KV blocks. The partial reply stays in the history, as shown.
// History: state.messages holds the user/assistant turns; the system prompt is prepended at send time.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  model: null,        // the served model's id, from /v1/models
  messages: [],       // [{role: "user" | "assistant", content}] of this chat
  controller: null,   // AbortController of the running request
  lastFinishReason: null,
  lastUsage: null,
};
window.chatState = state; // for debugging in the console and for the browser test

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = `Bearer ${key}`;
  return h;
}

function setStatus(kind, text) {
  const el = $("status");
  el.dataset.state = kind; // idle | streaming | done | stopped | error
  el.textContent = text;
}

function setStreaming(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

// ---- rendering --------------------------------------------------------------------------------------------
function addBubble(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const who = document.createElement("div");
  who.className = "role";
  who.textContent = role === "user" ? "you" : role === "assistant" ? (state.model || "assistant") : role;
  const body = document.createElement("div");
  body.className = "content";
  body.textContent = text; // textContent, never innerHTML: model output is untrusted text
  div.append(who, body);
  $("messages").append(div);
  div.scrollIntoView({ block: "end" });
  return body;
}

function render() {
  $("messages").replaceChildren();
  for (const m of state.messages) addBubble(m.role, m.content);
}

function errorMessage(body, status) {
  if (body && body.error && body.error.message) return body.error.message;
  return `the server answered HTTP ${status}`;
}

// ---- the model name ---------------------------------------------------------------------------------------
async function loadModel() {
  const el = $("model-name");
  try {
    const res = await fetch("/v1/models", { headers: headers() });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      el.textContent = res.status === 401 ? "API key needed (see Settings)" : errorMessage(body, res.status);
      el.classList.add("error");
      return false;
    }
    state.model = body.data[0].id;
    el.textContent = state.model;
    el.classList.remove("error");
    return true;
  } catch (err) {
    el.textContent = `server unreachable: ${err.message}`;
    el.classList.add("error");
    return false;
  }
}

// ---- SSE parsing ------------------------------------------------------------------------------------------
// Feed decoded text; calls onData(payload) for each complete event's data (multi-line data joined by "\n").
function sseParser(onData) {
  let buffer = "";
  return (text) => {
    buffer += text;
    const events = buffer.split(/\r?\n\r?\n/);
    buffer = events.pop(); // an unfinished event waits for the next read
    for (const event of events) {
      const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data) onData(data);
    }
  };
}

// ---- one turn ---------------------------------------------------------------------------------------------
function requestBody() {
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...state.messages);
  const body = { model: state.model, messages, stream: true, stream_options: { include_usage: true } };
  const temperature = parseFloat($("temperature").value);
  const maxTokens = parseInt($("max-tokens").value, 10);
  if (!Number.isNaN(temperature)) body.temperature = temperature;
  if (!Number.isNaN(maxTokens)) body.max_tokens = maxTokens; // the server answers 400 if out of range
  return body;
}

async function send() {
  const input = $("prompt");
  const text = input.value.trim();
  if (!text || state.controller) return;
  if (!state.model && !(await loadModel())) {
    setStatus("error", "no model: check the server and the API key");
    return;
  }
  input.value = "";
  state.messages.push({ role: "user", content: text });
  addBubble("user", text);
  const body = addBubble("assistant", "");
  body.parentElement.classList.add("streaming");
  const controller = new AbortController();
  state.controller = controller;
  state.lastFinishReason = null;
  state.lastUsage = null;
  setStreaming(true);
  setStatus("streaming", "streaming…");
  $("usage").textContent = "";
  let reply = "";
  let failure = null;
  const started = performance.now();
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(requestBody()), signal: controller.signal,
    });
    if (!res.ok) {
      failure = errorMessage(await res.json().catch(() => null), res.status);
    } else {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const feed = sseParser((data) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) { failure = chunk.error.message; return; }
        if (chunk.usage) state.lastUsage = chunk.usage;
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) return;
        if (choice.delta && choice.delta.content) {
          reply += choice.delta.content;
          body.textContent = reply;
          body.parentElement.scrollIntoView({ block: "end" });
        }
        if (choice.finish_reason) state.lastFinishReason = choice.finish_reason;
      });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(decoder.decode(value, { stream: true }));
      }
      feed(decoder.decode() + "\n\n"); // flush a last event without its blank line
    }
  } catch (err) {
    if (err.name !== "AbortError") failure = err.message;
  }
  const stopped = controller.signal.aborted;
  state.controller = null;
  body.parentElement.classList.remove("streaming");
  setStreaming(false);
  if (!reply && (failure || stopped)) {
    // nothing came back: forget the question so that a retry is clean, and give the text back
    state.messages.pop();
    const bubbles = $("messages").children;
    bubbles[bubbles.length - 1].remove(); // the empty reply
    bubbles[bubbles.length - 1].remove(); // the question
    input.value = text;
    if (failure) addBubble("error", failure);
    setStatus(failure ? "error" : "stopped", failure ? "error" : "stopped before any text");
    return;
  }
  state.messages.push({ role: "assistant", content: reply });
  if (stopped) {
    body.parentElement.classList.add("stopped");
    setStatus("stopped", "stopped");
  } else if (failure) {
    addBubble("error", failure);
    setStatus("error", "error");
  } else {
    setStatus("done", state.lastFinishReason === "length" ? "done (max tokens reached)" : "done");
  }
  showUsage(performance.now() - started);
}

function showUsage(ms) {
  const u = state.lastUsage;
  if (!u) return;
  const cached = u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens;
  const rate = u.completion_tokens / Math.max(ms / 1000, 1e-3);
  $("usage").textContent = `prompt ${u.prompt_tokens} tokens` + (cached ? ` (${cached} cached)` : "") +
    `, reply ${u.completion_tokens} tokens, ${rate.toFixed(1)} tokens/s`;
}

function stop() {
  if (state.controller) state.controller.abort();
}

function newChat() {
  stop();
  state.messages = [];
  state.lastUsage = null;
  render();
  $("usage").textContent = "";
  setStatus("idle", "ready");
  $("prompt").focus();
}

// ---- wiring -----------------------------------------------------------------------------------------------
$("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
$("stop").addEventListener("click", stop);
$("new-chat").addEventListener("click", newChat);
$("api-key").addEventListener("change", loadModel);
loadModel();
