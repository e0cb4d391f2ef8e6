"""`stellarbyte quickstart`: the main job. One command, one run directory, a model that answers held-out questions.

  1. toy world     build_toyworld(RUN/toyworld, size, seed)                      (stellarbyte.data.toyworld)
  2. tokenizer     byte-level BPE on pretrain/train.txt -> RUN/tokenizer          (stellarbyte.tokenizer)
  3. pack          pretraining documents -> RUN/packed (train / validation)       (stellarbyte.data.pack)
  4. pretrain      `stellarbyte pretrain`'s own run() on configs/tiny-cpu.yaml    (stellarbyte.train.commands)
  5. SFT           `stellarbyte sft`'s run() on sft/train.jsonl, init from step 4's model
  6. evaluate      validation perplexity (pretrained and SFT model) on the packed validation split; exact-match
                   accuracy per held-out kind (eval/heldout.jsonl) with greedy decoding through the chat template,
                   scored by check_answer, chance level beside each
  7. report        a short sample chat, a summary table, RUN/summary.json; RUN/model = SFT weights + tokenizer, so
                   `stellarbyte generate RUN/model --prompt ...` (and chat / serve) open it

Contracts:
- No new training loop: steps 4 and 5 build the argparse Namespace the CLI would and call its run function, so the
  quickstart trains exactly what `stellarbyte pretrain` / `sft` train (same config resolution, seeding, checkpoints).
- The model's vocab_size is the tokenizer's vocab_size (a larger table could emit ids nothing decodes).
- The quickstart owns its run directory's sub-folders: toyworld/, packed/ and the pretrain/ and sft/ trainer runs are
  rebuilt on every call (a stale checkpoint there would otherwise be mixed into a fresh run); RUN/model and
  summary.json are replaced atomically (temporary name, then rename).
- Chance per kind is the toy world's own figure (mean over the kind's items of 1 / number of candidate answers,
  stellarbyte.data.toyworld.heldout; docs/toyworld.md).

References: the held-out design and probe in docs/toyworld.md; Allen-Zhu & Li, Physics of Language Models 3.1 (why
pretraining mixes in quiz pages); nanochat's speedrun (one script from tokenizer to a chat model).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny-cpu.yaml"
IM_END_ID = 5  # <|im_end|>: closes the assistant's turn (stellarbyte.tokenizer.special_tokens)
EOS_ID = 2

# --fast: a smoke setting for tests (well under a minute on 2 CPU cores); measures nothing
FAST = dict(size="300KB", vocab_size=512, pretrain_steps=20, sft_steps=10, batch_size=4, seq_len=64,
            model=["model.hidden_size=64", "model.intermediate_size=128", "model.num_hidden_layers=2"],
            eval_per_kind=2)

STEPS = 7


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(verb, help="the main job: toy world -> tokenizer -> pretrain -> SFT -> eval",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/quickstart", help="run directory (default runs/quickstart)")
    p.add_argument("--size", default="1MB", help="toy world size: 1MB (default), 4MB, or a byte count")
    p.add_argument("--seed", type=int, default=0, help="seed for the world, the weights and the data order")
    p.add_argument("--pretrain-steps", type=int, default=None, help="pretraining optimizer steps (default 1200)")
    p.add_argument("--sft-steps", type=int, default=None, help="SFT optimizer steps (default 400)")
    p.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary size (default 2048)")
    p.add_argument("--pretrain-lr", type=float, default=None, help="peak pretraining learning rate (default 3e-3)")
    p.add_argument("--sft-lr", type=float, default=None, help="peak SFT learning rate (default 3e-4)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="training YAML (default configs/tiny-cpu.yaml)")
    p.add_argument("--fast", action="store_true", help="tiny smoke setting (tiny world, model and step counts)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {"fast": args.fast, "config": args.config, "progress": not args.no_progress}
    for name in ("pretrain_steps", "sft_steps", "vocab_size", "pretrain_lr", "sft_lr"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    kwargs["size"] = args.size
    run_quickstart(args.out, seed=args.seed, **kwargs)
    return 0


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/{STEPS}] {text}", flush=True)


def _documents(path: Path) -> list[str]:
    """Toy-world pretraining files hold documents separated by one blank line (none contains a blank line)."""
    return [d for d in path.read_text(encoding="utf-8").split("\n\n") if d.strip()]


def _train_namespace(config: str, overrides: list[str]) -> argparse.Namespace:
    # exactly what `stellarbyte pretrain|sft --config C --set k=v ...` parses to (no --field flags given)
    return argparse.Namespace(config=config, resume=False, set=overrides)


@torch.no_grad()
def perplexity(model: torch.nn.Module, data_dir: Path, batch_size: int, seq_len: int, max_batches: int) -> float:
    """exp(mean token loss) over the first max_batches validation blocks (the trainer's evaluate(), standalone)."""
    from stellarbyte.train.batches import count_targets, lm_loss, validation_batches

    model.eval()
    total, count = 0.0, 0
    for batch in validation_batches(data_dir, batch_size, seq_len, max_batches)():
        total += float(lm_loss(model, batch))  # summed over tokens
        count += count_targets(batch)
    if count == 0:
        raise ValueError(f"{data_dir}: the validation split is empty; use a larger --size")
    return math.exp(min(total / count, 50.0))


@torch.no_grad()
def answer(model: torch.nn.Module, tokenizer: Any, question: str, max_new_tokens: int = 24) -> str:
    """Greedy reply to one user turn, rendered with the chat template; stops at <|im_end|> or EOS."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                           tokenize=True)
    ids = torch.tensor([prompt], device=model.device)  # (1, P)
    out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=[IM_END_ID, EOS_ID])
    return tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True).strip()


def evaluate_heldout(model: torch.nn.Module, tokenizer: Any, records: list[dict], per_kind: int | None = None,
                     progress: bool = True) -> dict[str, dict[str, Any]]:
    """Exact-match accuracy per held-out kind: {kind: {n, correct, accuracy, chance}} (chance = mean over items)."""
    from stellarbyte.data.toyworld import check_answer

    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if per_kind is None or len(by_kind[r["kind"]]) < per_kind:
            by_kind[r["kind"]].append(r)
    todo = sum(len(v) for v in by_kind.values())
    bar = _bar(todo, "held-out", progress)
    result = {}
    for kind in sorted(by_kind):
        items = by_kind[kind]
        correct = 0
        for r in items:
            correct += bool(check_answer(r["task"], answer(model, tokenizer, r["question"])))
            bar.update(1)
        chance = sum(float(r["task"]["chance"]) for r in items) / len(items)
        result[kind] = {"n": len(items), "correct": correct, "accuracy": correct / len(items), "chance": chance}
    bar.close()
    return result


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, progress: bool):
    if not progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=f"  {desc}", leave=False)


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


def format_table(accuracy: dict[str, dict[str, Any]]) -> str:
    lines = [f"  {'kind':<14} {'n':>4} {'accuracy':>9} {'chance':>8}  vs chance",
             f"  {'-' * 14} {'-' * 4} {'-' * 9} {'-' * 8}  {'-' * 9}"]
    for kind, r in accuracy.items():
        ratio = r["accuracy"] / r["chance"] if r["chance"] > 0 else float("inf")
        lines.append(f"  {kind:<14} {r['n']:>4} {r['accuracy']:>9.3f} {r['chance']:>8.3f}  {ratio:>8.1f}x")
    return "\n".join(lines)


def run_quickstart(out_dir: str | os.PathLike, size: str | int = "1MB", seed: int = 0, pretrain_steps: int = 1200,
                   sft_steps: int = 400, vocab_size: int = 2048, *, config: str | os.PathLike = DEFAULT_CONFIG,
                   batch_size: int = 16, seq_len: int = 256, pretrain_lr: float = 3e-3, sft_lr: float = 3e-4,
                   sft_batch_size: int = 32, eval_per_kind: int | None = None, fast: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Run the whole pipeline into out_dir and return the summary (also written to out_dir/summary.json).

    fast=True replaces size, vocab, steps, batch shape, model width/depth and eval_per_kind by the FAST smoke
    setting (a test of the plumbing, not of learning).
    """
    from stellarbyte import ByteModel
    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.data.toyworld import build_toyworld, check_answer, load_heldout
    from stellarbyte.tokenizer import train_tokenizer
    from stellarbyte.tokenizer.io import write_json_atomic
    from stellarbyte.train.commands import run as train_run

    model_overrides: list[str] = []
    if fast:
        size, vocab_size = FAST["size"], FAST["vocab_size"]
        pretrain_steps, sft_steps = FAST["pretrain_steps"], FAST["sft_steps"]
        batch_size, seq_len, sft_batch_size = FAST["batch_size"], FAST["seq_len"], FAST["batch_size"]
        model_overrides, eval_per_kind = list(FAST["model"]), FAST["eval_per_kind"]
    for name, value in (("pretrain_steps", pretrain_steps), ("sft_steps", sft_steps), ("vocab_size", vocab_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"quickstart: {name} must be a positive integer, got {value!r}")
    if not Path(config).is_file():
        raise FileNotFoundError(f"{config}: no such training config; pass --config configs/tiny-cpu.yaml")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is a file; give a directory path")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("pretrain", "sft"):  # quickstart-owned trainer runs: never resume a stale one by accident
        shutil.rmtree(out / sub, ignore_errors=True)
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

    common = [f"model.vocab_size={tokenizer.vocab_size}", *model_overrides, f"seed={seed}", f"seq_len={seq_len}",
              "loggers=[]", f"progress={str(progress).lower()}", "keep_last=1"]
    _step(4, f"pretrain {pretrain_steps} steps ({batch_size} x {seq_len} tokens/step) -> {out / 'pretrain'}")
    t0 = time.perf_counter()
    pre_over = common + [f"data_dir={packed}", f"run_dir={out / 'pretrain'}", f"max_steps={pretrain_steps}",
                         f"batch_size={batch_size}", f"lr={pretrain_lr}",
                         f"warmup_steps={min(50, pretrain_steps // 10)}", f"eval_every={max(pretrain_steps // 4, 1)}",
                         "eval_batches=10", "save_every=0"]
    code = train_run(_train_namespace(str(config), pre_over), "pretrain")
    if code != 0:
        raise RuntimeError(f"pretraining stopped early (exit {code}); see {out / 'pretrain' / 'train.log'}")
    times["pretrain"] = time.perf_counter() - t0
    pretrain_tokens = pretrain_steps * batch_size * seq_len

    _step(5, f"SFT {sft_steps} steps (batch {sft_batch_size}) on sft/train.jsonl -> {out / 'sft'}")
    t0 = time.perf_counter()
    sft_over = common + [f"init_from={out / 'pretrain' / 'model'}", f"sft_train={world / 'sft' / 'train.jsonl'}",
                         f"sft_val={world / 'sft' / 'val.jsonl'}", f"tokenizer={tok_dir}",
                         f"run_dir={out / 'sft'}", f"max_steps={sft_steps}", f"batch_size={sft_batch_size}",
                         f"lr={sft_lr}", f"warmup_steps={min(20, sft_steps // 10)}",
                         f"eval_every={max(sft_steps // 2, 1)}", "eval_batches=10", "save_every=0"]
    code = train_run(_train_namespace(str(config), sft_over), "sft")
    if code != 0:
        raise RuntimeError(f"SFT stopped early (exit {code}); see {out / 'sft' / 'train.log'}")
    times["sft"] = time.perf_counter() - t0

    # RUN/model: the SFT weights with the tokenizer beside them (what generate / chat / serve open)
    model_dir = out / "model"
    files = [p for p in (out / "sft" / "model").iterdir() if p.is_file()]
    files += [p for p in tok_dir.iterdir() if p.is_file()]
    _replace_dir(files, model_dir)

    _step(6, "evaluate: validation perplexity, held-out exact match (greedy, chat template)")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    ppl_batch, ppl_len = batch_size, seq_len
    base = ByteModel.from_pretrained(out / "pretrain" / "model").float()
    val_ppl_pretrain = perplexity(base, packed, ppl_batch, ppl_len, max_batches=20)
    del base
    model = ByteModel.from_pretrained(model_dir).float().eval()
    val_ppl = perplexity(model, packed, ppl_batch, ppl_len, max_batches=20)
    print(f"  validation perplexity: pretrained {val_ppl_pretrain:.2f}, after SFT {val_ppl:.2f}")
    records = load_heldout(world)
    accuracy = evaluate_heldout(model, tokenizer, records, per_kind=eval_per_kind, progress=progress)
    times["evaluate"] = time.perf_counter() - t0

    _step(7, "sample chat and summary")
    samples = []
    picks = _sample_questions(records)
    for r in picks:
        reply = answer(model, tokenizer, r["question"])
        ok = bool(check_answer(r["task"], reply))
        samples.append({"kind": r["kind"], "question": r["question"], "reply": reply, "expected": r["answer"],
                        "correct": ok})
        print(f"  user:      {r['question']}\n  assistant: {reply}   [{'right' if ok else 'wrong'}; "
              f"expected {r['answer']}]")
    n_total = sum(r["n"] for r in accuracy.values())
    overall = sum(r["correct"] for r in accuracy.values()) / max(n_total, 1)
    above = sorted(k for k, r in accuracy.items() if r["accuracy"] > r["chance"])
    wall = time.perf_counter() - t_start
    times["total"] = wall
    summary = {
        "out_dir": str(out), "size": size, "seed": seed, "fast": fast, "vocab_size": tokenizer.vocab_size,
        "parameters": model.num_parameters(), "model_dir": str(model_dir),
        "pretrain_steps": pretrain_steps, "sft_steps": sft_steps, "pretrain_tokens": pretrain_tokens,
        "packed_train_tokens": n_train, "val_ppl_pretrain": val_ppl_pretrain, "val_ppl": val_ppl,
        "accuracy": accuracy, "overall_accuracy": overall, "kinds_above_chance": above,
        "samples": samples, "times_s": {k: round(v, 2) for k, v in times.items()}, "wall_s": round(wall, 1),
        "cpu_load_1m_end": _load(),
    }
    write_json_atomic(out / "summary.json", summary)
    print("\n" + format_table(accuracy))
    print(f"\n  {len(above)}/{len(accuracy)} held-out kinds above chance; overall {overall:.3f} over {n_total} "
          f"questions; validation perplexity {val_ppl:.2f}; {summary['parameters']:,} parameters; "
          f"wall {wall:.0f} s")
    print(f"\nTry: stellarbyte generate {model_dir} --prompt 'Once upon a time' --max-new-tokens 40")
    return summary


def _sample_questions(records: list[dict]) -> list[dict]:
    """One question of each of a few kinds (count first: the most learnable at 1 MB)."""
    picks = []
    for kind in ("count", "reverse", "add_swap", "fact_home"):
        for r in records:
            if r["kind"] == kind:
                picks.append(r)
                break
    return picks


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
