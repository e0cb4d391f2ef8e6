"""save_pretrained / load_pretrained: checkpoint directories transformers and StellarByte both read.

  directory/
    config.json                     HF-native (llama | qwen2 | qwen3 | mistral) when the config allows it,
                                    else model_type "stellarbyte" with every ByteConfig field
    model.safetensors               or model-0000i-of-0000N.safetensors + model.safetensors.index.json
    generation_config.json          bos/eos/pad ids, max_length, ...

Contracts
  * Atomic: everything is written into a staging directory beside the target and moved in with os.replace
    (the whole directory when the target does not exist yet, file by file -- weights first, config.json
    last -- when it does), so a crash never leaves a half-written file behind.
  * Tied embeddings are stored once (embed_tokens), as transformers does.
  * Loading reads safetensors (pytorch_model.bin only as a fallback, through torch.load(weights_only=True)),
    hands the tensors to a meta-device skeleton (no throw-away random init, no second copy)
    and fails with one message listing every missing, unexpected and mis-shaped tensor.
References: transformers' PreTrainedModel.save_pretrained / from_pretrained (file names, index format).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import dtype_name
from stellarbyte.hf.generation_config import GENERATION_CONFIG, build_generation_config, read_generation_config
from stellarbyte.hf.registry import choose_adapter, get_adapter
from stellarbyte.hf.weights import SHARD_PATTERN, WEIGHT_FILES, load_state_dict, save_safetensors
from stellarbyte.model.position import build_position_encoding
from stellarbyte.model.transformer import ByteModel

CONFIG = "config.json"
_LISTED = 20  # tensors named per category in an error message


# ---- saving ----------------------------------------------------------------------------------------------


def save_pretrained(model: ByteModel, directory: str | Path, family: str | None = None,
                    max_shard_size: int | str = "5GB", generation_config: dict[str, Any] | None = None) -> Path:
    """Write `model` to `directory`; return its path.

    family: force "llama" | "qwen2" | "qwen3" | "mistral" | "stellarbyte" (default: picked from the config).
    max_shard_size: bytes (int) or "5GB"-style string; larger checkpoints are sharded with an index.
    generation_config: entries that override the saved generation_config.json.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ValueError(f"cannot save to {target}: it exists and is not a directory")
    config = model.config
    adapter = choose_adapter(config, family)
    dtype = model.dtype
    hf_config = adapter.to_hf_config(config, dtype)
    state = adapter.to_hf_state_dict(model.state_dict(), config)
    generation = build_generation_config(config, getattr(model, "generation_config", None), generation_config)

    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        weight_files = save_safetensors(state, stage, max_shard_size)
        _write_json(stage / GENERATION_CONFIG, generation)
        _write_json(stage / CONFIG, hf_config)
        files = [*weight_files, GENERATION_CONFIG, CONFIG]
        _fsync(stage, files)  # the bytes reach the disk before any rename makes them visible
        _publish(stage, target, files)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _fsync(directory: Path, files: list[str]) -> None:
    for name in files:
        fd = os.open(directory / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(stage: Path, target: Path, files: list[str]) -> None:
    """Move the staged files into `target`; `files` is in publishing order (config.json last)."""
    if not target.exists():
        os.replace(stage, target)  # one atomic rename of the whole directory
        return
    # Weight files of an earlier save that this one does not overwrite would shadow or contradict the new
    # ones (model.safetensors is read before an index): remove them before the new files arrive.
    for old in target.iterdir():
        if old.name not in files and (old.name in WEIGHT_FILES or SHARD_PATTERN.match(old.name)):
            old.unlink()
    for name in files:
        os.replace(stage / name, target / name)


# ---- loading ---------------------------------------------------------------------------------------------


def read_config(directory: str | Path) -> dict[str, Any]:
    """The config.json of a checkpoint directory, with clear errors for a bad path."""
    path = Path(directory)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (expected a folder with {CONFIG})")
    config_path = path / CONFIG
    if not config_path.is_file():
        present = sorted(p.name for p in path.iterdir())
        raise FileNotFoundError(f"{path} has no {CONFIG} (found {present}); pass the folder that "
                                f"save_pretrained wrote")
    try:
        data = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(data).__name__}")
    return data


def _resolve_dtype(dtype: torch.dtype | str | None, state: dict[str, torch.Tensor], fallback: str) -> torch.dtype:
    if dtype is None or dtype == "auto":  # keep the checkpoint's own precision, as transformers 5 does
        stored = [t.dtype for t in state.values() if t.is_floating_point()]
        return stored[0] if stored else getattr(torch, fallback)
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"invalid dtype={dtype!r}: use e.g. 'float32', 'bfloat16' or a torch.dtype")
        dtype = resolved
    if not dtype.is_floating_point:
        raise ValueError(f"invalid dtype={dtype}: weights need a floating-point dtype")
    return dtype


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))  # "(128, 64)", "(64,)"


