"""Autoregressive generation for one caller: prefill the prompt once, then decode one token per step.

  prefill: logits = model(prompt, cache)          every prompt token's K/V enters the cache
  decode:  logits = model(last_token, cache)      attention reads the cache; O(T) per step instead of O(T^2)

Batched prompts of different lengths are left-padded: the attention mask hides the padding and positions
count real tokens only, so each row decodes exactly as it would alone. Without a cache (use_cache=False)
every step recomputes the whole sequence -- the reference the cached path must match token for token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from stellarbyte.infer.cache import make_cache
from stellarbyte.infer.sampling import SamplingConfig, next_token


def _resolve_lengths(prompt_len: int, max_new_tokens: int | None, max_length: int | None, context: int) -> int:
    if max_new_tokens is None and max_length is None:
        max_new_tokens = 20  # transformers' default
    if max_new_tokens is None:
        if max_length <= prompt_len:
            raise ValueError(f"max_length={max_length} leaves no room after a {prompt_len}-token prompt; "
                             f"use max_new_tokens or a larger max_length")
        max_new_tokens = max_length - prompt_len
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be positive")
    if prompt_len > context:
        raise ValueError(f"the prompt has {prompt_len} tokens but the context window is {context}; "
                         f"truncate the prompt")
    if prompt_len + max_new_tokens > context:
        raise ValueError(f"prompt ({prompt_len}) + max_new_tokens ({max_new_tokens}) exceeds the context window "
                         f"({context}); use max_new_tokens <= {context - prompt_len}")
    return max_new_tokens


def stream_generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    max_new_tokens: int | None = None, max_length: int | None = None, do_sample: bool = False,
                    temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                    repetition_penalty: float = 1.0, eos_token_id: int | list[int] | None = None,
                    stop_token_ids: list[int] | None = None, pad_token_id: int | None = None,
                    seed: int | None = None, use_cache: bool = True,
                    cache_implementation: str = "dynamic") -> Iterator[torch.Tensor]:
    """Yield the next token of every row, (B,), step by step; rows that have finished yield pad_token_id.

    eos_token_id defaults to the model's (config or generation_config); stop_token_ids adds more ids that
    end a row. A seed makes sampling reproducible without touching the global RNG.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if attention_mask is not None and attention_mask.dim() == 1:
        attention_mask = attention_mask[None]
    device = model.device
    input_ids = input_ids.to(device)
    batch, prompt_len = input_ids.shape
    if prompt_len == 0:
        raise ValueError("the prompt is empty; pass at least one token (e.g. the BOS token)")
    config = model.config
    max_new_tokens = _resolve_lengths(prompt_len, max_new_tokens, max_length, config.context_length)
    sampling = SamplingConfig(do_sample, temperature, top_k, top_p, min_p, repetition_penalty)
    generation_config = getattr(model, "generation_config", None) or {}
    if eos_token_id is None:
        eos_token_id = generation_config.get("eos_token_id", config.eos_token_id)
    stop_ids = [] if eos_token_id is None else ([eos_token_id] if isinstance(eos_token_id, int) else
                                                 list(eos_token_id))
    stop_ids += list(stop_token_ids or [])
    if pad_token_id is None:
        pad_token_id = config.pad_token_id if config.pad_token_id is not None else (stop_ids[0] if stop_ids else 0)
    stop = torch.tensor(stop_ids, dtype=torch.long, device=device)
    mask = (torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(device)).long()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    seen = None
    if sampling.repetition_penalty != 1.0:
        seen = torch.zeros(batch, config.vocab_size, dtype=torch.bool, device=device)
        seen.scatter_(1, input_ids, mask.bool())
    cache = make_cache(cache_implementation, model, batch, prompt_len + max_new_tokens) if use_cache else None
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    sequence = input_ids

    with torch.inference_mode():
        logits = model(input_ids, attention_mask=mask, past_key_values=cache, logits_to_keep=1).logits[:, -1]
        for step in range(max_new_tokens):
            token = next_token(logits, sampling, seen, generator)
            token = torch.where(finished, torch.full_like(token, pad_token_id), token)
            yield token
            if seen is not None:
                seen[torch.arange(batch, device=device), token] |= ~finished
            finished |= torch.isin(token, stop)
            if bool(finished.all()) or step == max_new_tokens - 1:
                return
            mask = torch.cat((mask, torch.ones_like(mask[:, :1])), dim=1)
            if cache is not None:
                logits = model(token[:, None], attention_mask=mask, past_key_values=cache, logits_to_keep=1)
            else:
                sequence = torch.cat((sequence, token[:, None]), dim=1)
                logits = model(sequence, attention_mask=mask, logits_to_keep=1)
            logits = logits.logits[:, -1]


def generate(model, input_ids: torch.Tensor, stream: bool = False, **kwargs: Any) -> torch.Tensor | Iterator:
    """Return (B, prompt + new) token ids, like transformers' generate(); stream=True returns the iterator of
    stream_generate instead. Arguments: see stream_generate (max_new_tokens or the HF-style max_length,
    do_sample, temperature, top_k, top_p, min_p, repetition_penalty, eos_token_id, stop_token_ids,
    pad_token_id, seed, use_cache, cache_implementation = dynamic | static | sliding)."""
    steps = stream_generate(model, input_ids, **kwargs)
    if stream:
        return steps
    prompt = input_ids if input_ids.dim() == 2 else input_ids[None]
    new = [token[:, None] for token in steps]
    return torch.cat([prompt.to(model.device), *new], dim=1)
