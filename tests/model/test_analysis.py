"""Model analysis against references: the real modules' parameters, transformers' models, published counts
(GPT-2 124M, Llama-2-7B's KV cache), PaLM's 6N + 12LHQT, Korthikanti et al.'s activation formula, torch's
FlopCounterMode, and the tensors autograd actually saves (saved_tensors_hooks)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from stellarbyte.cli import main as cli_main
from stellarbyte.config import ByteConfig
from stellarbyte.model import analysis_cli
from stellarbyte.model.analysis import (
    activation_memory,
    analyze,
    attention_context,
    count_flops,
    count_parameters,
    dtype_bytes,
    kv_cache_bytes,
    mfu,
    model_flops_per_token,
    module_table,
)
from stellarbyte.model.transformer import ByteModel

TINY = dict(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
            max_position_embeddings=64)

VARIANTS = {
    "llama": {},
    "gqa": dict(num_key_value_heads=2),
    "mqa": dict(num_key_value_heads=1),
    "tied": dict(tie_word_embeddings=True),
    "biases": dict(qkv_bias=True, attention_out_bias=True, mlp_bias=True),
    "gpt2-like": dict(position_embedding_type="learned", norm_type="layernorm", mlp_type="gelu", qkv_bias=True,
                      attention_out_bias=True, mlp_bias=True, tie_word_embeddings=True),
    "relu2-bias": dict(mlp_type="relu2", mlp_bias=True),
    "geglu-offset": dict(mlp_type="geglu", norm_type="rmsnorm_offset"),
    "layerscale": dict(layer_scale_init=1e-2),
    "qk_norm": dict(qk_norm=True, num_key_value_heads=2),
    "parallel": dict(parallel_residual=True),
    "parallel-layernorm": dict(parallel_residual=True, norm_type="layernorm"),
    "deepnorm": dict(norm_scheme="deepnorm"),
    "post-layernorm": dict(norm_scheme="post", norm_type="layernorm"),
    "xpos": dict(position_embedding_type="xpos"),
    "xpos-partial": dict(position_embedding_type="xpos", rope_config=dict(partial_rotary_factor=0.5)),
    "alibi": dict(position_embedding_type="alibi"),
    "sinusoidal": dict(position_embedding_type="sinusoidal"),
    "none": dict(position_embedding_type="none"),
    "head_dim": dict(head_dim=24, num_key_value_heads=2),
    "window": dict(sliding_window=8),
    "eager-mha": dict(attention_implementation="eager"),
    "eager-gqa-window": dict(attention_implementation="eager", num_key_value_heads=2, sliding_window=8),
    "eager-dropout": dict(attention_implementation="eager", attention_dropout=0.1),
    "dropouts": dict(hidden_dropout=0.1, embedding_dropout=0.1),
    "partial-rope": dict(rope_config=dict(partial_rotary_factor=0.5)),
}


def tiny(**overrides) -> ByteConfig:
    return ByteConfig(**{**TINY, **overrides})


# ---- parameters ------------------------------------------------------------------------------------------


def component_of(name: str) -> str:
    """Classify a ByteModel parameter by its name (written independently of analysis.py)."""
    if name == "model.embed_tokens.weight":
        return "token_embedding"
    if name == "model.position.embed_positions.weight":
        return "position_embedding"
    if name == "model.position.scale":
        return "xpos_scale"
    if ".self_attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if "layernorm" in name or name.startswith("model.norm."):
        return "norms"
    if ".layer_scale." in name:
        return "layer_scale"
    if name == "lm_head.weight":
        return "lm_head"
    raise AssertionError(f"unclassified parameter {name}")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parameter_counts_equal_the_modules(variant: str) -> None:
    config = tiny(**VARIANTS[variant])
    model = ByteModel(config)
    by_name: dict[str, int] = {}
    for name, p in model.named_parameters():  # tied weights appear once, under embed_tokens
        by_name[component_of(name)] = by_name.get(component_of(name), 0) + p.numel()
    counts = count_parameters(config)
    expected = {k: v for k, v in counts.by_component().items() if v}
    assert by_name == expected
    assert counts.total == model.num_parameters() == sum(p.numel() for p in model.parameters())
    learned = config.max_position_embeddings * config.hidden_size if config.position_embedding_type == "learned" else 0
    # ByteModel.num_parameters(exclude_embeddings=True) drops embed_tokens and lm_head only
    assert counts.non_embedding + learned == model.num_parameters(exclude_embeddings=True)
    linear_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counts.matmul_weights == linear_weights  # the tied lm_head still multiplies


def test_gpt2_124m_parameter_count() -> None:
    """GPT-2 small has 124,439,808 parameters (transformers' GPT2LMHeadModel, tied wte/lm_head)."""
    config = ByteConfig(vocab_size=50257, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=1024, position_embedding_type="learned",
                        norm_type="layernorm", mlp_type="gelu", qkv_bias=True, attention_out_bias=True,
                        mlp_bias=True, tie_word_embeddings=True)
    counts = count_parameters(config)
    assert counts.total == 124_439_808
    assert counts.token_embedding == 50257 * 768 and counts.position_embedding == 1024 * 768
    assert counts.attention_per_layer == 768 * 2304 + 2304 + 768 * 768 + 768  # c_attn + c_proj
    assert counts.mlp_per_layer == 768 * 3072 + 3072 + 3072 * 768 + 768  # c_fc + c_proj
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert hf.num_parameters() == counts.total


@pytest.mark.parametrize("family,extra", [("llama", {}), ("llama", {"tie_word_embeddings": True}),
                                          ("qwen2", {}), ("qwen3", {})])
def test_parameter_counts_equal_transformers(family: str, extra: dict) -> None:
    transformers = pytest.importorskip("transformers")
    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                 num_attention_heads=8, num_key_value_heads=2, **extra)
    hf_cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
              "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
              "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM)}[family]
    hf_config = hf_cls[0](**shape, head_dim=8) if family == "qwen3" else hf_cls[0](**shape)
    with torch.device("meta"):
        hf = hf_cls[1](hf_config)
    ours = ByteConfig(**shape, qkv_bias=family == "qwen2", qk_norm=family == "qwen3")
    assert count_parameters(ours).total == hf.num_parameters()


