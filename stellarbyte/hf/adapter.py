"""The shape every Hugging Face family adapter shares: config maps both ways and state-dict key maps.

An adapter answers four questions for one transformers architecture (Llama, Qwen2, Qwen3, Mistral):
  can_express(config)        can this ByteConfig be written as that architecture without losing anything?
  to_hf_config(config)       the HF-native config.json dict transformers' AutoConfig reads with no custom code
  from_hf_config(dict)       the ByteConfig of a config.json written by transformers (v5 or v4 era)
  to_hf_state_dict / from_hf_state_dict   tensor-name maps (names already follow transformers; tied
                             embeddings drop lm_head.weight, old checkpoints' rotary_emb.inv_freq is dropped)

The family modules only state what differs (attention biases, QK-norm, sliding window); everything common to
the four decoder families -- pre-RMSNorm, SwiGLU, RoPE, no LayerScale / DropPath / parallel residual -- lives
here. `reasons(config)` lists why a config is not expressible, so a forced family fails with a useful message.
References: transformers' configuration_{llama,qwen2,qwen3,mistral}.py (field names and defaults).
"""

from __future__ import annotations

from typing import Any

import torch

from stellarbyte.config import ByteConfig
from stellarbyte.hf.rope import rope_from_hf, rope_scaling_v4, rope_to_hf

# mlp_type <-> HF hidden_act of a gated MLP: down(act(gate(x)) * up(x))
MLP_TO_HIDDEN_ACT = {"swiglu": "silu", "geglu": "gelu_pytorch_tanh"}
HIDDEN_ACT_TO_MLP = {"silu": "swiglu", "swish": "swiglu", "gelu_pytorch_tanh": "geglu"}

# HF config keys every family needs; absent ones are an error naming the key
REQUIRED_HF_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")

# tensors older checkpoints carry that hold no learned state (recomputed from the config)
IGNORED_HF_TENSOR_SUFFIXES = (".rotary_emb.inv_freq",)


