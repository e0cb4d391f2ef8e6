"""`stellarbyte quickstart`: the main job. One command, one run directory, a model that answers held-out questions.

  1. toy world     build_toyworld(RUN/toyworld, size, seed)                      (stellarbyte.data.toyworld)
  2. tokenizer     byte-level BPE on pretrain/train.txt -> RUN/tokenizer          (stellarbyte.tokenizer)
  3. pack          pretraining documents -> RUN/packed (train / validation)       (stellarbyte.data.pack)
  4. pretrain      `stellarbyte pretrain`'s own run() on configs/quickstart.yaml  (stellarbyte.train.commands);
                   validation loss every eval_every steps, a checkpoint at each; the best one (lowest validation
                   loss) is exported to RUN/pretrain/best_model and starts step 5
  5. SFT           `stellarbyte sft`'s run() on sft/train.jsonl from step 4's best weights; again the checkpoint
                   with the lowest SFT validation loss (sft/val.jsonl) is the result
  6. evaluate      stellarbyte.eval: validation perplexity (pretrained and SFT model; non-overlapping windows over
                   the whole packed validation split) and exact-match accuracy per held-out kind
                   (eval/heldout.jsonl; greedy through the serving engine, chat template, scored by check_answer)
                   with chance beside each
  7. report        a short sample chat, a summary table (per kind and overall, each against chance),
                   RUN/summary.json; RUN/model = SFT weights + tokenizer, so `stellarbyte generate RUN/model ...`
                   (and chat / serve / eval) open it

Contracts:
- No new training loop and no second evaluation: steps 4 and 5 build the argparse Namespace the CLI would and call
  its run function; step 6 calls the functions behind `stellarbyte eval` (stellarbyte.eval.perplexity / tasks).
- The model's vocab_size is the tokenizer's vocab_size (a larger table could emit ids nothing decodes).
- The quickstart owns its run directory's sub-folders: toyworld/, packed/ and the pretrain/ and sft/ trainer runs are
  rebuilt on every call (a stale checkpoint there would otherwise be mixed into a fresh run); RUN/model and
  summary.json are replaced atomically (temporary name, then rename).
- Best-checkpoint selection uses validation data only (packed validation split, sft/val.jsonl), never the held-out
  questions it reports.
- Chance per kind is the toy world's own figure (mean over the kind's items of 1 / number of candidate answers,
  stellarbyte.data.toyworld.heldout; docs/toyworld.md); overall chance is the same mean over every scored item.

References: the held-out design and probe in docs/toyworld.md; Allen-Zhu & Li, Physics of Language Models 3.1 (why
pretraining mixes in quiz pages); nanochat's speedrun (one script from tokenizer to a chat model).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "quickstart.yaml"

# the measured default (docs/quickstart.md); every entry is a keyword of run_quickstart
DEFAULTS = dict(size="4MB", vocab_size=2048, pretrain_steps=1200, sft_steps=400, batch_size=16, seq_len=256,
                pretrain_lr=3e-3, sft_lr=1e-3, sft_batch_size=32, evals=8)

# --fast: a smoke setting for tests (well under a minute on 2 CPU cores); measures nothing
FAST = dict(size="300KB", vocab_size=512, pretrain_steps=20, sft_steps=10, batch_size=4, seq_len=64,
            model=["model.hidden_size=64", "model.intermediate_size=128", "model.num_hidden_layers=2"],
            eval_per_kind=2)

STEPS = 7


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(verb, help="the main job: toy world -> tokenizer -> pretrain -> SFT -> eval",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/quickstart", help="run directory (default runs/quickstart)")
    p.add_argument("--size", default=None, help=f"toy world size: 1MB, 4MB, or a byte count "
                                                f"(default {DEFAULTS['size']})")
    p.add_argument("--seed", type=int, default=0, help="seed for the world, the weights and the data order")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help=f"pretraining optimizer steps (default {DEFAULTS['pretrain_steps']})")
    p.add_argument("--sft-steps", type=int, default=None, help=f"SFT optimizer steps (default {DEFAULTS['sft_steps']})")
    p.add_argument("--vocab-size", type=int, default=None,
                   help=f"BPE vocabulary size (default {DEFAULTS['vocab_size']})")
    p.add_argument("--pretrain-lr", type=float, default=None,
                   help=f"peak pretraining learning rate (default {DEFAULTS['pretrain_lr']})")
    p.add_argument("--sft-lr", type=float, default=None, help=f"peak SFT learning rate (default {DEFAULTS['sft_lr']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"pretraining sequences per step (default {DEFAULTS['batch_size']})")
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="training YAML: model shape and optimizer (default configs/quickstart.yaml)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the number of idle cores, sampled before each training stage, "
                        "at least 1: other jobs stall multi-threaded small ops; OMP_NUM_THREADS, when set, wins)")
    p.add_argument("--fast", action="store_true", help="tiny smoke setting (tiny world, model and step counts)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {"fast": args.fast, "config": args.config, "progress": not args.no_progress}
    for name in ("size", "pretrain_steps", "sft_steps", "vocab_size", "pretrain_lr", "sft_lr", "batch_size",
                 "threads"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    run_quickstart(args.out, seed=args.seed, **kwargs)
    return 0


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """(torch threads, why): as many threads as cores are idle right now (at least 1).

    Measured on this 2-core machine (docs/quickstart.md): alone, 2 threads train the quickstart model at 12.3k
    tokens/s and 1 thread at 6.4k; beside other jobs (load ~10) the `--fast` run took 136 s with 2 threads and 17 s
    with 1, because every multi-threaded op waits for its slowest thread and a thread sharing its core with another
    process stalls. Idle cores are sampled from /proc/stat over half a second (not the 1-minute load average, which
    still counts a `pip install` that just finished); the quickstart calls this before each training stage, while
    it is itself idle."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"quickstart: threads must be a positive integer, got {requested!r}")
        return requested, "--threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free = idle_cores()
    if free is None:
        return cores, "idle cores unknown (no /proc/stat)"
    n = max(1, min(cores, int(free + 0.5)))
    return n, f"{free:.1f} of {cores} cores idle"


