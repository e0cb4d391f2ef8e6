"""The `stellarbyte` command: verb table, demo, generate, presets, and one-line errors."""

from pathlib import Path

import pytest

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_help_lists_the_core_verbs(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for verb in ("info", "generate", "demo", "tokenizer", "data", "bench"):
        assert verb in out


@pytest.mark.parametrize("preset, params", [
    ("gpt2-124m", 124_439_808), ("llama2-7b", 6_738_415_616), ("llama-1b", 1_235_814_400),
    ("mistral-7b", 7_241_732_096), ("tiny-cpu", 1_311_872),
])
def test_presets_have_the_published_sizes(preset, params):
    from stellarbyte.model.analysis import count_parameters

    config = ByteConfig.load(CONFIGS / f"{preset}.yaml")
    assert count_parameters(config).total == params


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--new-tokens", "16"]) == 0
    out = capsys.readouterr().out
    assert "identical tokens: True" in out and "max |diff| = 0.00e+00" in out
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model" / "tokenizer.json").is_file()


def test_generate_verb_with_ids_is_greedy_and_deterministic(tmp_path, capsys):
    import torch

    torch.manual_seed(0)
    model = ByteModel(ByteConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, eos_token_id=None))
    model.save_pretrained(tmp_path)
    assert main(["generate", str(tmp_path), "--ids", "1,2,3", "--max-new-tokens", "6"]) == 0
    printed = [int(x) for x in capsys.readouterr().out.strip().split(",")]
    expected = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=6)[0].tolist()
    assert printed == expected


def test_user_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "missing"), "--ids", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stellarbyte generate: error:") and "\n" not in err
