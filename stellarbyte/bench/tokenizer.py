"""`stellarbyte bench tokenizer`: encode throughput of the production tokenizer, and BPE training time of the
teaching BPE against HF `tokenizers`, measured side by side on the same text.

    stellarbyte bench tokenizer --input ../shared/data/tinystories_4M.txt ../shared/data/tinystories_val_800k.txt \\
        --max-bytes 5000000 --vocab-size 8192 --workers 2 --csv tokenizer_bench.csv

Rows (MB = 10^6 bytes of UTF-8 input):
- train/tokenizers-bpe: HF BpeTrainer configured like the teaching BPE (ByteLevel, no specials, same
  min_frequency); train/teaching-bpe: stellarbyte.tokenizer.teaching_bpe; the "merges equal" column says whether
  both learned the same merge list. train/production: train_tokenizer (with specials, writes the directory).
- encode/*: ByteTokenizer.encode_batch over the corpus split into lines (documents): in one process with the Rust
  thread pool (its default), in one process with one thread (TOKENIZERS_PARALLELISM=false), and with N worker
  processes (num_workers=N, each single-threaded; the time includes starting the pool). encode/teaching-bpe is the
  pure-Python encoder. Every encode row is checked to give the same ids as the first.
Times are the best of --repeats runs (training: one run each).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE", help=".txt/.jsonl/.parquet files")
    parser.add_argument("--text-field", default="text", help="text field of .jsonl/.parquet inputs")
    parser.add_argument("--max-bytes", type=int, default=5_000_000, help="use at most this many bytes of text")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes for the multiprocessing encode row")
    parser.add_argument("--repeats", type=int, default=3, help="encode timings: best of this many runs")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")


@contextmanager
def _tokenizers_threads(enabled: bool):
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if enabled else "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def load_lines(inputs: list[str], max_bytes: int, text_field: str = "text") -> list[str]:
    """The first `max_bytes` (UTF-8) of the inputs, as lines with their newlines (a line is a document here)."""
    from stellarbyte.tokenizer.sources import iter_texts

    if max_bytes <= 0:
        raise ValueError(f"--max-bytes must be positive, got {max_bytes}")
    lines, total = [], 0
    for chunk in iter_texts(list(inputs), text_field):
        for line in chunk.splitlines(keepends=True):
            size = len(line.encode("utf-8"))
            if total + size > max_bytes:
                return lines
            lines.append(line)
            total += size
    return lines


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _hf_teaching_equivalent(lines: list[str], vocab_size: int, min_frequency: int) -> list[tuple[str, str]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    return [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]


def run(args: argparse.Namespace) -> int:
    from stellarbyte.tokenizer import train_tokenizer
    from stellarbyte.tokenizer.teaching_bpe import TeachingBPE

    if args.workers < 2:
        raise ValueError(f"--workers must be >= 2 for the multiprocessing row, got {args.workers}")
    lines = load_lines(args.input, args.max_bytes, args.text_field)
    n_bytes = sum(len(s.encode("utf-8")) for s in lines)
    if n_bytes == 0:
        raise ValueError("the inputs hold no text to benchmark")
    mb = n_bytes / 1e6
    rows: list[dict[str, Any]] = []

    def add(name: str, seconds: float, note: str = "") -> None:
        rows.append({"row": name, "seconds": round(seconds, 4), "MB/s": round(mb / seconds, 3), "note": note})

    # ---- training: the same text for all three -------------------------------------------------------------
    start = time.perf_counter()
    hf_merges = _hf_teaching_equivalent(lines, args.vocab_size, args.min_frequency)
    t_hf = time.perf_counter() - start
    start = time.perf_counter()
    teaching = TeachingBPE.train(lines, args.vocab_size, args.min_frequency)
    t_teach = time.perf_counter() - start
    ours = teaching.merges_as_strings()
    same = sum(1 for _ in _common_prefix(ours, hf_merges))
    agree = f"merges equal: {ours == hf_merges} ({same}/{len(hf_merges)} identical prefix)"
    add("train/tokenizers-bpe", t_hf, f"{len(hf_merges)} merges")
    add("train/teaching-bpe", t_teach, f"{agree}; {t_teach / t_hf:.2f}x tokenizers' time")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        tok = train_tokenizer(iter(lines), args.vocab_size, tmp, min_frequency=args.min_frequency)
        add("train/production", time.perf_counter() - start, f"vocab_size={tok.vocab_size}, incl. save")

    # ---- encode throughput ---------------------------------------------------------------------------------
    with _tokenizers_threads(True):
        t, ref = _best(lambda: tok.encode_batch(lines), args.repeats)
    add("encode/1-process-rust-threads", t, f"{os.cpu_count()} cpus visible; {sum(map(len, ref))} tokens")
    with _tokenizers_threads(False):
        t, out = _best(lambda: tok.encode_batch(lines), args.repeats)
    add("encode/1-process-1-thread", t, "same ids" if out == ref else "IDS DIFFER")
    t, out = _best(lambda: tok.encode_batch(lines, num_workers=args.workers), args.repeats)
    add(f"encode/{args.workers}-processes", t, ("same ids" if out == ref else "IDS DIFFER") + ", incl. pool start")
    t, out = _best(lambda: [teaching.encode(s) for s in lines], 1)
    add("encode/teaching-bpe", t, "pure Python, 1 process (own vocab, no specials)")

    print(f"tokenizer benchmark: {len(lines)} lines, {mb:.2f} MB, vocab_size={args.vocab_size}, "
          f"min_frequency={args.min_frequency}")
    print(f"{'row':<32} {'seconds':>9} {'MB/s':>9}  note")
    for r in rows:
        print(f"{r['row']:<32} {r['seconds']:>9.3f} {r['MB/s']:>9.2f}  {r['note']}")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    return 0


def _common_prefix(a: list, b: list):
    for x, y in zip(a, b):
        if x != y:
            return
        yield x
