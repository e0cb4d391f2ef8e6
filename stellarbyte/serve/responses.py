"""OpenAI response objects (plain dicts, the wire format) built from engine outputs.

Reference: the OpenAI API reference (Completion, ChatCompletion, ChatCompletionChunk objects).
Shapes:
  completion choice   {"index", "text", "logprobs", "finish_reason"}; logprobs = {"tokens": [str],
                      "token_logprobs": [float], "top_logprobs": [{token: logprob} x k], "text_offset": [int]}
  chat choice         {"index", "message": {"role": "assistant", "content"}, "logprobs", "finish_reason"};
                      logprobs = {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token",
                      "logprob", "bytes"} x k]}]}
  chunk               {"id", "object", "created", "model", "choices": [...]} (+ "usage": null when the client
                      asked for include_usage; the usage chunk has "choices": [])
  usage               {"prompt_tokens", "completion_tokens", "total_tokens",
                       "prompt_tokens_details": {"cached_tokens"}}
Choice index: prompt i's j-th completion is i * n + j (OpenAI's order for a list of prompts).
A token's string is its own decode (special tokens shown), as vLLM; several ids may map to one string.
"""

from __future__ import annotations

from typing import Any


def token_text(tokenizer: Any, token_id: int) -> str:
    return tokenizer.decode([token_id])


def _top(lp: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The k most likely entries of the engine's {id: logprob} (which holds the top k plus the chosen id)."""
    return sorted(lp.items(), key=lambda kv: -kv[1])[:k]


def completion_logprobs(tokenizer: Any, token_ids: list[int], logprobs: list[dict[int, float]], k: int,
                        offset: int = 0) -> dict[str, list]:
    tokens, chosen, tops, offsets = [], [], [], []
    for token_id, lp in zip(token_ids, logprobs):
        text = token_text(tokenizer, token_id)
        tokens.append(text)
        chosen.append(lp[token_id])
        tops.append({token_text(tokenizer, i): v for i, v in _top(lp, k)} if k else None)
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": chosen, "top_logprobs": tops, "text_offset": offsets}


def _entry(tokenizer: Any, token_id: int, logprob: float) -> dict[str, Any]:
    text = token_text(tokenizer, token_id)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def chat_logprobs(tokenizer: Any, token_ids: list[int], logprobs: list[dict[int, float]], k: int) -> dict:
    content = []
    for token_id, lp in zip(token_ids, logprobs):
        entry = _entry(tokenizer, token_id, lp[token_id])
        entry["top_logprobs"] = [_entry(tokenizer, i, v) for i, v in _top(lp, k)]
        content.append(entry)
    return {"content": content}


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def envelope(request_id: str, obj: str, created: int, model: str, choices: list[dict],
             **extra: Any) -> dict[str, Any]:
    return {"id": request_id, "object": obj, "created": created, "model": model, "choices": choices,
            "system_fingerprint": None, **extra}
