"""TrainConfig: every knob of a training run in one dataclass, loadable from YAML with command-line overrides.

YAML layout (configs/*.yaml): a `model:` mapping of ByteConfig fields (the same key `stellarbyte info` reads) and
the training fields below at the top level. Overrides are "field=value" strings whose value is parsed as YAML
("lr=3e-4", "betas=[0.9,0.95]", "model.hidden_size=128"). An unknown key is an error that names the nearest valid
field (difflib), never a silently ignored typo.

Precision policy: "fp32"; "bf16" (autocast to bfloat16, on CPU or GPU); "fp16" (autocast to float16 plus a
GradScaler); "auto" = bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on CPU (CPU bf16 autocast is
often slower than fp32 on small models; ask for it explicitly).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamw_scratch", "muon")
PARALLEL = ("none", "ddp", "fsdp")  # stellarbyte.train.distributed
LOGGERS = ("tensorboard", "wandb", "swanlab")  # stellarbyte.train.backends


@dataclass
class TrainConfig:
    # model: ByteConfig fields (stellarbyte.config.ByteConfig.from_dict)
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None          # a model directory (save_pretrained) to start from
    # data
    data_dir: str | None = None           # a packed dataset (stellarbyte data pack)
    seq_len: int = 256
    batch_size: int = 8                   # sequences per micro-batch
    grad_accum: int = 1                   # micro-batches per optimizer step
    shuffle: bool = True
    sft_train: str | None = None          # SFT: conversations JSONL (stellarbyte.data.conversations formats)
    sft_val: str | None = None            # SFT: validation conversations JSONL
    tokenizer: str | None = None          # SFT: tokenizer directory (stellarbyte tokenizer train)
    # optimizer
    optimizer: str = "adamw"
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_embeddings: bool = True
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    grad_clip: float = 1.0                # max global grad norm; 0 disables clipping (the norm is still logged)
    # schedule
    max_steps: int = 1000
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.2           # wsd: share of post-warmup steps spent decaying
    decay_shape: str = "linear"
    # numerics and speed
    precision: str = "auto"
    device: str = "auto"
    compile: bool = False
    gradient_checkpointing: bool = False
    empty_cache_every: int = 0            # gc + CUDA cache release every N steps (0 = never)
    peak_flops: float = 0.0               # device peak FLOP/s for MFU; 0 = look up the GPU, none on CPU
    # distributed (torchrun; stellarbyte.train.distributed): data parallel x tensor parallel
    parallel: str = "none"                # none | ddp | fsdp (FSDP2 fully_shard per block + root)
    tensor_parallel: int = 1              # TP degree (DTensor) for q/k/v/o and MLP projections; world % tp == 0
    # evaluation, checkpoints, logging
    eval_every: int = 200
    eval_batches: int = 20
    save_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    telemetry_every: int = 0              # per-layer activation RMS and grad norms every N steps (0 = off)
    sample_prompts: list[str] = field(default_factory=list)  # generated from at each eval (needs tokenizer)
    sample_tokens: int = 32
    loggers: list[str] = field(default_factory=lambda: ["tensorboard"])  # + wandb, swanlab; [] = jsonl only
    project: str = "stellarbyte"          # wandb / swanlab project name
    max_bad_steps: int = 5                # consecutive NaN/Inf steps before the run aborts (with a checkpoint)
    seed: int = 0
    run_dir: str = "runs/default"
    progress: bool = True

    def __post_init__(self) -> None:
        # YAML 1.1 reads "3e-4" (no dot) as a string: accept it for float fields, as a user would expect
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, (str, int)) and not isinstance(value, bool):
                try:
                    setattr(self, f.name, float(value))
                except ValueError:
                    raise ValueError(f"train config: {f.name} must be a number, got {value!r}") from None
        self.betas = tuple(float(b) for b in self.betas)
        checks = [
            (self.seq_len >= 1, "seq_len must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.max_steps >= 1, "max_steps must be >= 1"),
            (0 <= self.warmup_steps <= self.max_steps, "warmup_steps must be in [0, max_steps]"),
            (self.lr > 0, "lr must be > 0"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (len(self.betas) == 2, "betas must be two numbers, e.g. [0.9, 0.95]"),
            (self.eval_every >= 0 and self.save_every >= 0, "eval_every and save_every must be >= 0 (0 = off)"),
            (self.keep_last >= 1, "keep_last must be >= 1"),
            (self.max_bad_steps >= 1, "max_bad_steps must be >= 1"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.parallel in PARALLEL, f"parallel must be one of {', '.join(PARALLEL)}"),
            (isinstance(self.tensor_parallel, int) and self.tensor_parallel >= 1,
             "tensor_parallel must be an integer >= 1 (1 = off)"),
            (self.telemetry_every >= 0, "telemetry_every must be >= 0 (0 = off)"),
            (all(name in LOGGERS for name in self.loggers),
             f"unknown logger in loggers={list(self.loggers)}; choose from {', '.join(LOGGERS)} (or [] for none)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"train config: {message}")
        self._check_parallel()

    def _check_parallel(self) -> None:
        """What the distributed engines support; the world size is checked at launch (distributed.py)."""
        if not self.distributed:
            return
        tp = self.tensor_parallel
        if tp > 1:
            m = self.model
            for key in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
                value = m.get(key, m.get("num_attention_heads") if key == "num_key_value_heads" else None)
                if value is not None and value % tp:
                    raise ValueError(f"train config: tensor_parallel {tp} must divide model.{key} ({value}): "
                                     f"each rank holds {key} / tensor_parallel of them; pick a divisor")
        sharded = self.parallel == "fsdp" or tp > 1
        if sharded and self.optimizer == "muon":
            raise ValueError("train config: optimizer muon needs whole matrices (Newton-Schulz); with parallel fsdp "
                             "or tensor_parallel > 1 use adamw, or parallel ddp for muon")
        if sharded and self.precision == "fp16":
            raise ValueError("train config: precision fp16 (GradScaler) is not supported with parallel fsdp or "
                             "tensor_parallel > 1; use bf16 (FSDP mixed precision) or fp32")

    @property
    def distributed(self) -> bool:
        """True when the run is laid out on a device mesh (DDP, FSDP or tensor parallel)."""
        return self.parallel != "none" or self.tensor_parallel > 1

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.grad_accum * self.seq_len

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        if not isinstance(d, dict):
            raise ValueError(f"train config must be a mapping of field: value, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise ValueError(f"unknown train config key {key!r}{_suggest(key, names)}")
        return cls(**d)

    def model_config(self):
        """The ByteConfig of `model` (validated by ByteConfig itself)."""
        from stellarbyte.config import ByteConfig

        return ByteConfig.from_dict(dict(self.model))


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply "a=1" / "model.hidden_size=128" strings to a config mapping (values parsed as YAML)."""
    out = {**d, "model": dict(d.get("model") or {})}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like field=value (e.g. lr=3e-4)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else None
        if key.startswith("model."):
            out["model"][key[len("model."):]] = value
        else:
            out[key.replace("-", "_")] = value
    return out


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML TrainConfig, apply overrides, validate."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such config file; pass a YAML file such as configs/tiny-cpu.yaml")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err}); fix the file's syntax") from err
    return TrainConfig.from_dict(apply_overrides(data, overrides or []))


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    os.replace(tmp, p)