# ---- FLOPs -----------------------------------------------------------------------------------------------

GPT2 = dict(vocab_size=50257, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=1024, position_embedding_type="learned", norm_type="layernorm", mlp_type="gelu",
            qkv_bias=True, attention_out_bias=True, mlp_bias=True, tie_word_embeddings=True)


def test_gpt2_flops_by_hand() -> None:
    config = ByteConfig(**GPT2)
    n_matmul = 12 * (768 * 3 * 768 + 768 * 768 + 2 * 768 * 3072) + 50257 * 768  # projections + LM head
    assert n_matmul == 123_532_032
    f = count_flops(config, 1024)
    attention = 2 * 2 * 1024 * 64 * 12 * 12  # QK^T + AV, every layer, full context
    assert f.forward == 2 * n_matmul + attention == 284_812_800
    # PaLM appendix B: 6N + 12 L H Q T
    assert f.training == model_flops_per_token(config, 1024) == 6 * n_matmul + 12 * 12 * 12 * 64 * 1024
    assert model_flops_per_token(config, 1024, training=False) == f.forward
    # nanoGPT's estimate_mfu counts N = all parameters but the position table: within 0.1 %
    nanogpt = 6 * (124_439_808 - 1024 * 768) + 12 * 12 * 12 * 64 * 1024
    assert abs(f.training - nanogpt) / nanogpt < 1e-3
    assert f.kaplan_6n == 6 * count_parameters(config).non_embedding
    assert f.chinchilla_6n == 6 * 124_439_808
    causal = count_flops(config, 1024, "causal")
    assert causal.context == 1025 / 2
    assert causal.attention == 2 * 2 * (1025 / 2) * 64 * 12 * 12
    assert causal.projections == f.projections and causal.lm_head == f.lm_head


