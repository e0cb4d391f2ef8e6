"""Open what `stellarbyte eval` evaluates: a model directory, or a training run's checkpoint.

Accepted paths:
    a model directory        config.json + model.safetensors (save_pretrained; HF Llama/Qwen/Mistral too)
    a run directory          <run>/checkpoints/{latest,best} (stellarbyte pretrain|sft); `which` picks latest/best
    a checkpoint directory   <run>/checkpoints/step_00000100 (state.pt + meta.json)

A checkpoint stores the trainer's full state; its meta.json holds the run's TrainConfig, whose `model:` section is
the architecture, or, for a run started with --init-from and no model section, the init model's config.json.
The tokenizer is the model directory's tokenizer.json, else the run config's `tokenizer`, else none (a packed
dataset needs none; text files and tasks do).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


def load_for_eval(path: str | os.PathLike, which: str = "latest",
                  device: str | torch.device = "cpu") -> tuple[Any, Path | None, str]:
    """(ByteModel in float32 eval mode, tokenizer directory or None, a description of what was loaded)."""
    from stellarbyte import ByteModel

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such model; pass a model directory (config.json + model.safetensors), "
                                f"a run directory or a checkpoint directory")
    if (p / "config.json").is_file():
        model = ByteModel.from_pretrained(p).float()
        tok = p if (p / "tokenizer.json").is_file() else None
        return model.to(device).eval(), tok, f"model {p}"
    from stellarbyte.train.checkpoint import META_FILE, STATE_FILE, CheckpointManager

    if (p / STATE_FILE).is_file():
        ckpt = p
    elif (p / "checkpoints").is_dir():
        if which not in ("latest", "best"):
            raise ValueError(f"--checkpoint must be latest or best, got {which!r}")
        ckpt = CheckpointManager(p).resolve(which)
    else:
        raise FileNotFoundError(f"{p}: neither a model directory (config.json) nor a run (checkpoints/) nor a "
                                f"checkpoint ({STATE_FILE}); pass one of those")
    meta = json.loads((ckpt / META_FILE).read_text())
    cfg = meta.get("config") or {}
    model = _model_from_train_config(cfg, ckpt)
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    tok = cfg.get("tokenizer")
    tok_dir = Path(tok) if tok and Path(tok, "tokenizer.json").is_file() else None
    return model.float().to(device).eval(), tok_dir, f"checkpoint {ckpt} (step {meta.get('step')})"


def _model_from_train_config(cfg: dict, ckpt: Path):
    from stellarbyte import ByteConfig, ByteModel

    if cfg.get("model"):
        return ByteModel(ByteConfig.from_dict(dict(cfg["model"])))
    init = cfg.get("init_from")
    if init and Path(init, "config.json").is_file():
        from stellarbyte.hf.checkpoint import read_config
        from stellarbyte.hf.registry import get_adapter

        hf = read_config(init)
        return ByteModel(get_adapter(hf.get("model_type", "stellarbyte")).from_hf_config(hf))
    raise ValueError(f"{ckpt}: the run's config has no model section and its init_from ({init}) is gone; "
                     f"evaluate the run's exported model/ directory instead")
