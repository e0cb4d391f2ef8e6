"""Qwen3 (transformers' Qwen3ForCausalLM) <-> ByteConfig.

Qwen3 adds QK-norm: an RMSNorm over each head's dimensions of q and k before RoPE (self_attn.q_norm /
self_attn.k_norm, weight of shape (head_dim,)), so qk_norm=True. Its `attention_bias` covers q, k, v and o
alike; its sliding window follows Qwen2's per-layer scheme (see qwen2.py).
Reference: transformers/models/qwen3/{configuration,modeling}_qwen3.py.
"""

from __future__ import annotations

from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import FamilyAdapter
from stellarbyte.hf.qwen2 import qwen_window_fields, qwen_window_from_hf


class Qwen3Adapter(FamilyAdapter):
    model_type = "qwen3"
    architecture = "Qwen3ForCausalLM"
    default_max_position_embeddings = 32768

    def _family_reasons(self, config: ByteConfig) -> list[str]:
        out = []
        if not config.qk_norm:
            out.append("qk_norm=False (Qwen3 always normalises q and k)")
        if config.qkv_bias != config.attention_out_bias:
            out.append("Qwen3's attention_bias covers q, k, v and o alike (qkv_bias must equal attention_out_bias)")
        if config.mlp_bias:
            out.append("mlp_bias=True (Qwen3's MLP has no bias)")
        return out

    def _family_fields(self, config: ByteConfig) -> dict[str, Any]:
        return {"attention_bias": config.qkv_bias, **qwen_window_fields(config)}

    def _byte_fields(self, hf: dict[str, Any]) -> dict[str, Any]:
        bias = bool(hf.get("attention_bias", False))
        return {"qk_norm": True, "qkv_bias": bias, "attention_out_bias": bias,
                "sliding_window": qwen_window_from_hf(hf)}


ADAPTER = Qwen3Adapter()
can_express = ADAPTER.can_express
to_hf_config = ADAPTER.to_hf_config
from_hf_config = ADAPTER.from_hf_config
to_hf_state_dict = ADAPTER.to_hf_state_dict
from_hf_state_dict = ADAPTER.from_hf_state_dict
