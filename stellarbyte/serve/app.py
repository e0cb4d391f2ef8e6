"""The OpenAI-compatible HTTP API over one engine: create_app(llm_or_engine, model_name, api_key=None) -> FastAPI.

References: the OpenAI API reference (paths, objects, SSE streaming with `data: [DONE]`); vLLM's
openai/api_server.py for the behaviour of an open-weights server (extra sampling fields, /health, /metrics).
Request flow: HTTP body -> protocol.py (pydantic types, SamplingParams) -> tokenize (chat: conversation window
policy + chat template) -> LLMEngine.check_request (a bad request is a 400 before anything is queued) ->
AsyncLLM.generate (one engine request per prompt; the engine steps in a worker thread) -> MergedStreams ->
JSON response, or SSE chunks with deltas from DeltaTracker. A client that disconnects mid-stream cancels the
response task; MergedStreams.cancel() aborts its engine requests and their KV blocks return to the pool.
Paths: GET /health, GET /v1/models, GET /v1/models/{id}, POST /v1/completions, POST /v1/chat/completions,
GET /metrics (Prometheus text; ?format=json for JSON), GET / and /static (the web chat page, when present).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from stellarbyte.infer.engine.async_llm import AsyncLLM
from stellarbyte.infer.engine.conversation import fit_conversation
from stellarbyte.infer.engine.llm_engine import LLMEngine
from stellarbyte.infer.engine.outputs import RequestOutput
from stellarbyte.infer.engine.sampling_params import SamplingParams
from stellarbyte.serve import responses as R
from stellarbyte.serve.auth import APIKeyMiddleware
from stellarbyte.serve.errors import OpenAIError, install_error_handlers
from stellarbyte.serve.metrics import RequestCounters, prometheus_text, snapshot
from stellarbyte.serve.protocol import ChatCompletionRequest, CompletionRequest
from stellarbyte.serve.streaming import DeltaTracker, MergedStreams

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_MAX_N = 16


@dataclass
class ServerState:
    llm: AsyncLLM
    model_name: str
    max_n: int
    created: int = field(default_factory=lambda: int(time.time()))
    counters: RequestCounters = field(default_factory=RequestCounters)

    @property
    def engine(self) -> LLMEngine:
        return self.llm.engine

    @property
    def tokenizer(self) -> Any:
        return self.llm.engine.tokenizer


def _async_llm(llm_or_engine: Any) -> AsyncLLM:
    if isinstance(llm_or_engine, AsyncLLM):
        return llm_or_engine
    engine = getattr(llm_or_engine, "engine", llm_or_engine)  # LLM -> its LLMEngine
    if not isinstance(engine, LLMEngine):
        raise ValueError(f"create_app takes an LLM, LLMEngine or AsyncLLM, got {type(llm_or_engine).__name__}")
    return AsyncLLM(engine)


def create_app(llm_or_engine: Any, model_name: str, api_key: str | None = None, max_n: int = DEFAULT_MAX_N,
               static_dir: str | Path | None = STATIC_DIR) -> FastAPI:
    """An app serving one model under `model_name`; api_key=None serves without authentication."""
    llm = _async_llm(llm_or_engine)
    if llm.engine.tokenizer is None or not hasattr(llm.engine.tokenizer, "apply_chat_template"):
        raise ValueError("the server needs a tokenizer with a chat template: load the model from a directory "
                         "holding tokenizer.json, or pass tokenizer=... to LLM")
    if not model_name:
        raise ValueError("model_name is empty; pass the name clients send as 'model'")
    state = ServerState(llm, model_name, max_n)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await llm.shutdown()

    app = FastAPI(title="StellarByte OpenAI-compatible server", lifespan=lifespan)
    app.state.server = state
    install_error_handlers(app)
    if api_key:
        app.add_middleware(APIKeyMiddleware, api_key=api_key)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    def model_card() -> dict:
        return {"id": model_name, "object": "model", "created": state.created, "owned_by": "stellarbyte",
                "max_model_len": state.engine.context_length}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict:
        _check_model(state, model_id)
        return model_card()

    @app.get("/metrics")
    async def metrics(format: str = "prometheus") -> Any:  # noqa: A002 -- the query parameter's name
        values = snapshot(state.engine, state.counters)
        if format == "json":
            return JSONResponse(values)
        return PlainTextResponse(prometheus_text(values), media_type="text/plain; version=0.0.4")

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, http: Request) -> Any:
        _check_model(state, req.model)
        params = _check_n(state, req.to_sampling_params())
        prompts = []
        for p in req.prompts():
            ids = state.tokenizer.encode(p) if isinstance(p, str) else p
            prompts.append((_check_prompt(state, ids, params, "prompt"), p if isinstance(p, str) else None))
        return await _respond(state, http, "cmpl", prompts, params, req.stream, req.include_usage)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, http: Request) -> Any:
        _check_model(state, req.model)
        params = _check_n(state, req.to_sampling_params())
        messages = req.template_messages()
        tok = state.tokenizer
        try:
            fitted = fit_conversation(messages, tok, state.engine.context_length, params.max_tokens or 1)
        except ValueError as err:
            param = "max_tokens" if str(err).startswith("max_tokens") else "messages"
            raise OpenAIError(str(err), param=param) from None
        end_of_turn = getattr(tok, "im_end_token_id", None)  # a reply ends at the template's end of turn
        if end_of_turn is not None and end_of_turn not in params.stop_token_ids:
            params = replace(params, stop_token_ids=[*params.stop_token_ids, end_of_turn])
        ids = _check_prompt(state, fitted.prompt_token_ids, params, "messages")
        return await _respond(state, http, "chatcmpl", [(ids, None)], params, req.stream, req.include_usage)

    index = Path(static_dir) / "index.html" if static_dir is not None else None
    if index is not None and index.is_file():
        app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

        @app.get("/", include_in_schema=False)
        async def web_page() -> FileResponse:
            return FileResponse(str(index))
    else:
        @app.get("/", include_in_schema=False)
        async def root() -> dict:
            return {"message": "StellarByte OpenAI-compatible server (no web page installed)",
                    "paths": ["/health", "/v1/models", "/v1/completions", "/v1/chat/completions", "/metrics"]}

    return app


# ---- checks ------------------------------------------------------------------------------------------------
def _check_model(state: ServerState, name: str) -> None:
    if name != state.model_name:
        raise OpenAIError(f"the model {name!r} does not exist; this server serves {state.model_name!r} "
                          f"(see GET /v1/models)", 404, param="model", code="model_not_found")


def _check_n(state: ServerState, params: SamplingParams) -> SamplingParams:
    if params.n > state.max_n:
        raise OpenAIError(f"n={params.n} is too large; this server allows at most n={state.max_n}", param="n")
    return params


def _check_prompt(state: ServerState, ids: list[int], params: SamplingParams, param: str) -> list[int]:
    try:
        return state.engine.check_request(ids, params)
    except ValueError as err:
        message = str(err)
        about_max_tokens = "max_tokens" in message and "prompt has" not in message
        raise OpenAIError(message, param="max_tokens" if about_max_tokens else param) from None


# ---- answers -----------------------------------------------------------------------------------------------
async def _respond(state: ServerState, http: Request, kind: str, prompts: list[tuple[list[int], str | None]],
                   params: SamplingParams, stream: bool | None, include_usage: bool) -> Any:
    rid = f"{kind}-{uuid.uuid4().hex}"
    state.counters.requests_total += 1
    state.counters.prompt_tokens_total += sum(len(ids) for ids, _ in prompts)
    merged = MergedStreams([state.llm.generate(ids, params, request_id=f"{rid}-{i}", prompt=text)
                            for i, (ids, text) in enumerate(prompts)])
    headers = {"X-Request-Id": rid}
    if stream:
        events = _sse(state, kind, rid, merged, params, len(prompts), include_usage)
        headers["Cache-Control"] = "no-cache"
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    finals: list[RequestOutput | None] = [None] * len(prompts)

    async def collect() -> None:
        async for i, out in merged:
            finals[i] = out

    # a non-streaming client that leaves (a timeout, Ctrl-C) must not keep its KV blocks until max_tokens:
    # once the body is read, the next ASGI receive() returns only when the client disconnects
    work, gone = asyncio.ensure_future(collect()), asyncio.ensure_future(_disconnected(http))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()
        merged.cancel()
        if not merged.all_finished:
            state.counters.requests_aborted_total += 1
    if not work.done() or work.cancelled():
        return PlainTextResponse("client disconnected", status_code=499)  # nobody reads it
    work.result()  # re-raise an engine failure (-> 500 by the handlers)
    state.counters.requests_finished_total += 1
    return JSONResponse(_final_body(state, kind, rid, finals, params), headers=headers)


async def _disconnected(http: Request) -> None:
    while (await http.receive())["type"] != "http.disconnect":
        pass


def _final_body(state: ServerState, kind: str, rid: str, finals: list[RequestOutput], params: SamplingParams) -> dict:
    tok, k = state.tokenizer, params.logprobs
    choices = []
    for i, out in enumerate(finals):
        for c in out.outputs:
            lps = None
            if c.logprobs is not None:
                lps = (R.chat_logprobs(tok, c.token_ids, c.logprobs, k) if kind == "chatcmpl"
                       else R.completion_logprobs(tok, c.token_ids, c.logprobs, k))
            choice: dict[str, Any] = {"index": i * params.n + c.index}
            if kind == "chatcmpl":
                choice["message"] = {"role": "assistant", "content": c.text}
            else:
                choice["text"] = c.text
            choice.update(logprobs=lps, finish_reason=c.finish_reason)
            choices.append(choice)
    generated = sum(len(c.token_ids) for o in finals for c in o.outputs)
    usage = R.usage(sum(len(o.prompt_token_ids) for o in finals), generated, sum(o.num_cached_tokens for o in finals))
    obj = "chat.completion" if kind == "chatcmpl" else "text_completion"
    return R.envelope(rid, obj, int(time.time()), state.model_name, choices, usage=usage)


def _sse_line(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _sse(state: ServerState, kind: str, rid: str, merged: MergedStreams, params: SamplingParams,
               num_prompts: int, include_usage: bool) -> AsyncIterator[str]:
    """SSE events: (chat: a role delta per choice,) content deltas, finish_reason last, usage, [DONE]."""
    chat = kind == "chatcmpl"
    created, tok, k = int(time.time()), state.tokenizer, params.logprobs
    obj = "chat.completion.chunk" if chat else "text_completion"
    extra = {"usage": None} if include_usage else {}

    def chunk(choices: list[dict], **more: Any) -> str:
        return _sse_line(R.envelope(rid, obj, created, state.model_name, choices, **{**extra, **more}))

    trackers = {(i, j): DeltaTracker(list(params.stop)) for i in range(num_prompts) for j in range(params.n)}
    prompt_tokens, cached, completion_tokens = [0] * num_prompts, [0] * num_prompts, 0
    try:
        if chat:
            for j in range(params.n):
                yield chunk([{"index": j, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}])
        async for i, out in merged:
            prompt_tokens[i], cached[i] = len(out.prompt_token_ids), out.num_cached_tokens
            for c in out.outputs:
                tracker = trackers[(i, c.index)]
                d = tracker.update(c)
                if d is None:
                    continue
                completion_tokens += len(d.token_ids)
                if not d.text and d.finish_reason is None and d.logprobs is None:
                    continue  # held-back text, nothing to say yet
                lps = None
                if d.logprobs is not None:
                    lps = (R.chat_logprobs(tok, d.token_ids, d.logprobs, k) if chat else
                           R.completion_logprobs(tok, d.token_ids, d.logprobs, k, len(tracker.sent_text) - len(d.text)))
                choice: dict[str, Any] = {"index": i * params.n + c.index}
                if chat:
                    choice["delta"] = {"content": d.text} if d.text or d.finish_reason is None else {}
                else:
                    choice["text"] = d.text
                choice.update(logprobs=lps, finish_reason=d.finish_reason)
                yield chunk([choice])
        if include_usage:
            yield chunk([], usage=R.usage(sum(prompt_tokens), completion_tokens, sum(cached)))
        yield "data: [DONE]\n\n"
        state.counters.requests_finished_total += 1
    except asyncio.CancelledError:
        raise
    except Exception as err:  # the engine failed mid-stream: tell the client in OpenAI's shape, then end
        yield _sse_line({"error": {"message": f"{type(err).__name__}: {err}", "type": "internal_error",
                                   "param": None, "code": None}})
        yield "data: [DONE]\n\n"
    finally:
        merged.cancel()  # synchronous: aborts what still runs, frees KV blocks (client gone or error)
        if not merged.all_finished:
            state.counters.requests_aborted_total += 1
