"""TrainConfig: YAML + overrides, unknown keys with a suggestion, validation, atomic save."""

from __future__ import annotations

import pytest

from stellarbyte.train.config import TrainConfig, apply_overrides, load_config, save_config


def test_yaml_with_overrides_round_trips(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hidden_size: 64\n  num_hidden_layers: 2\nlr: 1.0e-3\nbetas: [0.9, 0.99]\n")
    cfg = load_config(path, ["lr=3e-4", "model.hidden_size=128", "max-steps=500", "precision=bf16"])
    assert cfg.lr == 3e-4 and cfg.model == {"hidden_size": 128, "num_hidden_layers": 2}
    assert cfg.max_steps == 500 and cfg.betas == (0.9, 0.99) and cfg.precision == "bf16"
    save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(tmp_path / "out" / "config.yaml") == cfg
    assert not list((tmp_path / "out").glob("*.tmp-*"))


def test_unknown_key_suggests_nearest():
    with pytest.raises(ValueError, match="unknown train config key 'learning_rat'|did you mean"):
        TrainConfig.from_dict({"warmup_step": 10})
    with pytest.raises(ValueError, match="did you mean 'warmup_steps'"):
        TrainConfig.from_dict({"warmup_step": 10})


def test_invalid_values_and_files(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(max_steps=10, warmup_steps=20)
    with pytest.raises(FileNotFoundError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(ValueError, match="field=value"):
        apply_overrides({}, ["lr"])


def test_model_config_builds_byteconfig():
    cfg = TrainConfig(model={"vocab_size": 128, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2})
    assert cfg.model_config().hidden_size == 64 and cfg.tokens_per_step == 8 * 256
