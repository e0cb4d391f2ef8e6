"""generation_config.json: the decoding defaults stored beside a checkpoint (transformers' GenerationConfig).

We keep it as a plain dict on `model.generation_config` (stellarbyte.infer.generate reads eos_token_id from
it). On save, values the model already carries (e.g. loaded from a checkpoint) win; special-token ids
fill in from the ByteConfig so transformers' generate() stops on the same tokens ours does. max_length is
left out on purpose: transformers would then warn on every max_new_tokens call and default to the whole
context instead of 20 new tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stellarbyte.config import ByteConfig

GENERATION_CONFIG = "generation_config.json"


def build_generation_config(config: ByteConfig, existing: dict[str, Any] | None = None,
                            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge, lowest priority first: ids from `config`, the model's current dict, explicit overrides."""
    d: dict[str, Any] = {
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "do_sample": False,
    }
    d.update(existing or {})
    d.update(overrides or {})
    return {k: v for k, v in d.items() if v is not None}


def read_generation_config(directory: Path) -> dict[str, Any] | None:
    path = directory / GENERATION_CONFIG
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix or delete it") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
