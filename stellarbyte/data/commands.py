"""`stellarbyte data ...`: ingest, clean, dedup, analyse, pack, inspect, sft, preference and toyworld sub-commands.

Every step reads any ingestible input (txt / jsonl / parquet files or directories; the jsonl written by an earlier
step has a "text" field) and writes jsonl atomically, printing one stats line per step, so a pipeline is

    stellarbyte data ingest --input raw/ --out docs.jsonl
    stellarbyte data clean  --input docs.jsonl --out clean.jsonl
    stellarbyte data dedup  --input clean.jsonl --out dedup.jsonl --threshold 0.8
    stellarbyte data pack   --input dedup.jsonl --tokenizer tok/ --out packed/
    stellarbyte data analyse --packed packed/ --tokenizer tok/ --out report/
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator

from stellarbyte.data.records import Document, Stats, format_stats, write_jsonl


def _add_input(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--input", nargs="+", required=required, metavar="PATH",
                   help="files or directories (.txt, .jsonl[.gz], .parquet)")
    g.add_argument("--format", default="auto", choices=["auto", "txt", "jsonl", "parquet"],
                   help="input format (default: from the file suffix)")
    g.add_argument("--text-field", default="text", help="record key holding the text; dots reach into objects")
    g.add_argument("--txt-mode", default="paragraph", choices=["paragraph", "file"],
                   help="txt files: one document per blank-line-separated paragraph, or per file")
    g.add_argument("--strict", action="store_true", help="fail on the first bad record instead of counting a skip")


def _read(args, stats: Stats) -> Iterator[Document]:
    from stellarbyte.data.ingest import IngestConfig, read_files, read_hf_dataset

    config = IngestConfig(text_field=args.text_field, txt_mode=args.txt_mode, format=args.format, strict=args.strict)
    if getattr(args, "hf", None):
        return read_hf_dataset(args.hf, config, stats, split=args.hf_split, subset=args.hf_subset,
                               streaming=not args.no_streaming, data_files=args.data_files, limit=args.limit)
    if not args.input:
        raise ValueError("give --input PATH... (or --hf NAME for a Hugging Face dataset)")
    return read_files(args.input, config, stats)


def _finish(out: str, n: int, stats: list[Stats], t0: float) -> int:
    print(format_stats(stats))
    print(f"wrote {n:,} documents to {out} in {time.perf_counter() - t0:.1f}s")
    return 0


# ---- ingest -------------------------------------------------------------------------------------------------------
def _ingest(args) -> int:
    t0, stats = time.perf_counter(), Stats("ingest")
    n = write_jsonl(args.out, _read(args, stats))
    return _finish(args.out, n, [stats], t0)


# ---- clean --------------------------------------------------------------------------------------------------------
def _clean(args) -> int:
    from stellarbyte.data.clean import BoilerplateFilter, HtmlStripper, UnicodeNormalizer
    from stellarbyte.data.pii import PiiScrubber
    from stellarbyte.data.pipeline import run_steps
    from stellarbyte.data.quality import QualityConfig, QualityFilter

    steps = []
    if args.unicode != "none":
        steps.append(UnicodeNormalizer(args.unicode))
    if not args.no_html:
        steps.append(HtmlStripper())
    if not args.no_boilerplate:
        steps.append(BoilerplateFilter())
    if not args.no_quality:
        qc = QualityConfig(min_words=args.min_words, max_digit_ratio=args.max_digit_ratio,
                           min_stop_words=0 if args.no_stop_words else 2)
        steps.append(QualityFilter(qc))
    pii = None
    if not args.no_pii:
        pii = PiiScrubber()
        steps.append(pii)
    t0, in_stats = time.perf_counter(), Stats("ingest")
    stream, stats = run_steps(_read(args, in_stats), steps)
    n = write_jsonl(args.out, stream)
    _finish(args.out, n, [in_stats, *stats], t0)
    if pii is not None:
        print("pii replaced: " + (", ".join(f"{k}={v}" for k, v in sorted(pii.found.items())) or "none"))
    return 0


# ---- dedup --------------------------------------------------------------------------------------------------------
def _dedup(args) -> int:
    from stellarbyte.data.dedup import ExactDedup, NearDedup
    from stellarbyte.data.minhash import MinHashConfig
    from stellarbyte.data.pipeline import run_steps

    steps = [] if args.no_exact else [ExactDedup()]
    if not args.no_near:
        cfg = MinHashConfig(threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram, shingle=args.shingle,
                            bands=args.bands, rows=args.rows, seed=args.seed, fn_weight=args.fn_weight)
        print(f"minhash: threshold={cfg.threshold} num_perm={cfg.num_perm} bands={cfg.bands} rows={cfg.rows} "
              f"{cfg.ngram}-{cfg.shingle} shingles")
        steps.append(NearDedup(cfg, verify=args.verify))
    if not steps:
        raise ValueError("nothing to do: --no-exact and --no-near together disable both dedup steps")
    t0, in_stats = time.perf_counter(), Stats("ingest")
    stream, stats = run_steps(_read(args, in_stats), steps)
    n = write_jsonl(args.out, stream)
    return _finish(args.out, n, [in_stats, *stats], t0)


# ---- analyse ------------------------------------------------------------------------------------------------------
def _analyse(args) -> int:
    from stellarbyte.data.analyse import analyse_documents, analyse_packed, write_report
    from stellarbyte.data.tokenizing import load_tokenizer

    tok = load_tokenizer(args.tokenizer) if args.tokenizer else None
    if args.packed:
        result = analyse_packed(args.packed, args.split, tok, top_k=args.top_k)
    else:
        stats = Stats("ingest")
        result = analyse_documents(_read(args, stats), tok, top_k=args.top_k, num_workers=args.workers)
        print(format_stats([stats]))
    path = write_report(result, args.out)
    print(f"{result['documents']:,} documents; report: {path}")
    return 0


# ---- pack ---------------------------------------------------------------------------------------------------------
def _pack(args) -> int:
    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.data.tokenizing import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    config = PackConfig(val_fraction=args.val_fraction, shard_tokens=args.shard_tokens, num_workers=args.workers,
                        split_seed=args.split_seed, overwrite=args.overwrite)
    t0, in_stats, pack_stats = time.perf_counter(), Stats("ingest"), Stats("pack")
    index = pack_documents(_read(args, in_stats), tok, args.out, config, pack_stats,
                           extra={"tokenizer_path": str(args.tokenizer)})
    dt = time.perf_counter() - t0
    print(format_stats([in_stats, pack_stats]))
    total = sum(s["num_tokens"] for s in index["splits"].values())
    for name, s in index["splits"].items():
        print(f"{name:<11} {s['num_docs']:>9,} docs {s['num_tokens']:>13,} tokens {len(s['shards']):>4} shard(s)")
    print(f"{index['dtype']} ids, tokenizer {index['tokenizer_hash']}, {total:,} tokens in {dt:.1f}s "
          f"({total / max(dt, 1e-9):,.0f} tokens/s) -> {args.out}")
    return 0


def _inspect(args) -> int:
    from stellarbyte.data.pack import read_index

    index = read_index(args.dir)
    print(json.dumps({k: v for k, v in index.items() if k != "splits"}, indent=2))
    for name, s in index["splits"].items():
        print(f"{name}: {s['num_docs']:,} docs, {s['num_tokens']:,} tokens, {len(s['shards'])} shard(s)")
    return 0


# ---- sft / preference ---------------------------------------------------------------------------------------------
def _jsonl_records(path: str) -> Iterator:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg}); fix or remove the line") from err


def _sft(args) -> int:
    from stellarbyte.data.records import atomic_write
    from stellarbyte.data.sft import SFTConfig, build_sft_examples
    from stellarbyte.data.tokenizing import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    stats = Stats("sft")
    config = SFTConfig(max_length=args.max_length, truncation=args.truncation, strict=args.strict)
    n_tok = n_lab = n = 0
    with atomic_write(args.out) if args.out else contextlib.nullcontext() as f:
        for ex in build_sft_examples(_jsonl_records(args.input), tok, config, stats):
            n, n_tok, n_lab = n + 1, n_tok + len(ex.input_ids), n_lab + sum(t != -100 for t in ex.labels)
            if f is not None:
                f.write(json.dumps({"input_ids": ex.input_ids, "labels": ex.labels}) + "\n")
    print(format_stats([stats]))
    print(f"{n:,} conversations, {n_tok:,} tokens, {n_lab:,} trained on ({n_lab / max(1, n_tok):.1%}), "
          f"mean length {n_tok / max(1, n):.1f}" + (f" -> {args.out}" if args.out else ""))
    return 0


def _preference(args) -> int:
    from stellarbyte.data.preference import PreferenceConfig, build_preference_pairs
    from stellarbyte.data.records import atomic_write
    from stellarbyte.data.tokenizing import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    stats = Stats("preference")
    config = PreferenceConfig(max_length=args.max_length, max_prompt_length=args.max_prompt_length)
    pairs = list(build_preference_pairs(_jsonl_records(args.input), tok, config, stats, strict=args.strict))
    if args.out:
        with atomic_write(args.out) as f:
            for p in pairs:
                f.write(json.dumps({"prompt_ids": p.prompt_ids, "chosen_ids": p.chosen_ids,
                                    "rejected_ids": p.rejected_ids}) + "\n")
    print(format_stats([stats]))
    n = max(1, len(pairs))
    print(f"{len(pairs):,} pairs; mean prompt {sum(len(p.prompt_ids) for p in pairs) / n:.1f} tokens, chosen "
          f"{sum(len(p.chosen_ids) for p in pairs) / n:.1f}, rejected {sum(len(p.rejected_ids) for p in pairs) / n:.1f}"
          + (f" -> {args.out}" if args.out else ""))
    return 0


# ---- toyworld -----------------------------------------------------------------------------------------------------
def _toyworld(args) -> int:
    from stellarbyte.data.toyworld import build_toyworld  # lazy: written in parallel, optional for the other verbs

    kwargs = {"overwrite": True} if args.overwrite else {}
    manifest = build_toyworld(args.out, size=args.size, seed=args.seed, **kwargs)
    for name, info in sorted(manifest.get("files", {}).items()):
        n = info.get("records", info.get("documents", ""))
        print(f"{name:<28} {n:>9,} items {info.get('bytes', 0):>13,} bytes" if n != "" else name)
    print(f"toy world seed={manifest.get('seed')} size={manifest.get('size')} -> {args.out} (manifest.json)")
    return 0


def add_parser(subparsers, verb: str) -> None:
    parser = subparsers.add_parser(verb, help="ingest, clean, dedup, analyse and pack datasets; the toy world",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="data_command", metavar="<step>", required=True)

    p = sub.add_parser("ingest", help="read txt/jsonl/parquet files or a HF dataset into one jsonl",
                       description="Read raw inputs into jsonl ({id, text, source} per line). Bad records are "
                                   "counted and skipped (or fail with --strict).")
    _add_input(p, required=False)
    g = p.add_argument_group("Hugging Face datasets (pip install datasets)")
    g.add_argument("--hf", metavar="NAME", help="dataset name on the hub, or a builder such as json/parquet/text")
    g.add_argument("--hf-split", default="train")
    g.add_argument("--hf-subset", default=None, help="configuration name")
    g.add_argument("--data-files", nargs="+", default=None, help="local files for a builder such as json")
    g.add_argument("--no-streaming", action="store_true", help="download/prepare instead of streaming")
    g.add_argument("--limit", type=int, default=None, help="stop after this many rows")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("clean", help="normalise Unicode, strip HTML/boilerplate, quality-filter, scrub PII",
                       description="Cleaning steps in order: unicode, html, boilerplate, quality, pii; each prints "
                                   "how many documents it removed (with reasons) or changed.")
    _add_input(p)
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--unicode", default="NFC", choices=["NFC", "NFKC", "none"], help="normalisation form")
    p.add_argument("--no-html", action="store_true", help="keep HTML markup")
    p.add_argument("--no-boilerplate", action="store_true", help="keep cookie/terms/javascript lines")
    p.add_argument("--no-quality", action="store_true", help="skip the Gopher-style quality filter")
    p.add_argument("--min-words", type=int, default=50, help="quality: shortest document kept, in words")
    p.add_argument("--max-digit-ratio", type=float, default=0.3, help="quality: largest digit share of characters")
    p.add_argument("--no-stop-words", action="store_true", help="quality: do not require English stop words")
    p.add_argument("--no-pii", action="store_true", help="keep e-mails, phone numbers and IP addresses")
    p.set_defaults(func=_clean)

    p = sub.add_parser("dedup", help="exact (hash) and near-duplicate (MinHash-LSH) removal",
                       description="Keep the first of each group of duplicates. Near duplicates: estimated "
                                   "Jaccard of word n-gram shingles >= --threshold.")
    _add_input(p)
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--no-exact", action="store_true", help="skip exact dedup")
    p.add_argument("--no-near", action="store_true", help="skip near-duplicate dedup")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity that counts as duplicate")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash signature length")
    p.add_argument("--ngram", type=int, default=5, help="shingle size (words, or characters with --shingle char)")
    p.add_argument("--shingle", default="word", choices=["word", "char"])
    p.add_argument("--bands", type=int, default=None, help="LSH bands (default: optimal for the threshold)")
    p.add_argument("--rows", type=int, default=None, help="LSH rows per band")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fn-weight", type=float, default=0.5,
                   help="weight of missed duplicates vs false candidates when choosing bands x rows (0-1)")
    p.add_argument("--verify", default="estimate", choices=["estimate", "exact"],
                   help="confirm candidates by estimated Jaccard, or by exact shingle Jaccard (more memory)")
    p.set_defaults(func=_dedup)

    p = sub.add_parser("analyse", aliases=["analyze"], help="length/token distributions, top tokens, coverage",
                       description="Write report.md, analysis.json and PNG plots (needs matplotlib) for documents "
                                   "(--input) or a packed dataset (--packed).")
    _add_input(p, required=False)
    p.add_argument("--packed", default=None, help="a packed dataset directory instead of --input")
    p.add_argument("--split", default="train", help="split of --packed")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (token statistics need it for --input)")
    p.add_argument("--top-k", type=int, default=30)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", required=True, help="report directory")
    p.set_defaults(func=_analyse)

    p = sub.add_parser("pack", help="tokenize into sharded binary token files with an index",
                       description="Multiprocess tokenization into <split>_NNNNN.bin shards (uint16 when the vocab "
                                   "fits) and index.json (written last). EOS separates documents.")
    _add_input(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (stellarbyte tokenizer train --out)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--val-fraction", type=float, default=0.01, help="share of documents in the validation split")
    p.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard")
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a different dataset already in --out")
    p.set_defaults(func=_pack)

    p = sub.add_parser("sft", help="tokenize conversations with assistant-only labels; report counts",
                       description="Conversations (messages / ShareGPT conversations / Alpaca) -> chat-templated "
                                   "ids with labels -100 outside assistant turns. Truncation: 'right' keeps the first "
                                   "--max-length tokens (skipped if no assistant token survives); 'drop' skips "
                                   "longer conversations. Conversations without an assistant turn are skipped.")
    p.add_argument("--input", required=True, help="jsonl of conversations")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory with a chat template")
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--truncation", default="right", choices=["right", "drop"])
    p.add_argument("--strict", action="store_true", help="fail on the first unusable conversation")
    p.add_argument("--out", default=None, help="optional jsonl of {input_ids, labels}")
    p.set_defaults(func=_sft)

    p = sub.add_parser("preference", help="tokenize preference pairs (prompt/chosen/rejected); report counts",
                       description="{prompt, chosen, rejected} (strings or messages, or two conversations with a "
                                   "shared prompt) -> prompt / chosen / rejected ids. Over-long pairs: the prompt is "
                                   "cut from the left to --max-prompt-length, then responses from the right.")
    p.add_argument("--input", required=True, help="jsonl of preference pairs")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory with a chat template")
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--max-prompt-length", type=int, default=512)
    p.add_argument("--strict", action="store_true", help="fail on the first malformed pair")
    p.add_argument("--out", default=None, help="optional jsonl of {prompt_ids, chosen_ids, rejected_ids}")
    p.set_defaults(func=_preference)

    p = sub.add_parser("inspect", help="print a packed dataset's index")
    p.add_argument("dir")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("toyworld", help="generate the offline toy-world corpus (text, SFT, preferences, tasks)",
                       description="Deterministic synthetic world: stories, encyclopedia, arithmetic, SFT "
                                   "conversations, preference pairs and checkable tasks, from about 1MB up.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--size", default="1MB", help="approximate pretraining text size, e.g. 1MB, 50MB, 1GB")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a different toy world already in --out")
    p.set_defaults(func=_toyworld)
