"""`stellarbyte info CONFIG_OR_DIR`: parameter counts, FLOPs and memory of a config, checkpoint or preset.

CONFIG_OR_DIR is one of
  * a YAML or JSON ByteConfig file (YAML may nest the fields under a top-level `model:` key);
  * a JSON config.json of a Hugging Face family (model_type llama / qwen2 / qwen3 / mistral);
  * a checkpoint directory holding config.json (ours or HF; read through stellarbyte.hf's adapters);
  * a preset name, NAME resolving to configs/NAME.yaml (in the working directory or the repository).
Only the config is read: no weights are loaded, so this is instant even for checkpoints of many GB.
The numbers come from stellarbyte.model.analysis; see docs/model_analysis.md for their conventions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.model.analysis import analyze, dtype_bytes

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def preset_dirs() -> tuple[Path, ...]:
    """Where preset names are looked up: ./configs first, then the repository's configs/."""
    return (Path.cwd() / "configs", REPO_CONFIGS)


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        verb, help="parameter counts, FLOPs and memory of a config or checkpoint",
        description="Print parameter counts by component, FLOPs per token (forward, training, with gradient "
                    "checkpointing), activation and KV-cache memory, and optionally a per-module table.")
    parser.add_argument("target", metavar="CONFIG_OR_DIR",
                        help="YAML/JSON config file, checkpoint directory with config.json, or preset name")
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per batch (default 1)")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="tokens per sequence (default: the config's max_position_embeddings)")
    parser.add_argument("--dtype", default="bfloat16", help="activation/weight dtype: bfloat16, float16, float32")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="backend the activation accounting follows (dropout masks, LayerNorm stats)")
    parser.add_argument("--modules", action="store_true", help="add a per-module table (name, type, params, shapes)")
    parser.add_argument("--depth", type=int, default=None, help="with --modules: deepest module level to list")
    parser.add_argument("--all-layers", action="store_true",
                        help="with --modules: list every block instead of block 0 and a summary row")
    parser.add_argument("--activations", action="store_true",
                        help="list every tensor the activation count includes (the inventory behind the total)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables instead of plain text")
    parser.add_argument("--json", action="store_true", help="print the headline numbers as JSON")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    config, source = resolve_config(args.target)
    dtype_bytes(args.dtype)  # a bad --dtype fails here with the list of valid names
    report = analyze(config, batch_size=args.batch_size, seq_len=args.seq_len, dtype=args.dtype,
                     modules=args.modules, module_depth=args.depth, collapse_layers=not args.all_layers,
                     device=args.device)
    if args.json:
        print(json.dumps({"source": source, **report.to_dict()}, indent=2))
        return 0
    print(f"# {source}")
    print(report.to_markdown() if args.markdown else report.format_table(), end="")
    if args.activations:
        print("\n" + report.activations.format_items(), end="")
    return 0


def resolve_config(target: str | Path) -> tuple[ByteConfig, str]:
    """(config, description of where it came from) for a file, a checkpoint directory or a preset name."""
    path = Path(target)
    if path.is_dir():
        return config_from_directory(path), f"checkpoint {path}"
    if path.is_file():
        return config_from_file(path), f"config {path}"
    if path.suffix or len(path.parts) > 1:
        raise FileNotFoundError(f"{path} does not exist; pass a YAML/JSON config file, a checkpoint directory "
                                f"or a preset name")
    for folder in preset_dirs():
        preset = folder / f"{target}.yaml"
        if preset.is_file():
            return config_from_file(preset), f"preset {target} ({preset})"
    names = sorted({p.stem for folder in preset_dirs() if folder.is_dir() for p in folder.glob("*.yaml")})
    known = f"known presets: {', '.join(names)}" if names else "no presets found under configs/"
    raise FileNotFoundError(f"{target!r} is neither a file, a directory nor a preset ({known})")


def config_from_file(path: Path) -> ByteConfig:
    if path.suffix in (".yaml", ".yml"):
        return ByteConfig.load(path)
    if path.suffix != ".json":
        raise ValueError(f"{path}: unsupported config file type {path.suffix!r}; use .yaml, .yml or .json")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of config fields, got {type(data).__name__}")
    return config_from_dict(data, str(path))


def config_from_directory(path: Path) -> ByteConfig:
    config_path = path / "config.json"
    if not config_path.is_file():
        present = sorted(p.name for p in path.iterdir())[:10]
        raise FileNotFoundError(f"{path} has no config.json (found {present}); pass a checkpoint directory "
                                f"written by save_pretrained or a config file")
    return config_from_file(config_path)


def config_from_dict(data: dict[str, Any], source: str) -> ByteConfig:
    """A ByteConfig from our own fields, or from a HF family's config.json through stellarbyte.hf's adapters."""
    model_type = data.get("model_type", "stellarbyte")
    try:
        from stellarbyte.hf.registry import get_adapter
    except ImportError:  # the HF layer is optional for this verb; our own format needs no adapter
        if model_type == "stellarbyte":
            return ByteConfig.from_dict(data)
        raise ValueError(f"{source}: model_type {model_type!r} needs the stellarbyte.hf adapters, which "
                         f"could not be imported") from None
    return get_adapter(model_type).from_hf_config(data)  # "stellarbyte" included: a ByteConfig.save() file
