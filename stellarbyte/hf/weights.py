"""Tensor files of a checkpoint: safetensors, single or sharded with an index, as transformers lays them out.

  model.safetensors                                 everything, when it fits in max_shard_size
  model-00001-of-0000N.safetensors ...              otherwise, filled in state-dict order
  model.safetensors.index.json                      {"metadata": {"total_size": bytes}, "weight_map": {name: file}}

Reading also accepts pytorch_model.bin (+ its index) for old checkpoints, through torch.load(weights_only=True)
so a pickle can never run code. Sizes follow transformers' convention: "5GB" = 5 * 10^9 bytes, "5GiB" = 5 * 2^30.
Reference: huggingface_hub's split_torch_state_dict_into_shards and transformers' load_sharded_checkpoint.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
SHARD_PATTERN = re.compile(r"^(model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)$")
WEIGHT_FILES = (SAFE_WEIGHTS, SAFE_INDEX, BIN_WEIGHTS, BIN_INDEX)

_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size: int | str) -> int:
    """5_000_000 / "5MB" / "1.5GiB" -> bytes."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(size))
        unit = match.group(2).upper() if match else ""
        if not match or (unit and unit not in _UNITS):
            raise ValueError(f"invalid max_shard_size={size!r}: use bytes as an int or a string such as "
                             f"'5GB', '500MB' or '2GiB'")
        value = int(float(match.group(1)) * _UNITS[unit or "B"])
    if value <= 0:
        raise ValueError(f"invalid max_shard_size={size!r}: must be positive")
    return value


def plan_shards(state_dict: dict[str, torch.Tensor], max_shard_size: int) -> list[list[str]]:
    """Group tensor names into shards of at most max_shard_size bytes (a larger tensor gets a shard alone)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, tensor in state_dict.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and used + size > max_shard_size:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


def save_safetensors(state_dict: dict[str, torch.Tensor], directory: Path, max_shard_size: int | str) -> list[str]:
    """Write state_dict into `directory` (a fresh staging directory); return the file names written."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    shards = plan_shards(tensors, parse_size(max_shard_size))
    metadata = {"format": "pt"}  # transformers refuses safetensors files without a known format tag
    if len(shards) == 1:
        save_file(tensors, str(directory / SAFE_WEIGHTS), metadata=metadata)
        return [SAFE_WEIGHTS]
    files, weight_map = [], {}
    for i, names in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: tensors[n] for n in names}, str(directory / file), metadata=metadata)
        files.append(file)
        weight_map.update(dict.fromkeys(names, file))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / SAFE_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return [*files, SAFE_INDEX]


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    # weights_only=True: the unpickler only rebuilds tensors and plain containers, never arbitrary objects
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds objects other than tensors, so it was not unpickled (torch.load with "
                         f"weights_only=True); convert a trusted copy to safetensors") from e


def _read_index(directory: Path, index_name: str, reader) -> dict[str, torch.Tensor]:
    index = json.loads((directory / index_name).read_text())
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{directory / index_name} has no 'weight_map'; the index is damaged")
    files = sorted(set(weight_map.values()))
    absent = [f for f in files if not (directory / f).is_file()]
    if absent:
        raise FileNotFoundError(f"{directory} lacks shard files {absent} named in {index_name}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(reader(directory / file))
    return state


def find_weights(directory: Path) -> str:
    """The weight file (or index) load_state_dict will read, safetensors first."""
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return name
    present = sorted(p.name for p in directory.iterdir())
    raise FileNotFoundError(f"{directory} has no weights: expected {SAFE_WEIGHTS} or {SAFE_INDEX} "
                            f"(or {BIN_WEIGHTS}); found {present}")


def load_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint in `directory`, on CPU, in its stored dtype."""
    name = find_weights(directory)
    if name == SAFE_WEIGHTS:
        return _read_safetensors(directory / name)
    if name == SAFE_INDEX:
        return _read_index(directory, name, _read_safetensors)
    if name == BIN_WEIGHTS:
        return _read_bin(directory / name)
    return _read_index(directory, name, _read_bin)