def idle_cores(interval: float = 0.5) -> float | None:
    """Idle CPU capacity in cores over `interval` seconds, from the aggregate line of /proc/stat."""
    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])  # user nice system idle iowait irq softirq steal

    a = sample()
    time.sleep(interval)
    b = sample()
    if a is None or b is None or b[1] <= a[1]:
        return None
    ncpu = os.cpu_count() or 1  # /proc/stat's aggregate counts every online CPU
    return ncpu * (b[0] - a[0]) / (b[1] - a[1])


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/{STEPS}] {text}", flush=True)


def _documents(path: Path) -> list[str]:
    """Toy-world pretraining files hold documents separated by one blank line (none contains a blank line)."""
    return [d for d in path.read_text(encoding="utf-8").split("\n\n") if d.strip()]


def _train_namespace(config: str, overrides: list[str]) -> argparse.Namespace:
    # exactly what `stellarbyte pretrain|sft --config C --set k=v ...` parses to (no --field flags given)
    return argparse.Namespace(config=config, resume=False, set=overrides)


def _train_stage(config: str, overrides: list[str], verb: str, run_dir: Path) -> tuple[Path, int | None, float | None]:
    """Run `stellarbyte <verb>` in-process; return its best model (see best_model)."""
    from stellarbyte.train.commands import run as train_run

    code = train_run(_train_namespace(config, overrides), verb)
    if code != 0:
        raise RuntimeError(f"{verb} stopped early (exit {code}); see {run_dir / 'train.log'}")
    return best_model(run_dir)


