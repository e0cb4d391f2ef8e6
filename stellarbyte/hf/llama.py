"""Llama (transformers' LlamaForCausalLM) <-> ByteConfig.

Llama's single `attention_bias` switch puts a bias on all four projections (q, k, v and o), so it maps to
qkv_bias=True *and* attention_out_bias=True; `mlp_bias` maps to mlp_bias. No QK-norm, no sliding window.
Reference: transformers/models/llama/{configuration,modeling}_llama.py.
"""

from __future__ import annotations

from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import FamilyAdapter


class LlamaAdapter(FamilyAdapter):
    model_type = "llama"
    architecture = "LlamaForCausalLM"
    default_max_position_embeddings = 2048
    default_bos_token_id = 1
    default_eos_token_id = 2

    def _family_reasons(self, config: ByteConfig) -> list[str]:
        out = []
        if config.qkv_bias != config.attention_out_bias:
            out.append("Llama's attention_bias covers q, k, v and o alike (qkv_bias must equal attention_out_bias)")
        if config.qk_norm:
            out.append("qk_norm=True (Llama has no QK-norm; Qwen3 does)")
        if config.sliding_window is not None:
            out.append("sliding_window is set (Llama attends to the full context; Mistral slides)")
        return out

    def _family_fields(self, config: ByteConfig) -> dict[str, Any]:
        return {"attention_bias": config.qkv_bias, "mlp_bias": config.mlp_bias, "pretraining_tp": 1}

    def _byte_fields(self, hf: dict[str, Any]) -> dict[str, Any]:
        if (hf.get("pretraining_tp") or 1) != 1:
            raise ValueError(f"pretraining_tp={hf['pretraining_tp']} in config.json: transformers 5 ignores it "
                             f"and so do we; set it to 1 if the weights are already merged")
        bias = bool(hf.get("attention_bias", False))
        return {"qkv_bias": bias, "attention_out_bias": bias, "mlp_bias": bool(hf.get("mlp_bias", False))}


ADAPTER = LlamaAdapter()
can_express = ADAPTER.can_express
to_hf_config = ADAPTER.to_hf_config
from_hf_config = ADAPTER.from_hf_config
to_hf_state_dict = ADAPTER.to_hf_state_dict
from_hf_state_dict = ADAPTER.from_hf_state_dict
