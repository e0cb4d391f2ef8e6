"""`stellarbyte pretrain` and `stellarbyte sft`: a YAML TrainConfig, command-line overrides, one Trainer.

    stellarbyte pretrain --config configs/tiny-cpu.yaml --data-dir data/packed --run-dir runs/tiny --max-steps 200
    stellarbyte pretrain --config configs/tiny-cpu.yaml --run-dir runs/tiny --resume
    stellarbyte sft --config configs/tiny-cpu.yaml --init-from runs/tiny/model --sft-train sft/train.jsonl \
        --tokenizer tok/ --run-dir runs/tiny-sft
    stellarbyte pretrain ... --set model.hidden_size=256       # any model field

Every TrainConfig field is a flag (--max-steps, --lr, ...); values are parsed as YAML (so lists and booleans work:
--betas "[0.9, 0.95]", --compile true). The resolved config is saved as <run_dir>/config.yaml, the final weights
as <run_dir>/model (save_pretrained: what `stellarbyte chat` / `generate` open).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import random
from pathlib import Path
from typing import Any

import torch
import yaml

from stellarbyte.train.config import TrainConfig, load_config

# fields that change parameter shapes or what the weights mean; runtime choices (attention kernel, dropout) may differ
ARCH_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "position_embedding_type", "norm_type", "norm_scheme", "mlp_type",
               "qkv_bias", "attention_out_bias", "mlp_bias", "qk_norm", "parallel_residual", "tie_word_embeddings")

FIELD_HELP = {
    "init_from": "model directory (save_pretrained) to start from: continued pretraining, or SFT of a base model",
    "data_dir": "packed dataset directory (stellarbyte data pack); pretraining reads its train/validation splits",
    "seq_len": "tokens per sequence (pretraining windows; SFT max length)",
    "batch_size": "sequences per micro-batch",
    "grad_accum": "micro-batches per optimizer step (global batch = batch_size * grad_accum)",
    "shuffle": "shuffle pretraining windows each epoch (seeded)",
    "sft_train": "SFT conversations JSONL ({'messages': [...]} per line)",
    "sft_val": "SFT validation conversations JSONL",
    "tokenizer": "tokenizer directory (SFT renders conversations with its chat template)",
    "optimizer": "adamw (torch, fused on CUDA), adamw_scratch (the from-scratch AdamW) or muon",
    "lr": "peak learning rate (AdamW groups)", "betas": "AdamW betas, e.g. [0.9, 0.95]", "eps": "AdamW epsilon",
    "weight_decay": "decoupled weight decay on matrices (dim >= 2); norms and biases never decay",
    "decay_embeddings": "also decay embedding / LM-head matrices (nanoGPT does)",
    "muon_lr": "Muon learning rate for hidden matrices", "muon_momentum": "Muon Nesterov momentum",
    "grad_clip": "max global gradient norm (0 = no clipping)", "max_steps": "optimizer steps to train",
    "lr_schedule": "cosine (linear warmup + cosine), wsd (warmup-stable-decay) or constant",
    "warmup_steps": "linear warmup steps", "min_lr_ratio": "final lr as a fraction of the peak",
    "decay_fraction": "wsd: fraction of post-warmup steps spent decaying",
    "decay_shape": "wsd decay: linear, cosine or 1-sqrt",
    "precision": "auto, fp32, bf16 (autocast) or fp16 (autocast + GradScaler)",
    "device": "auto, cpu, cuda, cuda:1, ...", "compile": "torch.compile the model's forward",
    "gradient_checkpointing": "recompute block activations in backward (less memory, ~33% more compute)",
    "empty_cache_every": "gc + CUDA cache release every N steps (0 = never)",
    "peak_flops": "device peak FLOP/s for MFU (0 = look up the GPU)",
    "parallel": "data parallelism under torchrun: none, ddp or fsdp (FSDP2 per block; bf16 = mixed precision)",
    "tensor_parallel": "tensor-parallel degree for the attention/MLP projections (divides the world size and the "
                       "head counts; composes with fsdp)",
    "eval_every": "validate every N steps (0 = never)", "eval_batches": "validation batches per evaluation",
    "save_every": "checkpoint every N steps (0 = only at the end and on SIGINT/SIGTERM)",
    "keep_last": "checkpoints to keep (plus the best by validation loss)",
    "log_every": "write metrics every N steps", "max_bad_steps": "consecutive NaN/Inf steps before aborting",
    "seed": "seed for weights, data order and dropout", "run_dir": "output directory (checkpoints, logs, model)",
    "progress": "show the progress bar",
    "telemetry_every": "log per-layer activation RMS and gradient norms every N steps (0 = off)",
    "sample_prompts": "prompts to continue greedily at each evaluation (needs --tokenizer), e.g. '[\"Once\"]'",
    "sample_tokens": "tokens generated per sample prompt",
    "loggers": "metric backends besides metrics.jsonl: [tensorboard], [tensorboard, wandb], [swanlab], []",
    "project": "wandb / swanlab project name",
}


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    what = "pretrain a model on a packed dataset" if verb == "pretrain" else "supervised fine-tuning on conversations"
    parser = subparsers.add_parser(verb, help=what, description=f"{what[0].upper()}{what[1:]}. Every field of the "
                                   "YAML config can be overridden by its flag; values are read as YAML.")
    parser.add_argument("--config", required=True, help="YAML config (configs/tiny-cpu.yaml, ...)")
    parser.add_argument("--resume", action="store_true", help="continue from <run_dir>/checkpoints/latest")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any field, model fields as model.NAME=VALUE (repeatable)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "model":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f"field_{f.name}", default=None, metavar="V",
                            help=f"{FIELD_HELP.get(f.name, f.name)} (built-in default {default!r}; the YAML wins "
                                 f"over it, the flag over both)".replace("%", "%%"))
    parser.set_defaults(func=lambda args: run(args, verb))
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    out = [f"{k[len('field_'):]}={v}" for k, v in vars(args).items() if k.startswith("field_") and v is not None]
    return out + list(args.set)


def build_model(cfg: TrainConfig):
    """A fresh ByteModel from cfg.model, or the weights at cfg.init_from (whose architecture must match)."""
    from stellarbyte import ByteModel

    if cfg.init_from:
        if not Path(cfg.init_from).is_dir():
            raise FileNotFoundError(f"{cfg.init_from}: --init-from must be a model directory written by "
                                    f"save_pretrained (a run's model/ folder)")
        model = ByteModel.from_pretrained(cfg.init_from)
        if cfg.model:
            check_same_architecture(model, cfg.model_config(), cfg.init_from)
        return model.float()
    if not cfg.model:
        raise ValueError("the config has no model: section and no init_from; add one or pass --init-from")
    return ByteModel(cfg.model_config())


def check_same_architecture(model, want, source: str) -> None:
    """ValueError naming every differing architecture field and the first mis-shaped tensors (checkpoint vs
    config), when the config's model section describes another network than the checkpoint at `source`."""
    from stellarbyte import ByteModel

    have = model.config.to_dict()
    want_d = want.to_dict()
    diff = [k for k in ARCH_FIELDS if want_d.get(k) != have.get(k)]
    if not diff:
        return
    with torch.device("meta"):  # shapes only: no memory, no init
        expected = {k: tuple(v.shape) for k, v in ByteModel(want).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes = [f"{k} {list(got[k])} vs {list(expected[k])}" for k in got if k in expected and got[k] != expected[k]]
    extra = len(set(got) ^ set(expected))
    fields = ", ".join(f"{k} {have.get(k)} vs {want_d.get(k)}" for k in diff)
    tensors = "; ".join(shapes[:3]) + (f" (+{len(shapes) - 3} more)" if len(shapes) > 3 else "")
    raise ValueError(f"--init-from {source} has another architecture than the config's model section "
                     f"(checkpoint vs config): {fields}" + (f"; tensors {tensors}" if tensors else "")
                     + (f"; {extra} tensors exist in only one of them" if extra else "")
                     + "; drop the model: section (the checkpoint's own config is used) or point --init-from at "
                     "a matching checkpoint")


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    import numpy as np

    np.random.seed(seed)


def _pretrain_data(cfg: TrainConfig, vocab_size: int):
    from stellarbyte.data.pack import read_index
    from stellarbyte.train.batches import pretrain_batches, validation_batches
    from stellarbyte.train.distributed import init_distributed

    if not cfg.data_dir:
        raise ValueError("pretraining needs data_dir (--data-dir DIR, a packed dataset from `stellarbyte data pack`)")
    env = init_distributed(cfg)  # torchrun: this rank reads data-parallel shard dp_rank of dp_size (else 0 of 1)
    train = pretrain_batches(cfg.data_dir, cfg.batch_size, cfg.seq_len, shuffle=cfg.shuffle, seed=cfg.seed,
                             rank=env.dp_rank, world_size=env.dp_size)
    data_vocab = read_index(cfg.data_dir).get("vocab_size", 0)
    if data_vocab > vocab_size:
        raise ValueError(f"{cfg.data_dir} was tokenized with vocab_size {data_vocab} but the model has "
                         f"{vocab_size}; set model.vocab_size >= {data_vocab}")
    val = None
    if cfg.eval_every:
        try:
            # the global batch size, the same batches on every rank: one-process validation numbers
            val = validation_batches(cfg.data_dir, cfg.batch_size * env.dp_size, cfg.seq_len, cfg.eval_batches)
        except ValueError:
            val = None  # validation split too small for one batch: train without evaluation
    return train, val


def _sft_data(cfg: TrainConfig, vocab_size: int | None = None):
    from stellarbyte.data.records import Stats
    from stellarbyte.data.sft import SFTConfig, build_sft_examples, pad_collate
    from stellarbyte.data.tokenizing import load_tokenizer
    from stellarbyte.train.batches import SFTBatches

    if not cfg.sft_train or not cfg.tokenizer:
        raise ValueError("SFT needs sft_train (--sft-train FILE.jsonl) and tokenizer (--tokenizer DIR)")
    tokenizer = load_tokenizer(cfg.tokenizer)
    if vocab_size is not None and tokenizer.vocab_size > vocab_size:
        raise ValueError(f"tokenizer {cfg.tokenizer} has {tokenizer.vocab_size} tokens but the model only "
                         f"{vocab_size}; use the tokenizer the model was trained with, or set model.vocab_size >= "
                         f"{tokenizer.vocab_size} (pretraining)")

    def collated(path: str, shuffle: bool) -> list[dict]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such conversations file")
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        stats = Stats("sft")
        examples = list(build_sft_examples(rows, tokenizer, SFTConfig(max_length=cfg.seq_len), stats))
        if len(examples) < cfg.batch_size:
            raise ValueError(f"{path}: {len(examples)} usable conversations, fewer than batch_size {cfg.batch_size} "
                             f"(skipped: {dict(stats.reasons) or 'none'}); raise --seq-len or add data")
        if shuffle:
            random.Random(cfg.seed).shuffle(examples)
        return [pad_collate(examples[i:i + cfg.batch_size], tokenizer.pad_token_id)
                for i in range(0, len(examples) - cfg.batch_size + 1, cfg.batch_size)]

    from stellarbyte.train.distributed import init_distributed

    env = init_distributed(cfg)  # data parallel: rank r takes batches r, r + dp, ... (equal counts on every rank)
    batches = collated(cfg.sft_train, cfg.shuffle)
    if env.dp_size > len(batches):
        raise ValueError(f"{cfg.sft_train}: {len(batches)} batches for {env.dp_size} data-parallel ranks; lower "
                         f"--batch-size or add data")
    train = SFTBatches(batches[env.dp_rank:len(batches) // env.dp_size * env.dp_size:env.dp_size])
    val = None
    if cfg.sft_val and cfg.eval_every:
        val_batches = SFTBatches(collated(cfg.sft_val, False)).batches[:cfg.eval_batches]
        val = lambda: iter(val_batches)  # noqa: E731
    return train, val


def make_sampler(cfg: TrainConfig):
    """Greedy continuations of cfg.sample_prompts, logged at each evaluation (None without tokenizer/prompts)."""
    if not cfg.sample_prompts or not cfg.tokenizer:
        return None
    from stellarbyte.data.tokenizing import load_tokenizer

    tokenizer = load_tokenizer(cfg.tokenizer)

    def sample(model) -> list[str]:
        was_training = model.training
        model.eval()
        texts = []
        for prompt in cfg.sample_prompts:
            ids = torch.tensor([tokenizer.encode(prompt)], device=model.device)  # (1, P)
            out = model.generate(ids, max_new_tokens=cfg.sample_tokens, do_sample=False)  # (1, P + new)
            texts.append(prompt + tokenizer.decode(out[0, ids.shape[1]:].tolist()))
        model.train(was_training)
        return texts

    return sample


def check_yaml(path: str) -> None:
    """Parse the YAML file first, so a syntax error is one line naming the file, line and column."""
    p = Path(path)
    if not p.is_file():
        return  # load_config names the missing file
    try:
        yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
        what = what or str(err).splitlines()[0]
        raise ValueError(f"{where}: invalid YAML ({what}); fix the syntax at line {mark.line + 1 if mark else '?'}"
                         f" of the config") from None


def is_out_of_memory(err: BaseException) -> bool:
    """torch.OutOfMemoryError (CUDA) or the CPU allocator's RuntimeError."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        s in text for s in ("not enough memory", "can't allocate memory", "out of memory", "Cannot allocate memory"))


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT / EFBIG anywhere in the exception chain: torch.save's zip writer turns the OSError of a full
    disk into a RuntimeError ("unexpected pos ...") raised while handling it, so the cause sits in __context__."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if any(s in str(e) for s in ("No space left on device", "Disk quota exceeded", "file write failed")):
            return True
        e = e.__cause__ or e.__context__
    return False


def _disk_error(err: BaseException) -> str:
    """The OSError's own text when the chain holds one (not the zip writer's "unexpected pos")."""
    e: BaseException | None = err
    while e is not None:
        if isinstance(e, OSError) and e.errno is not None:
            return f"[Errno {e.errno}] {e.strerror}"
        e = e.__cause__ or e.__context__
    return _first_line(err)


def run(args: argparse.Namespace, verb: str) -> int:
    from stellarbyte.train.trainer import Trainer, TrainingDiverged

    check_yaml(args.config)
    cfg = load_config(args.config, _overrides(args))
    _seed(cfg.seed)
    model = build_model(cfg)
    if verb == "pretrain":
        train, val = _pretrain_data(cfg, model.config.vocab_size)
    else:
        train, val = _sft_data(cfg, model.config.vocab_size)
    trainer = Trainer(model, cfg, train, val, sampler=make_sampler(cfg))
    out = Path(cfg.run_dir) / "model"
    try:
        result = trainer.train(resume=args.resume)
        trainer.save_model(out)  # gathered from every rank when distributed
    except TrainingDiverged as err:
        raise ValueError(str(err)) from err  # one line from the CLI, not a traceback
    except (RuntimeError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        ckpt = trainer.checkpoints.latest()
        kept = f"the latest complete checkpoint ({ckpt}) is intact" if ckpt else "no checkpoint was written"
        if is_out_of_memory(err):
            raise ValueError(
                f"out of memory in training step {trainer.step + 1} (batch_size {cfg.batch_size} x seq_len "
                f"{cfg.seq_len} x grad_accum {cfg.grad_accum}): the batch does not fit; lower --batch-size and raise "
                f"--grad-accum by the same factor (same global batch), or shorten --seq-len or enable "
                f"--gradient-checkpointing; {kept}") from err
        if is_disk_full(err):
            raise ValueError(f"disk full while writing under {cfg.run_dir} ({_disk_error(err)}); {kept}; free "
                             f"space or choose another --run-dir, then rerun with --resume") from err
        if isinstance(err, OSError):
            raise ValueError(f"{_first_line(err)}; {kept}") from err
        raise
    if not trainer.dist.is_main:  # rank 0 reports
        return 0 if result.status != "interrupted" else 130
    tps = trainer.throughput.median_tokens_per_s
    last = result.losses[max(result.losses)] if result.losses else float("nan")
    print(f"{verb}: {result.status} at step {result.step}/{cfg.max_steps}; last loss {last:.4f}"
          + (f"; val loss {trainer.last_val:.4f}" if trainer.last_val is not None else "")
          + (f"; {tps:.0f} tokens/s (median step)" if tps else "")
          + f"; skipped steps {result.skipped_steps}; model -> {out}")
    return 0 if result.status != "interrupted" else 130


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