def _replace_dir(src_files: list[Path], dest: Path) -> None:
    """Copy files into dest atomically: build a sibling temp folder, then swap it in."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src_files:
        shutil.copy2(f, tmp / f.name)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old)
    else:
        os.replace(tmp, dest)


def best_model(run_dir: Path) -> tuple[Path, int | None, float | None]:
    """The run's lowest-validation-loss checkpoint as a model directory: (dir, step, val loss).

    The trainer's final weights (RUN/model) when the best checkpoint is the last step or there is none; otherwise the
    best checkpoint is exported once to RUN/best_model (save_pretrained, atomic)."""
    import json

    from stellarbyte.eval.loading import load_for_eval
    from stellarbyte.train.checkpoint import CheckpointManager

    manager = CheckpointManager(run_dir)
    best, latest = manager.best(), manager.latest()
    if best is None:
        return run_dir / "model", None, None
    meta = json.loads((best / "meta.json").read_text())
    if latest is not None and best == latest:
        return run_dir / "model", meta["step"], meta["val_loss"]
    model, _, _ = load_for_eval(best)
    model.save_pretrained(run_dir / "best_model")
    return run_dir / "best_model", meta["step"], meta["val_loss"]


def run_quickstart(out_dir: str | os.PathLike, size: str | int = DEFAULTS["size"], seed: int = 0,
                   pretrain_steps: int = DEFAULTS["pretrain_steps"], sft_steps: int = DEFAULTS["sft_steps"],
                   vocab_size: int = DEFAULTS["vocab_size"], *, config: str | os.PathLike = DEFAULT_CONFIG,
                   batch_size: int = DEFAULTS["batch_size"], seq_len: int = DEFAULTS["seq_len"],
                   pretrain_lr: float = DEFAULTS["pretrain_lr"], sft_lr: float = DEFAULTS["sft_lr"],
                   sft_batch_size: int = DEFAULTS["sft_batch_size"], evals: int = DEFAULTS["evals"],
                   eval_per_kind: int | None = None, threads: int | None = None, fast: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Run the whole pipeline into out_dir and return the summary (also written to out_dir/summary.json).

    evals: validation passes (each with a checkpoint) per training stage; the best by validation loss is kept.
    threads: torch CPU threads; None picks them from the load at the start (choose_threads).
    fast=True replaces size, vocab, steps, batch shape, model width/depth and eval_per_kind by the FAST smoke
    setting (a test of the plumbing, not of learning).
    """
    from stellarbyte import ByteModel
    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.data.toyworld import build_toyworld, load_heldout
    from stellarbyte.eval.perplexity import PerplexityConfig, packed_stream, stream_perplexity
    from stellarbyte.eval.tasks import engine_answerer, format_table, score
    from stellarbyte.tokenizer import train_tokenizer
    from stellarbyte.tokenizer.io import write_json_atomic

    model_overrides: list[str] = []
    if fast:
        size, vocab_size = FAST["size"], FAST["vocab_size"]
        pretrain_steps, sft_steps = FAST["pretrain_steps"], FAST["sft_steps"]
        batch_size, seq_len, sft_batch_size = FAST["batch_size"], FAST["seq_len"], FAST["batch_size"]
        model_overrides, eval_per_kind = list(FAST["model"]), FAST["eval_per_kind"]
    for name, value in (("pretrain_steps", pretrain_steps), ("sft_steps", sft_steps), ("vocab_size", vocab_size),
                        ("batch_size", batch_size), ("evals", evals)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"quickstart: {name} must be a positive integer, got {value!r}")
    if not Path(config).is_file():
        raise FileNotFoundError(f"{config}: no such training config; pass --config configs/quickstart.yaml")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is a file; give a directory path")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("pretrain", "sft"):  # quickstart-owned trainer runs: never resume a stale one by accident
        shutil.rmtree(out / sub, ignore_errors=True)
    choose_threads(threads)  # validate before any work
    thread_log: dict[str, str] = {}

    def set_threads(stage: str) -> None:
        n, why = choose_threads(threads)
        torch.set_num_threads(n)
        thread_log[stage] = f"{n} ({why})"
        print(f"  {n} torch thread(s): {why}")

    times: dict[str, float] = {}
    t_start = time.perf_counter()

    _step(1, f"toy world ({size}, seed {seed}) -> {out / 'toyworld'}")
    t0 = time.perf_counter()
    world = out / "toyworld"
    manifest = build_toyworld(world, size=size, seed=seed, overwrite=True)
    print(f"  {manifest['world']['people']} people, {manifest['world']['towns']} towns, "
          f"{manifest['counts']['sft_conversations']} SFT conversations, "
          f"{manifest['counts']['heldout_tasks']} held-out questions")
    times["toyworld"] = time.perf_counter() - t0

    _step(2, f"tokenizer (byte-level BPE, vocab {vocab_size}) -> {out / 'tokenizer'}")
    t0 = time.perf_counter()
    tok_dir = out / "tokenizer"
    tokenizer = train_tokenizer([world / "pretrain" / "train.txt"], vocab_size, tok_dir)
    print(f"  {tokenizer.vocab_size} tokens (16 special, then bytes and merges)")
    times["tokenizer"] = time.perf_counter() - t0

    _step(3, f"pack -> {out / 'packed'}")
    t0 = time.perf_counter()
    packed = out / "packed"
    # both toy-world pretraining files; pack's hash split picks the validation documents (5%, stable across runs)
    docs = _documents(world / "pretrain" / "train.txt") + _documents(world / "pretrain" / "val.txt")
    index = pack_documents(docs, tokenizer, packed, PackConfig(val_fraction=0.05, overwrite=True, split_seed=seed))
    n_train = index["splits"]["train"]["num_tokens"]
    n_val = index["splits"]["validation"]["num_tokens"]
    print(f"  {len(docs)} documents: train {n_train:,} tokens, validation {n_val:,} tokens")
    times["pack"] = time.perf_counter() - t0

    # keep_last=1: the newest checkpoint plus the best one (CheckpointManager keeps both)
    common = [f"model.vocab_size={tokenizer.vocab_size}", *model_overrides, f"seed={seed}", f"seq_len={seq_len}",
              "loggers=[]", f"progress={str(progress).lower()}", "keep_last=1"]
    pre_every = max(pretrain_steps // evals, 1)
    epochs = pretrain_steps * batch_size * seq_len / max(n_train, 1)
    _step(4, f"pretrain {pretrain_steps} steps ({batch_size} x {seq_len} tokens/step, {epochs:.1f} epochs) -> "
             f"{out / 'pretrain'}")
    t0 = time.perf_counter()
    set_threads("pretrain")
    pre_over = common + [f"data_dir={packed}", f"run_dir={out / 'pretrain'}", f"max_steps={pretrain_steps}",
                         f"batch_size={batch_size}", f"lr={pretrain_lr}",
                         f"warmup_steps={min(50, pretrain_steps // 10)}", f"eval_every={pre_every}",
                         "eval_batches=10", f"save_every={pre_every}"]
    pre_model, pre_step, pre_val = _train_stage(str(config), pre_over, "pretrain", out / "pretrain")
    if pre_step is not None:
        print(f"  best validation loss {pre_val:.4f} at step {pre_step}: SFT starts from {pre_model}")
    times["pretrain"] = time.perf_counter() - t0
    pretrain_tokens = pretrain_steps * batch_size * seq_len

    _step(5, f"SFT {sft_steps} steps (batch {sft_batch_size}) on sft/train.jsonl -> {out / 'sft'}")
    t0 = time.perf_counter()
    set_threads("sft")
    sft_every = max(sft_steps // evals, 1)
    sft_over = common + [f"init_from={pre_model}", f"sft_train={world / 'sft' / 'train.jsonl'}",
                         f"sft_val={world / 'sft' / 'val.jsonl'}", f"tokenizer={tok_dir}",
                         f"run_dir={out / 'sft'}", f"max_steps={sft_steps}", f"batch_size={sft_batch_size}",
                         f"lr={sft_lr}", f"warmup_steps={min(20, sft_steps // 10)}",
                         f"eval_every={sft_every}", "eval_batches=10", f"save_every={sft_every}"]
    sft_model, sft_step, sft_val = _train_stage(str(config), sft_over, "sft", out / "sft")
    if sft_step is not None:
        print(f"  best SFT validation loss {sft_val:.4f} at step {sft_step}")
    times["sft"] = time.perf_counter() - t0

    # RUN/model: the chosen SFT weights with the tokenizer beside them (what generate / chat / serve open)
    model_dir = out / "model"
    files = [p for p in sft_model.iterdir() if p.is_file()]
    files += [p for p in tok_dir.iterdir() if p.is_file()]
    _replace_dir(files, model_dir)

    _step(6, "evaluate: validation perplexity, held-out exact match (greedy, chat template)")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    ppl_cfg = PerplexityConfig(seq_len=seq_len, batch_size=batch_size)
    val_tokens = packed_stream(packed, "validation")
    base = ByteModel.from_pretrained(pre_model).float()
    val_ppl_pretrain = stream_perplexity(base, val_tokens, ppl_cfg).perplexity
    del base
    model = ByteModel.from_pretrained(model_dir).float().eval()
    val_ppl = stream_perplexity(model, val_tokens, ppl_cfg).perplexity
    print(f"  validation perplexity ({len(val_tokens):,} tokens): pretrained {val_ppl_pretrain:.2f}, "
          f"after SFT {val_ppl:.2f}")
    records = load_heldout(world)
    report = score(records, engine_answerer(model, tokenizer), per_kind=eval_per_kind)  # batched, greedy
    times["evaluate"] = time.perf_counter() - t0

    _step(7, "sample chat and summary")
    samples = _sample_replies(report.replies)
    for r in samples:
        print(f"  user:      {r['question']}\n  assistant: {r['reply']}   [{'right' if r['correct'] else 'wrong'}; "
              f"expected {r['expected']}]")
    accuracy = {k: {"n": r.n, "correct": r.correct, "accuracy": r.accuracy, "chance": r.chance}
                for k, r in report.kinds.items()}
    above = report.kinds_above_chance
    wall = time.perf_counter() - t_start
    times["total"] = wall
    summary = {
        "out_dir": str(out), "size": size, "seed": seed, "fast": fast, "vocab_size": tokenizer.vocab_size,
        "config": str(config), "parameters": model.num_parameters(), "model_dir": str(model_dir),
        "pretrain_steps": pretrain_steps, "sft_steps": sft_steps, "pretrain_tokens": pretrain_tokens,
        "packed_train_tokens": n_train, "pretrain_epochs": round(epochs, 2),
        "best_pretrain_step": pre_step, "best_pretrain_val_loss": pre_val, "pretrain_model_dir": str(pre_model),
        "best_sft_step": sft_step, "best_sft_val_loss": sft_val, "sft_model_dir": str(sft_model),
        "val_ppl_pretrain": val_ppl_pretrain, "val_ppl": val_ppl,
        "accuracy": accuracy, "overall_accuracy": report.accuracy, "overall_chance": report.chance,
        "heldout_questions": report.n, "kinds_above_chance": above,
        "samples": samples, "times_s": {k: round(v, 2) for k, v in times.items()}, "wall_s": round(wall, 1),
        "torch_threads": thread_log, "cpu_load_1m_end": _load(),
    }
    write_json_atomic(out / "summary.json", summary)
    print("\n" + format_table(report))
    print(f"\n  {len(above)}/{len(accuracy)} held-out kinds above chance; overall {report.accuracy:.3f} vs chance "
          f"{report.chance:.3f} over {report.n} questions; validation perplexity {val_ppl:.2f}; "
          f"{summary['parameters']:,} parameters; wall {wall:.0f} s")
    print(f"\nTry: stellarbyte chat {model_dir}    or    stellarbyte eval {model_dir} --world {world}")
    return summary


def _sample_replies(replies: list[dict]) -> list[dict]:
    """One scored reply of each of a few kinds (count first: the most learnable on a small world)."""
    picks = []
    for kind in ("count", "reverse", "add_swap", "fact_home"):
        for r in replies:
            if r["kind"] == kind:
                picks.append(r)
                break
    return picks


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
