"""`stellarbyte export RUN_DIR|CHECKPOINT OUT_DIR`: a consolidated Hugging Face checkpoint from any training run.

    stellarbyte export runs/tiny out/tiny-hf                    # the run's latest checkpoint
    stellarbyte export runs/tiny/checkpoints/step_00000600 out/tiny-hf --tokenizer tok/

Works for single-process checkpoints (state.pt) and distributed ones (DCP, any world size, DDP / FSDP / TP):
a fresh ByteModel is built from the checkpoint's saved config (meta.json), and
  - state.pt: its "model" tensors are loaded directly;
  - DCP: `torch.distributed.checkpoint.load` reads the model entries into that one-process model's state dict
    (DCP keeps each tensor's global shape and shard offsets, so the shards of any layout are stitched back; no
    process group is needed).
The weights are written with ByteModel.save_pretrained (stellarbyte.hf: config.json + model.safetensors in the
HF-native family the config allows, so transformers' AutoModelForCausalLM loads it), then the tokenizer files are
copied in when the run had one (`tokenizer` in its config, or --tokenizer). Every file is written to a temporary
name first and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.api import CheckpointException

from stellarbyte.train.checkpoint import DCP_DIR, META_FILE, STATE_FILE, CheckpointManager, is_distributed_checkpoint
from stellarbyte.train.dist_checkpoint import error_reason


def load_checkpoint_model(source: str | os.PathLike):
    """(ByteModel with the checkpoint's weights in float32, the checkpoint's saved train config dict)."""
    from stellarbyte import ByteConfig, ByteModel

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run or checkpoint directory")
    ckpt = CheckpointManager(path).resolve(path)
    meta = json.loads((ckpt / META_FILE).read_text())
    config = meta.get("config") or {}
    model_config = meta.get("model_config") or config.get("model")  # older checkpoints: the train config's model
    if not model_config:
        raise ValueError(f"{ckpt / META_FILE} holds no model config (an older run started with --init-from); "
                         f"export the run's model/ directory instead")
    model = ByteModel(ByteConfig.from_dict(dict(model_config)))
    if is_distributed_checkpoint(ckpt):
        from torch.distributed.checkpoint import load as dcp_load

        state = model.state_dict()  # the one-process layout DCP reads the shards into
        with warnings.catch_warnings():  # DCP warns that it "assumes" one process: here that is the intent
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            try:
                dcp_load({"model": state}, checkpoint_id=str(ckpt / DCP_DIR), no_dist=True)  # reads every shard
            except (Exception, CheckpointException) as err:  # a damaged or foreign checkpoint
                raise ValueError(f"{ckpt}: cannot read its model shards ({error_reason(err)}); is meta.json's "
                                 f"model_config the model that wrote it?") from err
    else:
        state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state)
    return model.eval(), config


def _copy_atomic(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def export(source: str | os.PathLike, out_dir: str | os.PathLike, tokenizer: str | None = None) -> Path:
    """Write the consolidated checkpoint of `source` (run dir or checkpoint dir) to `out_dir`; returns out_dir."""
    model, config = load_checkpoint_model(source)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok = tokenizer or config.get("tokenizer")
    if tok:
        tok_dir = Path(tok)
        if not tok_dir.is_dir():
            raise FileNotFoundError(f"{tok_dir}: tokenizer directory not found; pass --tokenizer DIR or omit it")
        for f in sorted(tok_dir.iterdir()):
            if f.is_file() and f.suffix in (".json", ".txt", ".model", ".jinja"):
                _copy_atomic(f, out / f.name)
    return out


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(verb, help="export a run or checkpoint (single-process or distributed) as a "
                                         "Hugging Face model directory",
                              description="Consolidate a training checkpoint (state.pt or torch.distributed.checkpoint "
                                          "shards of any world size) into config.json + model.safetensors that "
                                          "transformers and `stellarbyte chat` load; copies the tokenizer.")
    p.add_argument("source", help="run directory (its latest checkpoint) or a checkpoints/step_XXXXXXXX directory")
    p.add_argument("out_dir", help="output model directory")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory to copy in (default: the run's tokenizer)")
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    out = export(args.source, args.out_dir, args.tokenizer)
    print(f"export: {args.source} -> {out}")
    return 0
