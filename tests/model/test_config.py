import pytest

from stellarbyte import ByteConfig, RoPEConfig


@pytest.mark.parametrize("overrides, field", [
    (dict(hidden_size=100, num_attention_heads=12), "hidden_size"),
    (dict(num_attention_heads=12, num_key_value_heads=5), "num_key_value_heads"),
    (dict(rope_config=dict(rope_type="ntk-by-parts")), "rope_type"),
    (dict(sliding_window=4096, max_position_embeddings=2048), "sliding_window"),
    (dict(attention_dropout=-0.1), "attention_dropout"),
    (dict(drop_path_rate=1.0), "drop_path_rate"),
    (dict(norm_type="batchnorm"), "norm_type"),
    (dict(mlp_type="swish"), "mlp_type"),
    (dict(position_embedding_type="relative"), "position_embedding_type"),
    (dict(attention_implementation="flash"), "attention_implementation"),
    (dict(vocab_size=0), "vocab_size"),
    (dict(parallel_residual=True, norm_scheme="post"), "parallel_residual"),
    (dict(layer_scale_init=-1.0), "layer_scale_init"),
    (dict(pad_token_id=40000), "pad_token_id"),
])
def test_invalid_config_names_field_and_fix(overrides, field):
    base = dict(vocab_size=32000, hidden_size=768, num_attention_heads=12)
    base.update(overrides)
    with pytest.raises(ValueError) as err:
        ByteConfig(**base)
    message = str(err.value)
    assert field in message
    assert ":" in message and len(message.split(":", 1)[1].strip()) > 10  # a fix follows the field


def test_rope_config_validation():
    with pytest.raises(ValueError, match="rope_config.factor"):
        RoPEConfig(rope_type="linear", factor=0.5)
    with pytest.raises(ValueError, match="unknown rope_config keys"):
        RoPEConfig.from_dict({"rope_type": "yarn", "factr": 2.0})


def test_defaults_and_derived_fields():
    c = ByteConfig(vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                   intermediate_size=3072)
    assert c.num_key_value_heads == 12 and c.head_dim == 64 and c.num_key_value_groups == 1
    assert ByteConfig(hidden_size=768, num_attention_heads=12).intermediate_size == 2048  # 8/3 * 768
    assert ByteConfig(hidden_size=768, num_attention_heads=12, mlp_type="gelu").intermediate_size == 3072
    deep = ByteConfig(num_hidden_layers=12, norm_scheme="deepnorm")
    assert deep.deepnorm_alpha == pytest.approx(24**0.25) and deep.deepnorm_beta == pytest.approx(96**-0.25)
    dyn = ByteConfig(max_position_embeddings=1024, rope_config=RoPEConfig(rope_type="dynamic", factor=4.0))
    assert dyn.context_length == 4096


def test_round_trip_and_unknown_key_suggestion(tmp_path):
    c = ByteConfig(hidden_size=256, num_attention_heads=4, rope_config=RoPEConfig(rope_type="yarn", factor=8.0))
    c.save(tmp_path / "c.json")
    assert ByteConfig.load(tmp_path / "c.json") == c
    (tmp_path / "c.yaml").write_text("model:\n  hidden_size: 128\n  num_attention_heads: 2\n")
    assert ByteConfig.load(tmp_path / "c.yaml").hidden_size == 128
    with pytest.raises(ValueError, match="did you mean hidden_size"):
        ByteConfig.from_dict({"hiden_size": 12})


def test_issue_usage_configs_construct():
    config = ByteConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096,
                        rope_config=RoPEConfig(rope_type="yarn", rope_theta=10000.0, factor=8.0))
    assert config.num_key_value_groups == 4 and config.head_dim == 128
