"""Mistral (transformers' MistralForCausalLM) <-> ByteConfig.

Mistral is Llama without any attention bias plus a sliding attention window: a query at position q sees
keys k with q - window < k <= q (transformers' sliding_window mask). `sliding_window: null` is full attention.
A window at least as long as the context never slides, so it loads as None.
Reference: transformers/models/mistral/{configuration,modeling}_mistral.py.
"""

from __future__ import annotations

from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import FamilyAdapter


class MistralAdapter(FamilyAdapter):
    model_type = "mistral"
    architecture = "MistralForCausalLM"
    default_max_position_embeddings = 4096 * 32
    default_bos_token_id = 1
    default_eos_token_id = 2

    def _family_reasons(self, config: ByteConfig) -> list[str]:
        out = []
        if config.qkv_bias or config.attention_out_bias or config.mlp_bias:
            out.append("Mistral has no biases (qkv_bias, attention_out_bias and mlp_bias must be False)")
        if config.qk_norm:
            out.append("qk_norm=True (Mistral has no QK-norm; Qwen3 does)")
        return out

    def _family_fields(self, config: ByteConfig) -> dict[str, Any]:
        return {"sliding_window": config.sliding_window}

    def _byte_fields(self, hf: dict[str, Any]) -> dict[str, Any]:
        # Mistral's config class defaults sliding_window to 4096 when the key is absent
        window = hf.get("sliding_window", 4096)
        max_positions = hf.get("max_position_embeddings") or self.default_max_position_embeddings
        if window is not None and window >= max_positions:
            window = None  # can never slide inside the context
        return {"sliding_window": window}


ADAPTER = MistralAdapter()
can_express = ADAPTER.can_express
to_hf_config = ADAPTER.to_hf_config
from_hf_config = ADAPTER.from_hf_config
to_hf_state_dict = ADAPTER.to_hf_state_dict
from_hf_state_dict = ADAPTER.from_hf_state_dict
