"""The offline API: LLM(model_or_dir).generate(prompts, SamplingParams(...)) -> list[RequestOutput].

Reference: vLLM's `LLM` class. Prompts are token id lists, or strings when a tokenizer is known (a model
directory holding tokenizer.json, or tokenizer=...). Strings are encoded without special tokens added, as
vLLM does for a tokenizer without a BOS rule; prepend BOS yourself if the model was trained with it.
All prompts are queued at once and the engine steps until every one finishes (continuous batching inside);
outputs come back in prompt order.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.conversation import fit_conversation
from stellarbyte.infer.engine.llm_engine import LLMEngine
from stellarbyte.infer.engine.outputs import RequestOutput
from stellarbyte.infer.engine.sampling_params import SamplingParams

Prompt = str | list[int]


class LLM:
    def __init__(self, model: Any, tokenizer: Any = None, dtype: torch.dtype | None = None,
                 device: str | torch.device | None = None, quantization: str | None = None,
                 **engine_kwargs: Any) -> None:
        """model: a ByteModel or a checkpoint directory; tokenizer: a ByteTokenizer, a directory, or None
        (then the model directory's tokenizer.json is used when present). quantization: None or a mode of
        stellarbyte.infer.quant.quantize_model ("int8": dynamic on CPU, weight-only on CUDA; "int4" on CUDA),
        applied in place after the dtype/device move. engine_kwargs: EngineConfig fields."""
        known = {f.name for f in fields(EngineConfig)}
        unknown = sorted(set(engine_kwargs) - known)
        if unknown:
            raise TypeError(f"unknown engine options {unknown}; EngineConfig accepts {sorted(known)}")
        model_dir = None
        if isinstance(model, (str, Path)):
            from stellarbyte import ByteModel

            model_dir = Path(model)
            model = ByteModel.from_pretrained(model_dir)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        self.quantization = None
        if quantization is not None:  # quant: swap the Linear layers before the engine sizes its KV pool
            from stellarbyte.infer.quant import quantize_model

            self.quantization = quantize_model(model, quantization)
        if tokenizer is None and model_dir is not None and (model_dir / "tokenizer.json").is_file():
            tokenizer = model_dir
        if isinstance(tokenizer, (str, Path)):
            from stellarbyte.tokenizer.tokenizer import ByteTokenizer

            tokenizer = ByteTokenizer.from_pretrained(tokenizer)
        self.engine = LLMEngine(model, EngineConfig(**engine_kwargs), tokenizer)

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def _encode(self, prompt: Prompt) -> tuple[list[int], str | None]:
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("string prompts need a tokenizer: load the model from a directory with "
                                 "tokenizer.json, pass tokenizer=..., or give token id lists")
            return self.tokenizer.encode(prompt), prompt
        if isinstance(prompt, torch.Tensor):
            prompt = prompt.tolist()
        return list(prompt), None

    def generate(self, prompts: Prompt | list[Prompt],
                 sampling_params: SamplingParams | list[SamplingParams] | None = None) -> list[RequestOutput]:
        if isinstance(prompts, str) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        prompts = list(prompts)
        if sampling_params is None or isinstance(sampling_params, SamplingParams):
            sampling_params = [sampling_params or SamplingParams()] * len(prompts)
        if len(sampling_params) != len(prompts):
            raise ValueError(f"got {len(sampling_params)} SamplingParams for {len(prompts)} prompts; pass one, "
                             f"or one per prompt")
        engine = self.engine
        order = []
        try:
            for prompt, params in zip(prompts, sampling_params):
                ids, text = self._encode(prompt)
                order.append(engine.add_request(ids, params, prompt=text))
        except Exception:
            for rid in order:  # do not leave half a batch queued
                engine.abort_request(rid)
            raise
        finished: dict[str, RequestOutput] = {}
        try:
            while engine.has_unfinished_requests():
                for out in engine.step():
                    if out.finished:
                        finished[out.request_id] = out
        finally:  # an interrupted call (KeyboardInterrupt, a device error) must not leave blocks held
            for rid in order:
                if rid not in finished:
                    engine.abort_request(rid)
        return [finished[rid] for rid in order]

    def chat(self, messages: list[dict] | list[list[dict]],
             sampling_params: SamplingParams | None = None) -> list[RequestOutput]:
        """One conversation (a list of {"role", "content"} dicts) or several. Each is fitted to the context
        window by conversation.fit_conversation, rendered with the tokenizer's chat template, and ends at the
        template's end-of-turn token (<|im_end|>) as well as at EOS."""
        tok = self.tokenizer
        if tok is None or not hasattr(tok, "apply_chat_template"):
            raise ValueError("chat() needs a tokenizer with a chat template (load the model from a directory with "
                             "tokenizer.json or pass tokenizer=...)")
        conversations = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        params = sampling_params or SamplingParams()
        end_of_turn = getattr(tok, "im_end_token_id", None)
        if end_of_turn is not None and end_of_turn not in params.stop_token_ids:
            params = replace(params, stop_token_ids=[*params.stop_token_ids, end_of_turn])
        context = self.engine.context_length
        prompts = [fit_conversation(conv, tok, context, params.max_tokens or 1).prompt_token_ids
                   for conv in conversations]
        return self.generate(prompts, params)
