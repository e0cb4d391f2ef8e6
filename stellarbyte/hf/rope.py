"""RoPE parameters between our `RoPEConfig` and Hugging Face config.json, in both of HF's spellings.

transformers >= 5 keeps every rotary setting in one dict:
    "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                        "original_max_position_embeddings": 2048, "beta_fast": 32.0, ...}
transformers 4.x checkpoints spread the same information over two keys:
    "rope_theta": 10000.0, "rope_scaling": {"type" | "rope_type": "yarn", "factor": 4.0, ...}   (or null)

We write the v5 form (plus `rope_theta` / `rope_scaling` mirrors so a 4.x reader sees the same rotary
frequencies) and read either. Formulas behind each rope_type: transformers' modeling_rope_utils and
stellarbyte/model/position.py; the keys each type takes are those transformers validates.
"""

from __future__ import annotations

import warnings
from typing import Any

from stellarbyte.config import ROPE_TYPES, RoPEConfig

# keys transformers reads for each rope_type (besides rope_type and rope_theta)
_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim",
             "attention_factor", "truncate"),
    "llama3": ("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"),
}
DEFAULT_ROPE_THETA = 10000.0  # transformers' RotaryEmbeddingConfigMixin.default_theta


def rope_to_hf(rope: RoPEConfig, max_position_embeddings: int) -> dict[str, Any]:
    """RoPEConfig -> the `rope_parameters` dict of a transformers-5 config.json."""
    params: dict[str, Any] = {"rope_type": rope.rope_type, "rope_theta": float(rope.rope_theta)}
    for key in _TYPE_KEYS[rope.rope_type]:
        value = getattr(rope, key)
        if key == "original_max_position_embeddings" and value is None:
            value = max_position_embeddings  # what transformers assumes when the key is absent
        if value is None:
            continue  # optional yarn keys (mscale, attention_factor, ...) left unset
        params[key] = value
    if rope.partial_rotary_factor != 1.0:
        params["partial_rotary_factor"] = rope.partial_rotary_factor
    return params


def _nested_rope(params: dict[str, Any]) -> dict[str, Any]:
    """transformers may nest rope parameters per layer type ({"full_attention": {...}, ...}); we need one."""
    if params and all(isinstance(v, dict) or v is None for v in params.values()):
        distinct = [v for v in params.values() if v is not None]
        if any(v != distinct[0] for v in distinct[1:]):
            raise ValueError(f"rope_parameters differ per layer type ({sorted(params)}); StellarByte uses one "
                             f"rotary setting for every layer")
        return dict(distinct[0]) if distinct else {}
    return dict(params)


def rope_from_hf(hf: dict[str, Any]) -> RoPEConfig:
    """Read rotary settings from an HF config dict: `rope_parameters` (v5) or `rope_scaling` + `rope_theta` (v4)."""
    if hf.get("rope_parameters"):
        params = _nested_rope(hf["rope_parameters"])
    elif hf.get("rope_scaling"):
        params = dict(hf["rope_scaling"])
    else:
        params = {}
    params.setdefault("rope_theta", hf.get("rope_theta", DEFAULT_ROPE_THETA))
    rope_type = params.pop("rope_type", None) or params.pop("type", None) or "default"
    params.pop("type", None)
    if rope_type not in ROPE_TYPES:
        raise ValueError(f"unsupported rope_type {rope_type!r} in config.json; StellarByte supports "
                         f"{', '.join(ROPE_TYPES)}")
    if "partial_rotary_factor" not in params and hf.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = hf["partial_rotary_factor"]
    accepted = {"rope_theta", "partial_rotary_factor", *_TYPE_KEYS[rope_type]}
    ignored = sorted(set(params) - accepted)
    if ignored and rope_type != "default":
        warnings.warn(f"ignoring rope keys {ignored} that transformers does not use for rope_type={rope_type!r}",
                      stacklevel=2)
    kwargs = {k: v for k, v in params.items() if k in accepted and v is not None}
    if "original_max_position_embeddings" in kwargs:
        kwargs["original_max_position_embeddings"] = int(kwargs["original_max_position_embeddings"])
    # transformers treats beta_fast / beta_slow of 0 or null as "use the default" (`x or 32`)
    for key in ("beta_fast", "beta_slow"):
        if key in kwargs and not kwargs[key]:
            del kwargs[key]
    return RoPEConfig(rope_type=rope_type, **kwargs)


def rope_scaling_v4(params: dict[str, Any]) -> dict[str, Any] | None:
    """The transformers-4 `rope_scaling` mirror of a v5 `rope_parameters` dict (None for plain RoPE)."""
    if params["rope_type"] == "default":
        return None
    return {k: v for k, v in params.items() if k != "rope_theta"}
