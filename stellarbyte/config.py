"""Model configuration: `ByteConfig` (the whole decoder) and `RoPEConfig` (rotary position scaling).

Every architecture option is one field here, validated in `__post_init__` so that a bad value fails at
construction with a message that names the field and the fix, never deep inside a forward pass.

Field names follow Hugging Face's Llama/Qwen configs where the concept is the same (hidden_size,
num_key_value_heads, rope_theta, ...) so that the HF adapters in `stellarbyte/hf/` are small key maps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")
POSITION_TYPES = ("rope", "xpos", "alibi", "learned", "sinusoidal", "none")
NORM_TYPES = ("rmsnorm", "layernorm", "rmsnorm_offset")
NORM_SCHEMES = ("pre", "post", "deepnorm")
MLP_TYPES = ("swiglu", "geglu", "gelu", "relu2")
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa", "auto")
ATTENTION_TYPES = ("mha",)  # "mla" slots in here (see model/attention.py:build_attention)


def _fail(field_name: str, value: Any, fix: str) -> None:
    raise ValueError(f"invalid {field_name}={value!r}: {fix}")


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(field_name, value, f"choose one of {', '.join(choices)}")


@dataclass
class RoPEConfig:
    """Rotary embedding and its context-extension variants.

    rope_type:
      default  -- theta^(-2i/d) frequencies (Su et al., 2021, RoFormer)
      linear   -- positions divided by `factor` (Chen et al., 2023, position interpolation)
      dynamic  -- NTK-aware base rescaled once the sequence outgrows max_position_embeddings (bloc97/emozilla)
      yarn     -- per-frequency blend of interpolation and extrapolation plus an attention temperature
                  (Peng et al., 2023, YaRN): beta_fast, beta_slow, mscale, mscale_all_dim, attention_factor
      llama3   -- Llama 3.1's piecewise frequency scaling: low_freq_factor, high_freq_factor
    """

    rope_type: str = "default"
    rope_theta: float = 10000.0
    factor: float = 1.0
    original_max_position_embeddings: int | None = None
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool = True
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    partial_rotary_factor: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("rope_config.rope_type", self.rope_type, ROPE_TYPES)
        if self.rope_theta <= 0:
            _fail("rope_config.rope_theta", self.rope_theta, "use a positive base such as 10000.0")
        if self.factor <= 0:
            _fail("rope_config.factor", self.factor, "use a positive scaling factor (1.0 means no scaling)")
        if self.rope_type != "default" and self.rope_type != "dynamic" and self.factor < 1.0:
            _fail("rope_config.factor", self.factor, f"{self.rope_type} scaling needs factor >= 1.0")
        if self.rope_type == "llama3" and not self.high_freq_factor > self.low_freq_factor:
            _fail("rope_config.high_freq_factor", self.high_freq_factor, "must be larger than low_freq_factor")
        if not 0.0 < self.partial_rotary_factor <= 1.0:
            _fail("rope_config.partial_rotary_factor", self.partial_rotary_factor, "use a value in (0, 1]")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RoPEConfig:
        if d is None:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown rope_config keys {sorted(unknown)}; valid keys are {sorted(known)}")
        return cls(**d)


@dataclass
class ByteConfig:
    """Configuration of a decoder-only Transformer (`ByteModel`).

    Defaults describe a GPT-2-small-sized Llama-style model: pre-RMSNorm, SwiGLU, RoPE, untied embeddings.
    """

    vocab_size: int = 32000
    hidden_size: int = 768
    intermediate_size: int | None = None  # None: 4 * hidden_size (plain MLP) or 8/3 * hidden rounded up to 64 (GLU)
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int | None = None  # None: = num_attention_heads (MHA); 1: MQA; in between: GQA
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    max_position_embeddings: int = 2048

    # positions
    position_embedding_type: str = "rope"
    rope_config: RoPEConfig = field(default_factory=RoPEConfig)
    xpos_scale_base: float = 512.0

    # attention
    attention_type: str = "mha"
    attention_implementation: str = "auto"
    qkv_bias: bool = False
    attention_out_bias: bool = False
    qk_norm: bool = False
    sliding_window: int | None = None
    attention_dropout: float = 0.0

    # norms and residual stream
    norm_type: str = "rmsnorm"
    norm_eps: float = 1e-6
    norm_scheme: str = "pre"  # pre | post | deepnorm
    parallel_residual: bool = False
    layer_scale_init: float | None = None  # LayerScale (Touvron et al., 2021, CaiT): per-channel residual gain
    drop_path_rate: float = 0.0  # stochastic depth (Huang et al., 2016), linearly increasing with depth
    hidden_dropout: float = 0.0
    embedding_dropout: float = 0.0

    # MLP
    mlp_type: str = "swiglu"
    mlp_bias: bool = False

    # embeddings and initialisation
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    scale_residual_init: bool = True  # GPT-2: residual projections get std / sqrt(2 * num_hidden_layers)

    # special tokens
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = None

    use_cache: bool = True
    torch_dtype: str = "float32"
    model_type: str = "stellarbyte"

    def __post_init__(self) -> None:
        if isinstance(self.rope_config, dict):
            self.rope_config = RoPEConfig.from_dict(self.rope_config)
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                _fail(name, value, "must be a positive integer")
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                _fail("hidden_size", self.hidden_size,
                      f"must be divisible by num_attention_heads={self.num_attention_heads} "
                      f"(or set head_dim explicitly)")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads <= 0 or self.num_attention_heads % self.num_key_value_heads:
            _fail("num_key_value_heads", self.num_key_value_heads,
                  f"must divide num_attention_heads={self.num_attention_heads} (1 = MQA, equal = MHA)")
        if self.head_dim <= 0:
            _fail("head_dim", self.head_dim, "must be a positive integer")
        if self.intermediate_size is None:
            if self.mlp_type in ("swiglu", "geglu"):
                self.intermediate_size = 64 * math.ceil(8 * self.hidden_size / 3 / 64)
            else:
                self.intermediate_size = 4 * self.hidden_size
        if self.intermediate_size <= 0:
            _fail("intermediate_size", self.intermediate_size, "must be a positive integer")
        _check_choice("position_embedding_type", self.position_embedding_type, POSITION_TYPES)
        _check_choice("attention_type", self.attention_type, ATTENTION_TYPES)
        _check_choice("attention_implementation", self.attention_implementation, ATTENTION_IMPLEMENTATIONS)
        _check_choice("norm_type", self.norm_type, NORM_TYPES)
        _check_choice("norm_scheme", self.norm_scheme, NORM_SCHEMES)
        _check_choice("mlp_type", self.mlp_type, MLP_TYPES)
        if self.position_embedding_type in ("rope", "xpos"):
            rotary = int(self.head_dim * self.rope_config.partial_rotary_factor)
            if rotary % 2:
                _fail("head_dim", self.head_dim, "rotary embeddings need an even number of rotated dimensions")
        if self.position_embedding_type == "xpos" and self.rope_config.rope_type != "default":
            _fail("rope_config.rope_type", self.rope_config.rope_type, "XPos uses the default rotary frequencies")
        if self.sliding_window is not None:
            if not isinstance(self.sliding_window, int) or self.sliding_window <= 0:
                _fail("sliding_window", self.sliding_window, "use a positive number of tokens, or None")
            if self.sliding_window > self.max_position_embeddings:
                _fail("sliding_window", self.sliding_window,
                      f"must not exceed max_position_embeddings={self.max_position_embeddings}; "
                      f"use None for full attention")
        for name in ("attention_dropout", "hidden_dropout", "embedding_dropout", "drop_path_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                _fail(name, value, "must be a probability in [0, 1)")
        if self.layer_scale_init is not None and self.layer_scale_init <= 0:
            _fail("layer_scale_init", self.layer_scale_init, "use a small positive value such as 1e-4, or None")
        if self.norm_eps <= 0:
            _fail("norm_eps", self.norm_eps, "must be positive, e.g. 1e-6")
        if self.parallel_residual and self.norm_scheme != "pre":
            _fail("parallel_residual", True, "parallel residual blocks are pre-norm; set norm_scheme='pre'")
        if self.initializer_range <= 0:
            _fail("initializer_range", self.initializer_range, "must be positive, e.g. 0.02")
        for name in ("bos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                _fail(name, value, f"must be a token id in [0, vocab_size={self.vocab_size}) or None")

    # ---- derived quantities -------------------------------------------------------------------------
    @property
    def num_key_value_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def context_length(self) -> int:
        """Longest sequence the model accepts. Dynamic NTK RoPE extends max_position_embeddings by `factor`;
        the other scalings already state the extended length in max_position_embeddings (HF convention)."""
        rope = self.rope_config
        if self.position_embedding_type == "rope" and rope.rope_type == "dynamic":
            return int(self.max_position_embeddings * max(rope.factor, 1.0))
        return self.max_position_embeddings

    @property
    def eos_token_ids(self) -> list[int]:
        if self.eos_token_id is None:
            return []
        return list(self.eos_token_id) if isinstance(self.eos_token_id, (list, tuple)) else [self.eos_token_id]

    @property
    def deepnorm_alpha(self) -> float:
        """Residual scale for DeepNorm, decoder-only form (Wang et al., 2022, DeepNet): (2N)^(1/4)."""
        return (2 * self.num_hidden_layers) ** 0.25

    @property
    def deepnorm_beta(self) -> float:
        """Initialisation gain for DeepNorm's value/output/MLP projections: (8N)^(-1/4)."""
        return (8 * self.num_hidden_layers) ** -0.25

    # ---- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ByteConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            hints = [f"{k} (did you mean {_closest(k, known)}?)" if _closest(k, known) else k for k in unknown]
            raise ValueError(f"unknown ByteConfig keys: {', '.join(hints)}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ByteConfig:
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
            data = data.get("model", data)
        else:
            data = json.loads(text)
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> ByteConfig:
        return dataclasses.replace(self, **changes)


def _closest(name: str, candidates: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return match[0] if match else None