def test_mfu() -> None:
    config = ByteConfig(**GPT2)
    # nanoGPT's reference point: 854.4 MFLOP/token; 1e5 tokens/s on a 312 TFLOP/s A100 is 27.4 % MFU
    assert mfu(config, 1024, 1e5, 312e12) == pytest.approx(854_438_400 * 1e5 / 312e12)
    with pytest.raises(ValueError, match="peak_flops_per_second"):
        mfu(config, 1024, 1e5, 0)


def test_attention_context_matches_the_model_mask() -> None:
    """Mean visible keys per query, counted on the decoder's own mask builder, for windows and lengths."""
    from stellarbyte.model.masks import build_attention_mask

    for seq_len, window in [(10, None), (10, 3), (10, 10), (10, 20), (37, 8), (1, 4)]:
        slots = torch.arange(seq_len)
        mask, is_causal = build_attention_mask(slots, slots, None, window, None, torch.float32)
        if mask is None:
            assert is_causal or seq_len == 1
            visible = torch.ones(seq_len, seq_len).tril().sum()
        else:
            visible = (mask[0, 0] == 0).sum()
        assert attention_context(seq_len, window, "causal") == pytest.approx(float(visible) / seq_len)
        assert attention_context(seq_len, window, "full") == min(seq_len, window or seq_len)
    assert attention_context(100) == 100 and attention_context(100, convention="causal") == 50.5
    with pytest.raises(ValueError, match="convention"):
        attention_context(10, None, "triangle")


def test_sliding_window_caps_attention_flops() -> None:
    windowed, full = count_flops(tiny(sliding_window=16), 64), count_flops(tiny(), 64)
    assert windowed.context == 16 and windowed.attention == count_flops(tiny(), 16).attention == full.attention / 4
    assert windowed.projections == full.projections
    saved = 3 * (full.attention - windowed.attention)
    assert model_flops_per_token(tiny(sliding_window=16), 64) == full.training - saved
    assert count_flops(tiny(sliding_window=16), 64, "causal").context == (16 * 17 / 2 + 48 * 16) / 64


def flop_counter(model: ByteModel, ids: torch.Tensor, backward: bool) -> int:
    with FlopCounterMode(display=False) as counter:
        out = model(ids, labels=ids if backward else None)
        if backward:
            out.loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("variant", ["eager-mha", "gqa", "biases", "parallel", "post", "layerscale",
                                     "drop_path", "dropout", "tied"])
def test_flops_equal_torch_flop_counter(variant: str) -> None:
    """Forward, training (3x) and checkpointed training against torch.utils.flop_counter (eager attention:
    the dense (T, T) score matmuls, i.e. the `full` convention)."""
    extra = {"eager-mha": {}, "gqa": dict(num_key_value_heads=2), "tied": dict(tie_word_embeddings=True),
             "biases": dict(qkv_bias=True, attention_out_bias=True, mlp_bias=True),
             "parallel": dict(parallel_residual=True), "post": dict(norm_scheme="post"),
             "layerscale": dict(layer_scale_init=0.1), "drop_path": dict(drop_path_rate=0.1, num_hidden_layers=3),
             "dropout": dict(hidden_dropout=0.1)}[variant]
    config = tiny(attention_implementation="eager", **extra)
    torch.manual_seed(0)
    model = ByteModel(config).train()
    batch, seq_len = 2, 24
    ids = torch.randint(0, config.vocab_size, (batch, seq_len))
    f = count_flops(config, seq_len)
    tokens = batch * seq_len
    assert flop_counter(model, ids, backward=False) == f.forward * tokens
    assert flop_counter(model, ids, backward=True) == f.training * tokens
    model.gradient_checkpointing_enable()
    assert flop_counter(model, ids, backward=True) == f.training_checkpointed * tokens
    assert f.training < f.training_checkpointed <= f.training + f.blocks_forward


