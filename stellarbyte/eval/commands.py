"""`stellarbyte eval`: perplexity on a dataset and/or exact-match accuracy on the toy world's held-out questions.

    stellarbyte eval runs/quickstart/model --data runs/quickstart/packed              # validation split
    stellarbyte eval runs/quickstart/model --data notes.txt more.jsonl --seq-len 256 --stride 128
    stellarbyte eval runs/quickstart/pretrain --checkpoint best --data runs/quickstart/packed --dtype bf16
    stellarbyte eval runs/quickstart/model --world runs/quickstart/toyworld --per-kind 20 --json results.json

MODEL is a model directory (config.json), a training run directory (its latest or best checkpoint) or one
checkpoint directory (stellarbyte.eval.loading). It prints a table and writes the results as JSON (--json).
Definitions: stellarbyte.eval.perplexity (windows, strides) and stellarbyte.eval.tasks (chance rates).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch


def add_parser(subparsers: Any, verb: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(verb, help="evaluate perplexity and task accuracy", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory, training run directory, or checkpoint directory")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"),
                   help="which checkpoint of a run directory (default latest; best = lowest validation loss)")
    g = p.add_argument_group("perplexity")
    g.add_argument("--data", nargs="+", default=None, metavar="PATH",
                   help="a packed dataset directory, or .txt (blank-line separated documents) / .jsonl "
                        "({\"text\": ...} per line) files tokenized with the model's tokenizer")
    g.add_argument("--split", default="validation", help="split of a packed dataset (default validation)")
    g.add_argument("--seq-len", type=int, default=256, help="tokens the model reads per window (default 256, "
                   "capped at the model's context window)")
    g.add_argument("--stride", type=int, default=None,
                   help="sliding windows advancing this many tokens (< seq-len; each window scores only its new "
                        "tokens); default: non-overlapping windows")
    g.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    g.add_argument("--max-tokens", type=int, default=None, help="evaluate only the first N tokens of the stream")
    g.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="evaluation precision (default fp32)")
    t = p.add_argument_group("held-out tasks")
    t.add_argument("--world", default=None, help="toy world directory (its eval/heldout.jsonl is scored)")
    t.add_argument("--per-kind", type=int, default=None, help="score only the first N questions of each kind")
    t.add_argument("--backend", default="engine", choices=("engine", "generate"),
                   help="engine: all questions batched through the serving engine (default); generate: one by "
                        "one through ByteModel.generate")
    t.add_argument("--max-new-tokens", type=int, default=24, help="reply length limit (default 24)")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the model's or the run's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON (atomically)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def evaluate(model_path: str, *, data: list[str] | None = None, world: str | None = None,
             checkpoint: str = "latest", split: str = "validation", seq_len: int = 256, stride: int | None = None,
             batch_size: int = 8, max_tokens: int | None = None, dtype: str = "fp32", per_kind: int | None = None,
             backend: str = "engine", max_new_tokens: int = 24, tokenizer: str | None = None, device: str = "auto",
             progress: bool = True) -> dict[str, Any]:
    """The verb's work as a function: {"model", "perplexity"?, "tasks"?, "seconds"}; see the module docstring."""
    from stellarbyte.eval.loading import load_for_eval
    from stellarbyte.eval.perplexity import PerplexityConfig, packed_stream, stream_perplexity, text_stream
    from stellarbyte.eval.progress import bar
    from stellarbyte.eval.tasks import engine_answerer, generate_answerer, score

    if not data and not world:
        raise ValueError("nothing to evaluate: pass --data (perplexity) and/or --world (held-out tasks)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # validate the cheap arguments before loading anything
    if per_kind is not None and per_kind < 1:
        raise ValueError(f"--per-kind must be >= 1, got {per_kind}")
    if max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    model, tok_dir, described = load_for_eval(model_path, checkpoint, device)
    seq_len = min(seq_len, model.config.context_length) if seq_len > 0 else seq_len
    cfg = PerplexityConfig(seq_len=seq_len, stride=stride, batch_size=batch_size, max_tokens=max_tokens, dtype=dtype)
    tok = None
    if tokenizer or tok_dir:
        from stellarbyte.data.tokenizing import load_tokenizer

        tok = load_tokenizer(tokenizer or tok_dir)
    results: dict[str, Any] = {"model": described}
    t0 = time.perf_counter()
    if data:
        paths = [Path(d) for d in data]
        for d in paths:
            if not d.exists():
                raise FileNotFoundError(f"{d}: no such dataset; pass a packed directory or .txt/.jsonl files")
        if len(paths) == 1 and paths[0].is_dir():
            tokens, source = packed_stream(paths[0], split), f"{paths[0]} ({split})"
        else:
            if any(d.is_dir() for d in paths):
                raise ValueError("pass either one packed dataset directory or .txt/.jsonl files, not a mix")
            if tok is None:
                raise ValueError("text files need a tokenizer: the model directory has no tokenizer.json; pass "
                                 "--tokenizer DIR")
            tokens, source = text_stream(paths, tok), ", ".join(map(str, paths))
        from stellarbyte.eval.perplexity import plan_windows

        n = len(tokens) if max_tokens is None else min(len(tokens), max_tokens)
        pbar = bar(len(plan_windows(n, cfg.seq_len, cfg.stride)), "perplexity", progress)
        ppl = stream_perplexity(model, tokens, cfg, progress=pbar.update)
        pbar.close()
        results["perplexity"] = {"data": source, **ppl.to_dict()}
    if world:
        from stellarbyte.data.toyworld import load_heldout

        if tok is None:
            raise ValueError("held-out tasks need a tokenizer (chat template): pass --tokenizer DIR")
        records = load_heldout(world)
        if backend == "engine":
            answerer = engine_answerer(model, tok, max_new_tokens)
        else:
            from stellarbyte.eval.tasks import select

            pbar = bar(sum(len(g) for g in select(records, per_kind).values()), "held-out", progress)
            answerer = generate_answerer(model, tok, max_new_tokens, progress=pbar.update)
        report = score(records, answerer, per_kind)
        results["tasks"] = {"world": str(world), "backend": backend, **report.to_dict(with_replies=True)}
        results["_report"] = report
    results["seconds"] = round(time.perf_counter() - t0, 2)
    return results


def run(args: argparse.Namespace) -> int:
    from stellarbyte.eval.tasks import format_table
    from stellarbyte.tokenizer.io import write_json_atomic

    results = evaluate(args.model, data=args.data, world=args.world, checkpoint=args.checkpoint, split=args.split,
                       seq_len=args.seq_len, stride=args.stride, batch_size=args.batch_size,
                       max_tokens=args.max_tokens, dtype=args.dtype, per_kind=args.per_kind, backend=args.backend,
                       max_new_tokens=args.max_new_tokens, tokenizer=args.tokenizer, device=args.device,
                       progress=not args.no_progress)
    report = results.pop("_report", None)
    print(f"eval: {results['model']}")
    if "perplexity" in results:
        r = results["perplexity"]
        mode = "non-overlapping" if r["stride"] == r["seq_len"] else f"sliding, stride {r['stride']}"
        print(f"  perplexity {r['perplexity']:.3f} (NLL {r['nll']:.4f} nats/token) on {r['data']}: {r['tokens']:,} "
              f"tokens scored in {r['windows']} windows of {r['seq_len']} ({mode}, {r['dtype']})")
    if report is not None:
        print(f"  held-out exact match ({results['tasks']['backend']}):")
        print(format_table(report))
        print(f"  {len(report.kinds_above_chance)}/{len(report.kinds)} kinds above chance; overall "
              f"{report.accuracy:.3f} vs chance {report.chance:.3f}")
    if args.json:
        write_json_atomic(args.json, results)
        print(f"  results -> {args.json}")
    return 0
