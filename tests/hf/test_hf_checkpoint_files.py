"""Checkpoint files: bad directories and tensors fail with messages that list the problem; saving is atomic;
sharding, pytorch_model.bin (weights_only) and generation_config.json behave like transformers'.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GenerationConfig

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.hf import checkpoint
from stellarbyte.hf.parity import TINY
from stellarbyte.hf.weights import parse_size, plan_shards


@pytest.fixture
def saved(tmp_path: Path) -> tuple[ByteModel, Path]:
    model = ByteModel(ByteConfig(**{**TINY, "num_hidden_layers": 1})).eval()
    path = tmp_path / "ckpt"
    model.save_pretrained(path)
    return model, path


def _rewrite_weights(path: Path, edit) -> None:
    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})


# ---- directories and config.json ------------------------------------------------------------------


def test_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ByteModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        ByteModel.from_pretrained(tmp_path / "file.txt")
    with pytest.raises(FileNotFoundError, match=r"has no config\.json \(found \['file\.txt'\]\)"):
        ByteModel.from_pretrained(tmp_path)


def test_bad_config_json(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        ByteModel.from_pretrained(path)
    (path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="unsupported model_type 'gpt2'.*llama, qwen2, qwen3, mistral, stellarbyte"):
        ByteModel.from_pretrained(path)


def test_missing_weights(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no weights: expected model\.safetensors"):
        ByteModel.from_pretrained(path)


# ---- tensors that do not fit -------------------------------------------------------------------------


def test_missing_tensor_is_listed(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    _rewrite_weights(path, lambda s: s.pop("model.layers.0.mlp.up_proj.weight"))
    with pytest.raises(ValueError, match=r"missing \(1\):\n    model\.layers\.0\.mlp\.up_proj\.weight \(128, 64\)"):
        ByteModel.from_pretrained(path)


def test_unexpected_tensor_is_listed(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    _rewrite_weights(path, lambda s: s.update({"model.layers.0.extra.weight": torch.zeros(3, 5)}))
    with pytest.raises(ValueError, match=r"unexpected \(1\):\n    model\.layers\.0\.extra\.weight \(3, 5\)"):
        ByteModel.from_pretrained(path)


def test_mis_shaped_tensor_is_listed(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    _rewrite_weights(path, lambda s: s.update({"model.norm.weight": torch.ones(65)}))
    with pytest.raises(ValueError, match=r"mis-shaped \(1\):\n    model\.norm\.weight: checkpoint \(65,\) vs "
                                         r"model \(64,\)"):
        ByteModel.from_pretrained(path)


def test_every_problem_in_one_message(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved

    def edit(s: dict) -> None:
        s.pop("lm_head.weight")
        s.pop("model.norm.weight")
        s["bogus"] = torch.zeros(1)
        s["model.embed_tokens.weight"] = torch.zeros(10, 64)

    _rewrite_weights(path, edit)
    with pytest.raises(ValueError) as info:
        ByteModel.from_pretrained(path)
    message = str(info.value)
    for piece in ("missing (2)", "lm_head.weight (256, 64)", "model.norm.weight (64,)", "unexpected (1)",
                  "bogus (1,)", "mis-shaped (1)", "model.embed_tokens.weight: checkpoint (10, 64) vs model (256, 64)"):
        assert piece in message


def test_strict_false_tolerates_missing_and_unexpected_only(saved: tuple[ByteModel, Path]) -> None:
    model, path = saved
    _rewrite_weights(path, lambda s: (s.pop("model.norm.weight"), s.update({"bogus": torch.zeros(2)})))
    with pytest.warns(UserWarning, match="strict=False"):
        loaded = ByteModel.from_pretrained(path, strict=False)
    assert loaded.loading_info["missing_keys"] == ["model.norm.weight"]
    assert loaded.loading_info["unexpected_keys"] == ["bogus"]
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    _rewrite_weights(path, lambda s: s.update({"lm_head.weight": torch.zeros(2, 2)}))
    with pytest.raises(ValueError, match="mis-shaped"):
        ByteModel.from_pretrained(path, strict=False)


def test_bad_dtype_argument(saved: tuple[ByteModel, Path]) -> None:
    _, path = saved
    with pytest.raises(ValueError, match="invalid dtype='float33'"):
        ByteModel.from_pretrained(path, dtype="float33")
    with pytest.raises(ValueError, match="floating-point"):
        ByteModel.from_pretrained(path, dtype=torch.int8)
    assert ByteModel.from_pretrained(path, dtype=torch.float16).dtype == torch.float16


# ---- sharding and other weight files ------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("1.5MB") == 1_500_000
    assert parse_size(1000) == 1000
    for bad in ("five", "5XB", 0, "-3MB"):
        with pytest.raises(ValueError, match="max_shard_size"):
            parse_size(bad)


def test_plan_shards_respects_the_limit() -> None:
    state = {f"t{i}": torch.zeros(100) for i in range(5)}  # 400 bytes each
    assert plan_shards(state, 800) == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert plan_shards({"big": torch.zeros(1000), "s": torch.zeros(1)}, 100) == [["big"], ["s"]]


def test_index_naming_an_absent_shard(saved: tuple[ByteModel, Path]) -> None:
    model, path = saved
    model.save_pretrained(path, max_shard_size="40KB")
    shards = sorted(path.glob("model-*.safetensors"))
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == sum(p.numel() * 4 for p in model.parameters())
    assert set(index["weight_map"]) == set(model.state_dict())
    shards[1].unlink()
    with pytest.raises(FileNotFoundError, match=f"lacks shard files \\['{shards[1].name}'\\]"):
        ByteModel.from_pretrained(path)


def test_pytorch_model_bin_fallback(saved: tuple[ByteModel, Path]) -> None:
    model, path = saved
    state = load_file(str(path / "model.safetensors"))
    (path / "model.safetensors").unlink()
    torch.save(state, path / "pytorch_model.bin")
    loaded = ByteModel.from_pretrained(path)
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)


class _Payload:
    """Unpickling this would call print -- torch.load(weights_only=True) must refuse instead."""

    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_pickle_with_code_is_refused(saved: tuple[ByteModel, Path], capsys) -> None:
    _, path = saved
    (path / "model.safetensors").unlink()
    with open(path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"model.norm.weight": _Payload()}, f, protocol=2)
    with pytest.raises(ValueError, match="holds objects other than tensors"):
        ByteModel.from_pretrained(path)
    assert "pickle code ran" not in capsys.readouterr().out


# ---- atomic saving --------------------------------------------------------------------------------------


def _no_staging_left(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".tmp-" in p.name]


def test_resave_replaces_stale_shards(saved: tuple[ByteModel, Path]) -> None:
    model, path = saved
    model.save_pretrained(path, max_shard_size="40KB")
    assert not (path / "model.safetensors").exists() and (path / "model.safetensors.index.json").exists()
    (path / "tokenizer.json").write_text("{}")  # files that are not ours stay
    model.save_pretrained(path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "generation_config.json",
                                                      "model.safetensors", "tokenizer.json"]
    assert _no_staging_left(path.parent)


def test_failed_save_leaves_the_old_checkpoint_intact(saved: tuple[ByteModel, Path], monkeypatch) -> None:
    model, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def crash(state, directory, max_shard_size):
        (directory / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_safetensors", crash)
    other = ByteModel(model.config.replace(num_hidden_layers=2))
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(path)
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(path.parent / "fresh")
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert not (path.parent / "fresh").exists()
    assert _no_staging_left(path.parent)


def test_save_onto_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        ByteModel(ByteConfig(**TINY)).save_pretrained(tmp_path / "taken")


# ---- generation_config.json -----------------------------------------------------------------------------


def test_generation_config_written_and_read(tmp_path: Path) -> None:
    config = ByteConfig(**{**TINY, "bos_token_id": 1, "eos_token_id": [2, 5], "pad_token_id": 0})
    model = ByteModel(config)
    model.save_pretrained(tmp_path, generation_config={"temperature": 0.7})
    reference = GenerationConfig.from_pretrained(tmp_path)  # transformers reads it
    assert (reference.bos_token_id, reference.eos_token_id, reference.pad_token_id) == (1, [2, 5], 0)
    assert reference.max_length in (None, 20) and reference.temperature == 0.7  # not stored: HF default
    loaded = ByteModel.from_pretrained(tmp_path)
    assert loaded.generation_config["eos_token_id"] == [2, 5]
    # what a loaded model carries is saved again, overrides aside
    loaded.generation_config["top_k"] = 7
    loaded.save_pretrained(tmp_path / "again")
    again = ByteModel.from_pretrained(tmp_path / "again").generation_config
    assert again["top_k"] == 7 and again["temperature"] == 0.7


# ---- HF checkpoints through us and back -----------------------------------------------------------------


def test_hf_checkpoint_round_trips_unchanged(tmp_path: Path) -> None:
    """HF Mistral (no window, which alone would save as Llama) -> ours -> save: same family, same tensors."""
    from transformers import AutoModelForCausalLM

    from stellarbyte.hf.parity import CASES, hf_config_for

    case = next(c for c in CASES if c.family == "mistral" and c.name == "full-attention")
    AutoModelForCausalLM.from_config(hf_config_for(case)).save_pretrained(tmp_path / "hf")
    ByteModel.from_pretrained(tmp_path / "hf").save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["model_type"] == "mistral"
    original = load_file(str(tmp_path / "hf" / "model.safetensors"))
    again = load_file(str(tmp_path / "ours" / "model.safetensors"))
    assert original.keys() == again.keys()
    assert all(torch.equal(original[k], again[k]) for k in original)


def test_tied_checkpoint_that_also_stores_lm_head(tmp_path: Path) -> None:
    model = ByteModel(ByteConfig(**{**TINY, "tie_word_embeddings": True}))
    model.save_pretrained(tmp_path)
    _rewrite_weights(tmp_path, lambda s: s.update({"lm_head.weight": s["model.embed_tokens.weight"].clone()}))
    loaded = ByteModel.from_pretrained(tmp_path)  # the duplicate head is ignored, not "unexpected"
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert loaded.loading_info["unexpected_keys"] == []


# ---- how the loaded model is assembled --------------------------------------------------------------------


def test_loaded_weights_are_trainable_parameters_detached_from_the_file(saved: tuple[ByteModel, Path]) -> None:
    """load_state_dict(assign=True) hands file tensors to the model: they must be ordinary trainable
    Parameters, and updating them in place must not touch the checkpoint on disk."""
    _, path = saved
    on_disk = (path / "model.safetensors").read_bytes()
    model = ByteModel.from_pretrained(path).train()
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in model.parameters())
    ids = torch.randint(0, TINY["vocab_size"], (2, 8), generator=torch.Generator().manual_seed(0))
    model(ids, labels=ids).loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)
    assert (path / "model.safetensors").read_bytes() == on_disk


def test_fallback_when_a_module_keeps_a_meta_tensor(saved: tuple[ByteModel, Path], monkeypatch) -> None:
    """If the fast meta-device assembly leaves a plain tensor attribute on meta, the model is built the
    ordinary way instead -- same weights, same logits."""
    model, path = saved
    real_builder = checkpoint.build_position_encoding

    def leaves_meta(config):
        module = real_builder(config)
        module.some_table = torch.empty(3, device="meta")
        return module

    monkeypatch.setattr(checkpoint, "build_position_encoding", leaves_meta)
    loaded = ByteModel.from_pretrained(path)
    assert not hasattr(loaded.model.position, "some_table")  # built by ByteModel(config), not the skeleton
    ids = torch.randint(0, TINY["vocab_size"], (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_load_bench_prints_its_table(capsys) -> None:
    import argparse

    from stellarbyte.hf import load_bench

    args = argparse.Namespace(hidden=64, layers=1, vocab=256, repeats=1)
    assert load_bench.run(args) == 0
    out = capsys.readouterr().out
    assert "| ByteModel.from_pretrained |" in out and "| AutoModelForCausalLM.from_pretrained |" in out
    assert "ours / transformers load time:" in out
    with pytest.raises(ValueError, match="multiple of 64"):
        load_bench.run(argparse.Namespace(hidden=65, layers=1, vocab=256, repeats=1))