# ---- memory ----------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_activation_memory_equals_saved_tensors_on_cuda(variant: str) -> None:
    """bf16 on CUDA: flash SDPA, bool dropout masks, float32 LayerNorm statistics."""
    config = tiny(**VARIANTS[variant])
    torch.manual_seed(0)
    model = ByteModel(config).to(device="cuda", dtype=torch.bfloat16).train()
    ids = torch.randint(0, config.vocab_size, (2, 32), device="cuda")
    assert activation_memory(config, 2, 32, "bfloat16", device="cuda").total == saved_activation_bytes(model, ids)


def test_kv_cache_llama2_7b_is_2_gib_per_4096_tokens() -> None:
    llama2_7b = ByteConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                           num_attention_heads=32, max_position_embeddings=4096)
    assert count_parameters(llama2_7b).total == 6_738_415_616  # Meta's published Llama-2-7B count
    assert kv_cache_bytes(llama2_7b, 1, 4096, "float16") == 2 * 1024**3
    assert kv_cache_bytes(llama2_7b, 3, 4096, "float32") == 12 * 1024**3
    # Llama-2-70B shape (80 layers, 8 KV heads of 128): 320 KiB per token in fp16
    llama2_70b = ByteConfig(vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                            num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=4096)
    assert kv_cache_bytes(llama2_70b, 1, 1, "fp16") == 320 * 1024
    # Mistral-7B's 4096-token window: 8192 tokens cost what 4096 do
    mistral = ByteConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                         sliding_window=4096)
    assert kv_cache_bytes(mistral, 1, 8192, "bf16") == kv_cache_bytes(mistral, 1, 4096, "bf16") == 512 * 1024**2


def test_kv_cache_bytes_equal_the_dynamic_cache() -> None:
    from stellarbyte.infer.cache import DynamicCache

    config = tiny(num_key_value_heads=2)
    model = ByteModel(config).to(torch.bfloat16).eval()
    cache = DynamicCache()
    with torch.no_grad():
        model(torch.randint(0, 128, (3, 20)), past_key_values=cache)
        model.forward_step(torch.randint(0, 128, (3,)), cache)
    stored = sum(t.numel() * t.element_size() for t in cache.keys + cache.values)
    assert stored == kv_cache_bytes(config, 3, 21, torch.bfloat16)


