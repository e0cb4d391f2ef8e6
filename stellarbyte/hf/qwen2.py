"""Qwen2 (transformers' Qwen2ForCausalLM) <-> ByteConfig.

Qwen2 always has biases on q, k and v and never on o (qkv_bias=True, attention_out_bias=False). Its sliding
window is per layer: with use_sliding_window, layers i >= max_window_layers slide (config `layer_types`).
StellarByte has one window for all layers, so we write max_window_layers=0 (every layer slides) and read a
config whose layers all slide or all attend fully; a mix is refused with a clear error.
Reference: transformers/models/qwen2/{configuration,modeling}_qwen2.py.
"""

from __future__ import annotations

from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import FamilyAdapter


def qwen_window_fields(config: ByteConfig) -> dict[str, Any]:
    """HF keys for a uniform window (or none) in the Qwen2/Qwen3 per-layer scheme."""
    window, n = config.sliding_window, config.num_hidden_layers
    return {
        "use_sliding_window": window is not None,
        "sliding_window": window,
        "max_window_layers": 0 if window is not None else n,
        "layer_types": ["sliding_attention" if window is not None else "full_attention"] * n,
    }


def qwen_window_from_hf(hf: dict[str, Any]) -> int | None:
    """The one sliding window a Qwen2/Qwen3 config.json implies, or None; mixed layers are an error."""
    n = hf["num_hidden_layers"]
    window = hf.get("sliding_window") if hf.get("use_sliding_window", False) else None
    layer_types = hf.get("layer_types")
    if layer_types is None:  # v4 configs: transformers derives the layer types the same way
        start = hf.get("max_window_layers", 28)
        layer_types = ["sliding_attention" if window is not None and i >= start else "full_attention"
                       for i in range(n)]
    kinds = set(layer_types)
    if kinds - {"sliding_attention", "full_attention"}:
        raise ValueError(f"unsupported layer_types {sorted(kinds)} in config.json")
    if kinds == {"full_attention"}:
        return None
    if len(kinds) > 1:
        raise ValueError(f"config.json mixes sliding and full attention layers ({layer_types}); StellarByte "
                         f"uses one sliding_window for every layer")
    if hf.get("sliding_window") is None:
        raise ValueError("layer_types says sliding_attention but sliding_window is null in config.json")
    if hf["sliding_window"] >= hf.get("max_position_embeddings", 32768):
        return None  # can never slide inside the context
    return hf["sliding_window"]


class Qwen2Adapter(FamilyAdapter):
    model_type = "qwen2"
    architecture = "Qwen2ForCausalLM"
    default_max_position_embeddings = 32768

    def _family_reasons(self, config: ByteConfig) -> list[str]:
        out = []
        if not config.qkv_bias or config.attention_out_bias:
            out.append("Qwen2 has biases on q/k/v and none on o (qkv_bias=True, attention_out_bias=False)")
        if config.qk_norm:
            out.append("qk_norm=True (Qwen2 has no QK-norm; Qwen3 does)")
        if config.mlp_bias:
            out.append("mlp_bias=True (Qwen2's MLP has no bias)")
        return out

    def _family_fields(self, config: ByteConfig) -> dict[str, Any]:
        return qwen_window_fields(config)

    def _byte_fields(self, hf: dict[str, Any]) -> dict[str, Any]:
        return {"qkv_bias": True, "attention_out_bias": False, "sliding_window": qwen_window_from_hf(hf)}


ADAPTER = Qwen2Adapter()
can_express = ADAPTER.can_express
to_hf_config = ADAPTER.to_hf_config
from_hf_config = ADAPTER.from_hf_config
to_hf_state_dict = ADAPTER.to_hf_state_dict
from_hf_state_dict = ADAPTER.from_hf_state_dict
