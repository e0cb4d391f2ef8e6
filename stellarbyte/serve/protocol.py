"""OpenAI request bodies (pydantic) and their mapping to the engine's SamplingParams.

References: the OpenAI API reference for /v1/completions and /v1/chat/completions (field names, defaults,
which field is an int or a bool); vLLM's protocol.py for the extra sampling fields OpenAI lacks (top_k, min_p,
repetition_penalty, ignore_eos, stop_token_ids), accepted here under the same names.
Contract:
  - types are checked by pydantic (a wrong type is a 400 from errors.py, never a 422); fields OpenAI defines
    but that do not change the result here (user, metadata, store, service_tier, ...) are ignored; fields that
    would change it and are not supported (echo, suffix, logit_bias, best_of > n, tools) are refused with a 400
    naming the field, rather than silently ignored.
  - value ranges are SamplingParams' own checks (the field name travels into the error's `param`).
  - completions default to max_tokens=16 (OpenAI's default); chat defaults to "up to the context window".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stellarbyte.infer.engine.sampling_params import SamplingParams
from stellarbyte.serve.errors import OpenAIError

COMPLETION_DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for /v1/completions
MAX_TOP_LOGPROBS = 20  # OpenAI's limit for chat top_logprobs (completions allow 5; we allow 20 for both)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _SamplingRequest(BaseModel):
    """Fields shared by both endpoints."""

    model_config = ConfigDict(extra="ignore")  # unknown-but-valid OpenAI fields (user, metadata, ...) are ignored

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None  # None = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logit_bias: dict[str, float] | None = None
    # vLLM extras (not in OpenAI's API; the openai client sends them through extra_body)
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    ignore_eos: bool | None = False
    stop_token_ids: list[int] | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def _check_common(self) -> None:
        if self.logit_bias:
            raise OpenAIError("logit_bias is not supported by this server; remove it", param="logit_bias")
        if self.stream_options is not None and not self.stream:
            raise OpenAIError("stream_options is only allowed when stream=true", param="stream_options")

    def _sampling(self, max_tokens: int | None, logprobs: int | None) -> SamplingParams:
        values: dict[str, Any] = dict(n=1 if self.n is None else self.n, max_tokens=max_tokens, seed=self.seed,
                                      ignore_eos=bool(self.ignore_eos),
                                      logprobs=logprobs, stop=[] if self.stop is None else self.stop,
                                      stop_token_ids=self.stop_token_ids or [])
        for name in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
                     "frequency_penalty"):
            value = getattr(self, name)
            if value is not None:  # None = the default, as OpenAI's "null"
                values[name] = value
        if self.seed is not None and not -(2**63) <= self.seed < 2**63:  # int64, as OpenAI; torch takes < 2**64
            raise OpenAIError(f"seed={self.seed} is out of range; use a 64-bit signed integer", param="seed")
        if max_tokens is not None and max_tokens < 1:
            raise OpenAIError(f"max_tokens={max_tokens} is invalid; it must be an int >= 1", param="max_tokens")
        try:
            return SamplingParams(**values)
        except ValueError as err:  # "SamplingParams.<field>=... is invalid; it must be ..."
            name = str(err).split("=", 1)[0].removeprefix("SamplingParams.")
            raise OpenAIError(str(err).replace("SamplingParams.", ""), param=name) from None


class CompletionRequest(_SamplingRequest):
    """POST /v1/completions. prompt: a string, a list of strings, a list of token ids, or a list of those."""

    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(default=None)  # k: the chosen token's logprob plus the top k
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: a string, or a list of token ids."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if not p:
            raise OpenAIError("prompt is empty; send a string or a non-empty list", param="prompt")
        if all(isinstance(x, int) for x in p):
            return [list(p)]
        return list(p)

    def to_sampling_params(self) -> SamplingParams:
        self._check_common()
        if self.echo:
            raise OpenAIError("echo=true is not supported by this server; remove it", param="echo")
        if self.suffix:
            raise OpenAIError("suffix is not supported by this server; remove it", param="suffix")
        if self.best_of is not None and self.best_of != self.n:
            raise OpenAIError("best_of is not supported (only best_of == n); remove it", param="best_of")
        if self.logprobs is not None and not 0 <= self.logprobs <= MAX_TOP_LOGPROBS:
            raise OpenAIError(f"logprobs={self.logprobs} must be in [0, {MAX_TOP_LOGPROBS}]", param="logprobs")
        max_tokens = COMPLETION_DEFAULT_MAX_TOKENS if self.max_tokens is None else self.max_tokens
        return self._sampling(max_tokens, self.logprobs)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_call_id, ... are ignored
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    def to_template(self) -> dict[str, str]:
        """{"role", "content"} for the chat template: developer -> system, text parts joined."""
        content = self.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise OpenAIError(f"content part {part.get('type')!r} is not supported; this model takes "
                                      f"text parts only", param="messages")
                texts.append(part["text"])
            content = "".join(texts)
        return {"role": "system" if self.role == "developer" else self.role, "content": content or ""}


class ChatCompletionRequest(_SamplingRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage]
    max_completion_tokens: int | None = None  # OpenAI's newer name; wins over max_tokens
    logprobs: bool = False
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None

    def template_messages(self) -> list[dict[str, str]]:
        if not self.messages:
            raise OpenAIError("messages is empty; send at least one user message", param="messages")
        if self.messages[-1].role != "user":
            raise OpenAIError(f"the last message must come from the user, got role {self.messages[-1].role!r}",
                              param="messages")
        return [m.to_template() for m in self.messages]

    def to_sampling_params(self) -> SamplingParams:
        self._check_common()
        if self.tools:
            raise OpenAIError("tools are not supported by this server; remove them", param="tools")
        if self.top_logprobs is not None:
            if not self.logprobs:
                raise OpenAIError("top_logprobs needs logprobs=true", param="top_logprobs")
            if not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
                raise OpenAIError(f"top_logprobs={self.top_logprobs} must be in [0, {MAX_TOP_LOGPROBS}]",
                                  param="top_logprobs")
        logprobs = (self.top_logprobs or 0) if self.logprobs else None
        max_tokens = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        return self._sampling(max_tokens, logprobs)