def saved_activation_bytes(model: ByteModel, ids: torch.Tensor) -> int:
    """Bytes of distinct non-parameter storages autograd saves for backward during one training forward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and t.dim() > 0:  # 0-dim: the loss's total weight
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids, labels=ids)
    return sum(seen.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_activation_memory_equals_saved_tensors(variant: str, dtype: torch.dtype) -> None:
    config = tiny(**VARIANTS[variant])
    torch.manual_seed(0)
    model = ByteModel(config).to(dtype).train()
    batch, seq_len = 2, 32
    measured = saved_activation_bytes(model, torch.randint(0, config.vocab_size, (batch, seq_len)))
    assert activation_memory(config, batch, seq_len, dtype, device="cpu").total == measured


def test_activation_memory_matches_korthikanti() -> None:
    """Korthikanti et al. (2022), eq. 1: a GPT layer keeps s b h (34 + 5 a s / h) bytes in 16-bit with
    dropout. Ours adds what this model does differently: softmax probabilities kept in float32 (2 more bytes
    per score), LayerNorm mean/rstd in float32 (2 norms x 2 x 4 bytes per token), and eager attention's
    boolean causal mask (s^2 bytes per layer)."""
    s, b, h, a = 512, 4, 256, 8
    config = ByteConfig(vocab_size=1000, hidden_size=h, num_hidden_layers=2, num_attention_heads=a,
                        intermediate_size=4 * h, max_position_embeddings=s, position_embedding_type="learned",
                        norm_type="layernorm", mlp_type="gelu", qkv_bias=True, attention_out_bias=True,
                        mlp_bias=True, attention_implementation="eager", attention_dropout=0.1, hidden_dropout=0.1)
    per_layer = activation_memory(config, b, s, "float16", device="cuda").per_layer
    assert per_layer == s * b * h * 34 + 5 * a * s * s * b + 2 * a * s * s * b + 16 * s * b + s * s
    # flash-style attention drops the 5 a s^2 b term entirely (Dao et al., 2022)
    flash = activation_memory(config.replace(attention_implementation="sdpa", attention_dropout=0.0), b, s, "float16")
    assert flash.per_layer < s * b * h * 36


def test_checkpointed_activation_memory() -> None:
    config = tiny()
    mem = activation_memory(config, 2, 32, "bfloat16")
    assert mem.checkpointed_stored == 2 * (2 * 32 * 64 * 2) + mem.shared + mem.head
    assert mem.checkpointed_peak == mem.checkpointed_stored + mem.per_layer
    assert mem.total == 2 * mem.per_layer + mem.shared + mem.head
    # with checkpointing on, autograd keeps each block's input plus what lives outside the blocks
    torch.manual_seed(0)
    model = ByteModel(config).to(torch.bfloat16).train()
    model.gradient_checkpointing_enable()
    assert saved_activation_bytes(model, torch.randint(0, 128, (2, 32))) == mem.checkpointed_stored


def test_dtype_and_shape_errors() -> None:
    assert dtype_bytes("bf16") == dtype_bytes(torch.bfloat16) == 2 and dtype_bytes("float32") == 4
    with pytest.raises(ValueError, match="unknown dtype 'fp12'"):
        dtype_bytes("fp12")
    config = tiny()
    with pytest.raises(ValueError, match="batch_size"):
        analyze(config, batch_size=0)
    with pytest.raises(ValueError, match="seq_len=65 exceeds"):
        analyze(config, seq_len=65)
    with pytest.raises(ValueError, match="device"):
        activation_memory(config, 1, 8, device="tpu")


# ---- module table and report ---------------------------------------------------------------------------


def test_module_table_matches_the_model() -> None:
    config = tiny(tie_word_embeddings=True, layer_scale_init=0.1, num_hidden_layers=3)
    model = ByteModel(config)
    rows = {r.name: r for r in module_table(config)}
    real = dict(model.named_modules())
    for name, row in rows.items():
        if name in ("(model)", "lm_head"):
            continue
        assert row.params == sum(p.numel() for p in real[name].parameters()), name
        assert row.type == type(real[name]).__name__
    assert rows["(model)"].params == count_parameters(config).total
    assert rows["lm_head"].params == 0 and "tied to model.embed_tokens" in rows["lm_head"].shapes
    assert rows["model.layers.0.self_attn.k_proj"].shapes == "weight 64x64"
    assert rows["model.layers.0.attn_residual.layer_scale"].shapes == "gamma 64"
    collapsed = {r.name: r for r in module_table(config, collapse_layers=True)}
    assert "model.layers.2.mlp" not in collapsed
    assert collapsed["model.layers.1-2"].params == 2 * rows["model.layers.0"].params
    assert max(r.depth for r in module_table(config, max_depth=2)) == 2


def test_report_renders_the_numbers() -> None:
    report = analyze(ByteConfig(**GPT2), batch_size=8, seq_len=1024, dtype="bf16", modules=True, module_depth=3)
    text = report.format_table()
    assert "124,439,808" in text and "854.438 MFLOP/token" in text and "PreNormBlock x11" in text
    md = report.to_markdown()
    assert "| total | 124.44M  (124,439,808) |" in md and "| module | type | params | shapes |" in md
    assert report.weight_bytes == 124_439_808 * 2
    assert report.kv_cache == 2 * 12 * 8 * 1024 * 768 * 2
    assert report.logits_bytes == 8 * 1024 * 50257 * 2


# ---- CLI -------------------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_on_yaml_and_json(tmp_path, capsys) -> None:
    yaml_path = tmp_path / "gpt2.yaml"
    yaml_path.write_text("model:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in GPT2.items())
                         + "train:\n  lr: 3.0e-4\n")
    code, out, err = run_cli(capsys, str(yaml_path), "--batch-size", "8", "--seq-len", "1024", "--modules")
    assert code == 0, err
    assert "124,439,808" in out and "854.438 MFLOP/token" in out and "embed_positions" in out
    json_path = tmp_path / "tiny.json"
    tiny().save(json_path)
    code, out, _ = run_cli(capsys, str(json_path), "--markdown", "--dtype", "float32")
    assert code == 0 and f"({count_parameters(tiny()).total:,})" in out and "### memory (float32" in out
    code, out, _ = run_cli(capsys, str(json_path), "--activations", "--seq-len", "16", "--dtype", "float32")
    assert code == 0 and "per block (x2)" in out
    mlp_line = next(line for line in out.splitlines() if "mlp gate, act(gate), up" in line)
    assert mlp_line.endswith(" 6,144 x 4 B = 24.00 KiB")  # 4F x T = 4 x 96 x 16 float32 values
    code, out, _ = run_cli(capsys, str(json_path), "--json", "--seq-len", "16", "--batch-size", "2")
    data = json.loads(out)
    assert code == 0 and data["params"]["total"] == count_parameters(tiny()).total
    assert data["flops_per_token"]["training"] == model_flops_per_token(tiny(), 16)
    assert data["memory_bytes"]["kv_cache"] == kv_cache_bytes(tiny(), 2, 16, "bfloat16")


@pytest.mark.parametrize("config", [tiny(num_key_value_heads=2), tiny(norm_type="layernorm", mlp_type="gelu")],
                         ids=["llama-format", "stellarbyte-format"])
def test_cli_on_saved_model_directory(tmp_path, capsys, config: ByteConfig) -> None:
    ByteModel(config).save_pretrained(tmp_path / "ckpt")
    code, out, err = run_cli(capsys, str(tmp_path / "ckpt"), "--seq-len", "32")
    assert code == 0, err
    assert f"({count_parameters(config).total:,})" in out and f"checkpoint {tmp_path / 'ckpt'}" in out


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_cli_on_a_transformers_checkpoint(tmp_path, capsys, family: str) -> None:
    """A directory written by transformers itself: the count must equal transformers' own."""
    transformers = pytest.importorskip("transformers")
    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=8,
                 num_key_value_heads=2, max_position_embeddings=128)
    if family == "llama":
        hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape))
    else:
        hf = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**shape, head_dim=16))
    hf.save_pretrained(tmp_path / family)
    code, out, err = run_cli(capsys, str(tmp_path / family), "--json")
    assert code == 0, err
    assert json.loads(out)["params"]["total"] == hf.num_parameters()


def test_cli_preset_and_errors(tmp_path, capsys, monkeypatch) -> None:
    presets = tmp_path / "configs"
    presets.mkdir()
    (presets / "tiny-cpu.yaml").write_text("".join(f"{k}: {v}\n" for k, v in TINY.items()))
    monkeypatch.setattr(analysis_cli, "preset_dirs", lambda: (presets,))
    code, out, _ = run_cli(capsys, "tiny-cpu")
    assert code == 0 and "preset tiny-cpu" in out
    code, _, err = run_cli(capsys, "no-such-preset")
    assert code == 2 and "known presets: tiny-cpu" in err
    code, _, err = run_cli(capsys, str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(capsys, str(tmp_path))
    assert code == 2 and "has no config.json" in err
    code, _, err = run_cli(capsys, "tiny-cpu", "--seq-len", "4096")
    assert code == 2 and "exceeds the model's context window" in err
    code, _, err = run_cli(capsys, "tiny-cpu", "--dtype", "fp12")
    assert code == 2 and "unknown dtype" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model_type": "gpt_neox", "hidden_size": 64}))
    code, _, err = run_cli(capsys, str(bad))
    assert code == 2 and "gpt_neox" in err