def dtype_name(dtype: torch.dtype | str) -> str:
    """torch.bfloat16 / "torch.bfloat16" / "bfloat16" -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")


def common_reasons(config: ByteConfig) -> list[str]:
    """Why `config` cannot be any of the HF decoder families (empty when it can)."""
    c = config
    out = []
    if c.position_embedding_type != "rope":
        out.append(f"position_embedding_type={c.position_embedding_type!r} (HF families use rope)")
    elif c.rope_config.partial_rotary_factor != 1.0:
        out.append(f"rope_config.partial_rotary_factor={c.rope_config.partial_rotary_factor} (must be 1.0)")
    if c.attention_type != "mha":
        out.append(f"attention_type={c.attention_type!r} (must be 'mha')")
    if c.norm_type != "rmsnorm":
        out.append(f"norm_type={c.norm_type!r} (must be 'rmsnorm')")
    if c.norm_scheme != "pre":
        out.append(f"norm_scheme={c.norm_scheme!r} (must be 'pre')")
    if c.parallel_residual:
        out.append("parallel_residual=True (must be sequential)")
    if c.layer_scale_init is not None:
        out.append(f"layer_scale_init={c.layer_scale_init} (LayerScale has no HF equivalent)")
    if c.drop_path_rate:
        out.append(f"drop_path_rate={c.drop_path_rate} (DropPath has no HF equivalent)")
    if c.hidden_dropout or c.embedding_dropout:
        out.append("hidden_dropout / embedding_dropout must be 0 (HF decoders have no residual dropout)")
    if c.mlp_type not in MLP_TO_HIDDEN_ACT:
        out.append(f"mlp_type={c.mlp_type!r} (must be a gated MLP: {', '.join(MLP_TO_HIDDEN_ACT)})")
    return out


class FamilyAdapter:
    """Base adapter; subclasses set the class attributes and override the three `_family_*` hooks."""

    model_type: str = ""
    architecture: str = ""
    default_max_position_embeddings: int = 2048  # the HF config class default, used when the key is absent
    default_bos_token_id: int | None = None
    default_eos_token_id: int | None = None

    # ---- hooks ---------------------------------------------------------------------------------------
    def _family_reasons(self, config: ByteConfig) -> list[str]:
        """Family-specific reasons (biases, QK-norm, sliding window) the config cannot be expressed."""
        return []

    def _family_fields(self, config: ByteConfig) -> dict[str, Any]:
        """HF config keys this family adds (attention_bias, sliding_window, ...)."""
        return {}

    def _byte_fields(self, hf: dict[str, Any]) -> dict[str, Any]:
        """ByteConfig fields this family's config keys determine (qkv_bias, qk_norm, sliding_window, ...)."""
        return {}

    # ---- config --------------------------------------------------------------------------------------
    def reasons(self, config: ByteConfig) -> list[str]:
        return common_reasons(config) + self._family_reasons(config)

    def can_express(self, config: ByteConfig) -> bool:
        return not self.reasons(config)

    def to_hf_config(self, config: ByteConfig, dtype: torch.dtype | str | None = None) -> dict[str, Any]:
        why = self.reasons(config)
        if why:
            raise ValueError(f"this config cannot be saved as {self.model_type}: {'; '.join(why)}. "
                             f"Save without family= to use the stellarbyte format")
        c = config
        rope = rope_to_hf(c.rope_config, c.max_position_embeddings)
        dtype = dtype_name(dtype if dtype is not None else c.torch_dtype)
        hf: dict[str, Any] = {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_key_value_heads,
            "head_dim": c.head_dim,
            "hidden_act": MLP_TO_HIDDEN_ACT[c.mlp_type],
            "max_position_embeddings": c.max_position_embeddings,
            "initializer_range": c.initializer_range,
            "rms_norm_eps": c.norm_eps,
            "attention_dropout": c.attention_dropout,
            "tie_word_embeddings": c.tie_word_embeddings,
            "use_cache": c.use_cache,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "pad_token_id": c.pad_token_id,
            "rope_parameters": rope,
            # transformers-4 readers look for these two instead of rope_parameters
            "rope_theta": rope["rope_theta"],
            "rope_scaling": rope_scaling_v4(rope),
            "dtype": dtype,
            "torch_dtype": dtype,
        }
        hf.update(self._family_fields(c))
        return hf

    def from_hf_config(self, hf: dict[str, Any]) -> ByteConfig:
        missing = [k for k in REQUIRED_HF_KEYS if hf.get(k) is None]
        if missing:
            raise ValueError(f"config.json ({self.model_type}) lacks required keys {missing}")
        if hf.get("quantization_config"):
            raise ValueError("quantized checkpoints (quantization_config in config.json) are not supported; "
                             "load a float16/bfloat16/float32 checkpoint")
        act = hf.get("hidden_act", "silu")
        if act not in HIDDEN_ACT_TO_MLP:
            raise ValueError(f"hidden_act={act!r} in config.json is not supported; expected one of "
                             f"{', '.join(HIDDEN_ACT_TO_MLP)}")
        heads = hf["num_attention_heads"]
        dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
        fields: dict[str, Any] = dict(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            max_position_embeddings=hf.get("max_position_embeddings") or self.default_max_position_embeddings,
            rope_config=rope_from_hf(hf),
            norm_type="rmsnorm",
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            mlp_type=HIDDEN_ACT_TO_MLP[act],
            attention_dropout=float(hf.get("attention_dropout") or 0.0),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            initializer_range=hf.get("initializer_range", 0.02),
            use_cache=hf.get("use_cache", True),
            bos_token_id=_token_id(hf.get("bos_token_id", self.default_bos_token_id), hf["vocab_size"]),
            eos_token_id=hf.get("eos_token_id", self.default_eos_token_id),
            pad_token_id=_token_id(hf.get("pad_token_id"), hf["vocab_size"]),
            torch_dtype=dtype_name(dtype),
            model_type=self.model_type,
        )
        fields.update(self._byte_fields(hf))
        return ByteConfig(**fields)

    # ---- tensors -------------------------------------------------------------------------------------
    def to_hf_state_dict(self, state_dict: dict[str, torch.Tensor], config: ByteConfig) -> dict[str, torch.Tensor]:
        """Our names equal transformers' names; tied embeddings are stored once (as embed_tokens)."""
        return {k: v for k, v in state_dict.items() if not (config.tie_word_embeddings and k == "lm_head.weight")}

    def from_hf_state_dict(self, state_dict: dict[str, torch.Tensor],
                           config: ByteConfig) -> dict[str, torch.Tensor]:
        out = {}
        for name, tensor in state_dict.items():
            if name.endswith(IGNORED_HF_TENSOR_SUFFIXES):
                continue
            if config.tie_word_embeddings and name == "lm_head.weight":
                continue  # some tied checkpoints store the head anyway; the embedding is the one we keep
            out[name] = tensor
        return out


def _token_id(value: Any, vocab_size: int) -> int | None:
    """Old Llama configs use pad_token_id=-1 for "none"; ids outside the vocabulary mean no such token."""
    if value is None or isinstance(value, list):
        return value[0] if isinstance(value, list) and value else None
    return int(value) if 0 <= int(value) < vocab_size else None