def _listing(title: str, lines: list[str]) -> str:
    shown = lines[:_LISTED]
    more = f"\n    ... and {len(lines) - _LISTED} more" if len(lines) > _LISTED else ""
    return f"  {title} ({len(lines)}):\n    " + "\n    ".join(shown) + more


def check_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                     source: str, strict: bool = True) -> tuple[list[str], list[str]]:
    """Compare checkpoint tensors with the model's; raise listing every problem, return (missing, unexpected).

    Mis-shaped tensors always fail; missing / unexpected ones fail when strict, else they only warn.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    sections = []
    if missing:
        sections.append(_listing("missing", [f"{k} {_shape(expected[k])}" for k in missing]))
    if unexpected:
        sections.append(_listing("unexpected", [f"{k} {_shape(state[k])}" for k in unexpected]))
    if mis_shaped:
        sections.append(_listing("mis-shaped", [f"{k}: checkpoint {_shape(state[k])} vs model "
                                                f"{_shape(expected[k])}" for k in mis_shaped]))
    if mis_shaped or (strict and sections):
        raise ValueError(f"checkpoint {source} does not match the model its config.json describes:\n"
                         + "\n".join(sections)
                         + "\n  (fix the checkpoint or its config.json; strict=False tolerates missing and "
                           "unexpected tensors)")
    if sections:
        warnings.warn(f"loading {source} with strict=False:\n" + "\n".join(sections), stacklevel=3)
    return missing, unexpected


def _assemble(skeleton: ByteModel, config: ByteConfig, weights: dict[str, torch.Tensor]) -> ByteModel | None:
    """Hand the checkpoint's tensors to a meta-device skeleton as its parameters (load_state_dict(assign=True)):
    no random initialisation that would be overwritten, no second copy of the weights.

    Tensors the model keeps as plain attributes (rotary tables, ALiBi slopes; float32 by design, see
    model/position.py) were computed on meta too, so the position module is rebuilt for real first. If any
    tensor is still on meta afterwards, return None and let the caller build the model the ordinary way.
    """
    skeleton.model.position = build_position_encoding(config)
    skeleton.load_state_dict(weights, strict=False, assign=True)
    if config.tie_word_embeddings:  # assign replaced embed_tokens' Parameter: point the head at it again
        skeleton.lm_head.weight = skeleton.model.embed_tokens.weight
    for module in skeleton.modules():
        if any(isinstance(v, torch.Tensor) and v.is_meta for v in vars(module).values()):
            return None
    if any(t.is_meta for t in [*skeleton.parameters(), *skeleton.buffers()]):
        return None
    return skeleton


def load_pretrained(directory: str | Path, dtype: torch.dtype | str | None = None,
                    device: torch.device | str | None = None, strict: bool = True,
                    attn_implementation: str | None = None) -> ByteModel:
    """Build a ByteModel from a checkpoint directory (ours or HF Llama / Qwen2 / Qwen3 / Mistral).

    dtype: None or "auto" keeps the stored precision; device: where the model ends up (default CPU).
    strict=False loads what matches and warns about missing / unexpected tensors (mis-shaped still fail).
    attn_implementation: "eager" | "sdpa" | "auto" overrides config.attention_implementation (HF's kwarg name).
    Returns the model in eval mode, with `generation_config` (dict or None) and `loading_info` set.
    """
    path = Path(directory)
    hf_config = read_config(path)
    adapter = get_adapter(hf_config.get("model_type"))
    config = adapter.from_hf_config(hf_config)
    if attn_implementation is not None:
        config = config.replace(attention_implementation=attn_implementation)  # validated by ByteConfig
    state = adapter.from_hf_state_dict(load_state_dict(path), config)
    target_dtype = _resolve_dtype(dtype, state, config.torch_dtype)
    config.torch_dtype = dtype_name(target_dtype)

    # A skeleton on the meta device gives every expected name and shape without allocating or initialising.
    with torch.device("meta"):
        skeleton = ByteModel(config)
    expected = skeleton.state_dict()
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)  # the same tensor as model.embed_tokens.weight
    missing, unexpected = check_state_dict(state, expected, str(path), strict)
    weights = {k: v.to(target_dtype) if v.is_floating_point() else v for k, v in state.items() if k in expected}
    model = _assemble(skeleton, config, weights) if not missing else None
    if model is None:  # strict=False with gaps: what the checkpoint lacks keeps its usual initialisation
        model = ByteModel(config).to(target_dtype)
        model.load_state_dict(weights, strict=False)
    if device is not None:
        model.to(device)
    model.generation_config = read_generation_config(path)
    model.loading_info = {"missing_keys": missing, "unexpected_keys": unexpected, "model_type": adapter.model_type}
    return model.eval()
