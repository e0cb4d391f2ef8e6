"""Config maps between ByteConfig and HF config.json: family choice, round trips, v4-era rope keys, refusals.

References: transformers' LlamaConfig / Qwen2Config / Qwen3Config / MistralConfig (read back by AutoConfig)
and its modeling_rope_utils (rope_parameters in v5, rope_scaling + rope_theta in v4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM

from stellarbyte import ByteConfig, ByteModel, RoPEConfig
from stellarbyte.hf import llama, mistral, native, qwen2, qwen3
from stellarbyte.hf.parity import CASES, TINY, hf_config_for, randomize_
from stellarbyte.hf.registry import choose_adapter, get_adapter
from stellarbyte.hf.rope import rope_from_hf, rope_to_hf

BASE = {**TINY, "torch_dtype": "float32"}


def cfg(**kw) -> ByteConfig:
    return ByteConfig(**{**BASE, **kw})


# ---- which family a config saves as ------------------------------------------------------------------


@pytest.mark.parametrize("fields, family", [
    ({}, "llama"),
    ({"qkv_bias": True, "attention_out_bias": True}, "llama"),
    ({"mlp_bias": True}, "llama"),
    ({"qkv_bias": True}, "qwen2"),
    ({"qkv_bias": True, "sliding_window": 16}, "qwen2"),
    ({"qk_norm": True}, "qwen3"),
    ({"qk_norm": True, "sliding_window": 16}, "qwen3"),
    ({"sliding_window": 16}, "mistral"),
    ({"position_embedding_type": "xpos"}, "stellarbyte"),
    ({"norm_type": "layernorm"}, "stellarbyte"),
    ({"norm_scheme": "deepnorm"}, "stellarbyte"),
    ({"parallel_residual": True}, "stellarbyte"),
    ({"layer_scale_init": 1e-4}, "stellarbyte"),
    ({"mlp_type": "gelu"}, "stellarbyte"),
    ({"qk_norm": True, "qkv_bias": True}, "stellarbyte"),  # QK-norm with q/k/v-only bias: no HF family
    ({"rope_config": RoPEConfig(partial_rotary_factor=0.5)}, "stellarbyte"),
])
def test_automatic_family(fields: dict, family: str) -> None:
    assert choose_adapter(cfg(**fields)).model_type == family


def test_loaded_family_is_kept_when_it_still_fits() -> None:
    # a Mistral checkpoint without a window would otherwise save as Llama
    assert choose_adapter(cfg(model_type="mistral")).model_type == "mistral"
    assert choose_adapter(cfg(model_type="mistral", qkv_bias=True)).model_type == "qwen2"


def test_forced_family_that_cannot_express_lists_reasons() -> None:
    with pytest.raises(ValueError, match=r"family='llama'.*qk_norm=True.*sliding_window"):
        choose_adapter(cfg(qk_norm=True, sliding_window=8), family="llama")
    with pytest.raises(ValueError, match="unsupported model_type 'gpt2'.*llama, qwen2, qwen3, mistral, stellarbyte"):
        choose_adapter(cfg(), family="gpt2")
    assert choose_adapter(cfg(), family="stellarbyte").model_type == "stellarbyte"
    assert not mistral.can_express(cfg(qkv_bias=True))
    assert not qwen2.can_express(cfg())  # Qwen2 always has q/k/v biases
    assert not qwen3.can_express(cfg())  # Qwen3 always has QK-norm
    assert llama.can_express(cfg(mlp_type="geglu"))


# ---- config dicts transformers reads -----------------------------------------------------------------

ROUND_TRIP = [
    ("llama", cfg(norm_eps=1e-5, attention_dropout=0.1, tie_word_embeddings=True, bos_token_id=1,
                  eos_token_id=[2, 3], pad_token_id=0, initializer_range=0.01)),
    ("llama", cfg(qkv_bias=True, attention_out_bias=True, mlp_bias=True,
                  rope_config=RoPEConfig("llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                         high_freq_factor=4.0, original_max_position_embeddings=32))),
    ("llama", cfg(rope_config=RoPEConfig("yarn", factor=4.0, original_max_position_embeddings=32,
                                         beta_fast=16.0, mscale=0.7, mscale_all_dim=0.5, truncate=False))),
    ("llama", cfg(head_dim=32, rope_config=RoPEConfig("dynamic", factor=2.0))),
    ("qwen2", cfg(qkv_bias=True, sliding_window=16, rope_config=RoPEConfig(rope_theta=1e6))),
    ("qwen3", cfg(qk_norm=True, qkv_bias=True, attention_out_bias=True, head_dim=32)),
    ("mistral", cfg(sliding_window=16, rope_config=RoPEConfig("linear", factor=2.0))),
]


@pytest.mark.parametrize("family, config", ROUND_TRIP, ids=lambda x: x if isinstance(x, str) else "")
def test_config_round_trip(family: str, config: ByteConfig) -> None:
    adapter = get_adapter(family)
    hf = adapter.to_hf_config(config)
    assert hf["model_type"] == family and hf["dtype"] == "float32"
    back = adapter.from_hf_config(json.loads(json.dumps(hf)))  # through JSON, as on disk
    assert back.to_dict() == config.replace(model_type=family).to_dict()


@pytest.mark.parametrize("family, config", ROUND_TRIP, ids=lambda x: x if isinstance(x, str) else "")
def test_transformers_reads_our_config(family: str, config: ByteConfig, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(get_adapter(family).to_hf_config(config)))
    hf = AutoConfig.from_pretrained(tmp_path)
    assert hf.model_type == family
    assert (hf.num_key_value_heads, hf.head_dim, hf.rms_norm_eps) == (
        config.num_key_value_heads, config.head_dim, config.norm_eps)
    assert hf.tie_word_embeddings == config.tie_word_embeddings
    rope = hf.rope_parameters
    assert rope["rope_type"] == config.rope_config.rope_type
    assert rope["rope_theta"] == config.rope_config.rope_theta
    if config.rope_config.rope_type != "default":
        assert rope["factor"] == config.rope_config.factor
    assert getattr(hf, "sliding_window", None) == config.sliding_window
    if family in ("qwen2", "qwen3"):
        expected = "sliding_attention" if config.sliding_window else "full_attention"
        assert hf.layer_types == [expected] * config.num_hidden_layers


def test_rope_parameters_are_v5_form() -> None:
    params = rope_to_hf(RoPEConfig("yarn", factor=4.0), max_position_embeddings=128)
    assert params == {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                      "original_max_position_embeddings": 128, "beta_fast": 32.0, "beta_slow": 1.0, "truncate": True}


def test_v4_rope_scaling_form_is_read() -> None:
    rope = rope_from_hf({"rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 2.0}})
    assert (rope.rope_type, rope.factor, rope.rope_theta) == ("linear", 2.0, 500000.0)
    rope = rope_from_hf({"rope_theta": 500000.0, "rope_scaling": {
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}})
    assert (rope.rope_type, rope.original_max_position_embeddings, rope.high_freq_factor) == ("llama3", 8192, 4.0)
    assert rope_from_hf({}).rope_theta == 10000.0  # transformers' default_theta
    assert rope_from_hf({"rope_theta": 1e6, "rope_scaling": None}).rope_type == "default"


def test_v4_era_checkpoint_matches_transformers(tmp_path: Path) -> None:
    """An HF checkpoint whose config.json uses rope_scaling + rope_theta + torch_dtype (transformers 4.x)
    loads with the same rotary scaling as transformers gives it."""
    case = next(c for c in CASES if c.name == "rope-yarn")
    hf = AutoModelForCausalLM.from_config(hf_config_for(case)).eval()
    randomize_(hf)
    hf.save_pretrained(tmp_path)
    d = json.loads((tmp_path / "config.json").read_text())
    rope = d.pop("rope_parameters")
    d["rope_theta"] = rope.pop("rope_theta") * 2  # a non-default base proves it is read
    d["rope_scaling"] = {"type": rope.pop("rope_type"), **rope}
    d["torch_dtype"] = d.pop("dtype")
    (tmp_path / "config.json").write_text(json.dumps(d))
    ours = ByteModel.from_pretrained(tmp_path)
    assert ours.config.rope_config.rope_type == "yarn" and ours.config.rope_config.rope_theta == 20000.0
    reference = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, TINY["vocab_size"], (1, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(ids).logits - reference(input_ids=ids).logits).abs().max() <= 1e-4


def test_hf_defaults_and_token_ids() -> None:
    d = {"model_type": "llama", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 1, "num_attention_heads": 4, "pad_token_id": -1}
    c = llama.from_hf_config(d)
    assert c.pad_token_id is None  # old Llama "no pad" convention
    assert (c.bos_token_id, c.eos_token_id, c.num_key_value_heads, c.head_dim) == (1, 2, 4, 8)
    assert c.max_position_embeddings == 2048 and c.mlp_type == "swiglu" and not c.qkv_bias
    q = qwen2.from_hf_config({**d, "model_type": "qwen2"})
    assert q.qkv_bias and not q.attention_out_bias and q.bos_token_id is None
    m = mistral.from_hf_config({**d, "model_type": "mistral", "max_position_embeddings": 64})
    assert m.sliding_window is None  # the class default window (4096) is longer than the context


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "relu"}, "hidden_act='relu'"),
    ({"vocab_size": None}, r"lacks required keys \['vocab_size'\]"),
    ({"pretraining_tp": 2}, "pretraining_tp=2"),
    ({"quantization_config": {"quant_method": "gptq"}}, "quantized checkpoints"),
    ({"rope_parameters": {"rope_type": "longrope", "rope_theta": 1e4}}, "unsupported rope_type 'longrope'"),
    ({"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e4},
                          "sliding_attention": {"rope_type": "default", "rope_theta": 1e6}}}, "differ per layer"),
])
def test_unsupported_hf_configs_fail_clearly(change: dict, message: str) -> None:
    d = {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
         "num_attention_heads": 4, **change}
    with pytest.raises(ValueError, match=message):
        llama.from_hf_config(d)


def test_qwen_mixed_window_layers_are_refused() -> None:
    d = {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
         "num_attention_heads": 4, "use_sliding_window": True, "sliding_window": 8, "max_window_layers": 2,
         "max_position_embeddings": 64}
    with pytest.raises(ValueError, match="mixes sliding and full attention"):
        qwen2.from_hf_config(d)
    assert qwen2.from_hf_config({**d, "max_window_layers": 0}).sliding_window == 8
    assert qwen2.from_hf_config({**d, "max_window_layers": 4}).sliding_window is None
    assert qwen2.from_hf_config({**d, "use_sliding_window": False}).sliding_window is None


# ---- our own format --------------------------------------------------------------------------------

EXOTIC = [
    cfg(position_embedding_type="xpos", norm_type="layernorm", parallel_residual=True, layer_scale_init=0.1,
        mlp_type="gelu", tie_word_embeddings=True),
    cfg(position_embedding_type="alibi", norm_scheme="deepnorm", mlp_type="relu2", norm_type="rmsnorm_offset"),
    cfg(position_embedding_type="learned", norm_scheme="post", drop_path_rate=0.1,
        rope_config=RoPEConfig(partial_rotary_factor=0.5)),
    cfg(position_embedding_type="sinusoidal", mlp_type="geglu", norm_type="layernorm", embedding_dropout=0.1),
]


@pytest.mark.parametrize("config", EXOTIC, ids=["xpos-parallel-layerscale", "alibi-deepnorm", "learned-post",
                                             "sinusoidal-layernorm"])
def test_native_format_round_trip(config: ByteConfig, tmp_path: Path) -> None:
    model = ByteModel(config).eval()
    randomize_(model, seed=4)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "stellarbyte" and saved["architectures"] == ["ByteModel"]
    loaded = ByteModel.from_pretrained(tmp_path)
    assert loaded.config.to_dict() == config.to_dict()
    ids = torch.randint(0, TINY["vocab_size"], (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert native.can_express(config)


def test_tied_embeddings_are_saved_once(tmp_path: Path) -> None:
    model = ByteModel(cfg(tie_word_embeddings=True))
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        names = set(f.keys())  # noqa: SIM118
    assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names
    loaded = ByteModel.from_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
