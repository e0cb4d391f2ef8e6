"""Corpus analysis: length and token-count distributions, most frequent tokens, vocabulary coverage, as a
markdown report with PNG plots.

Contract:
- `analyse_documents(docs, tokenizer)` measures raw documents (characters, words, and tokens if a tokenizer is
  given); `analyse_packed(dir, split)` measures a packed dataset straight from its shards (documents are the
  EOS-separated runs), reading them in 1M-token chunks through np.memmap.
- Both return a plain dict (JSON-able): {"documents", "chars"/"words"/"tokens": summary, "top_tokens",
  "coverage"}; `write_report(result, out_dir)` writes report.md, analysis.json and, when matplotlib is installed,
  lengths.png / tokens.png / rank_frequency.png (without it the report says so instead of failing).
- Summaries: count, mean, min, p50, p90, p99, max (numpy "linear" percentiles).
- Coverage: fraction of vocabulary ids seen at least once, and the share of all tokens taken by the most frequent
  1% and 10% of ids (how peaked the distribution is; a tokenizer trained on other text shows low coverage).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from stellarbyte.data.records import Document, atomic_write, write_json
from stellarbyte.data.tokenizing import TokenizerLike


def summarize(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"count": int(v.size), "total": float(v.sum()), "mean": float(v.mean()), "min": float(v.min()),
            "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(v.max())}


def _token_section(counts: np.ndarray, tokenizer: TokenizerLike | None, top_k: int) -> dict:
    """Top tokens and coverage from a (vocab,) int64 histogram of ids."""
    total = int(counts.sum())
    order = np.argsort(-counts, kind="stable")
    top = []
    for i in order[:top_k]:
        if counts[i] == 0:
            break
        text = tokenizer.decode([int(i)]) if tokenizer is not None else ""
        top.append({"id": int(i), "token": text, "count": int(counts[i]), "share": float(counts[i] / total)})
    sorted_counts = counts[order]
    vocab = counts.size

    def head_share(frac: float) -> float:
        return float(sorted_counts[: max(1, int(round(vocab * frac)))].sum() / total) if total else 0.0

    coverage = {"vocab_size": vocab, "ids_used": int((counts > 0).sum()), "fraction_used": float((counts > 0).mean()),
                "top1pct_share": head_share(0.01), "top10pct_share": head_share(0.10), "total_tokens": total}
    return {"top_tokens": top, "coverage": coverage, "rank_counts": sorted_counts[sorted_counts > 0].tolist()}


def analyse_documents(docs: Iterable[Document | str], tokenizer: TokenizerLike | None = None, top_k: int = 30,
                      num_workers: int = 1, batch_size: int = 1024) -> dict:
    chars, words, ntok = [], [], []
    counts = np.zeros(int(tokenizer.vocab_size), dtype=np.int64) if tokenizer is not None else None
    buf: list[str] = []

    def flush() -> None:
        for t in buf:
            chars.append(len(t))
            words.append(len(t.split()))
        if tokenizer is not None:
            for ids in tokenizer.encode_batch(buf, num_workers=num_workers):
                ntok.append(len(ids))
                counts[:] += np.bincount(np.asarray(ids, dtype=np.int64), minlength=counts.size)
        buf.clear()

    for d in docs:
        buf.append(d.text if isinstance(d, Document) else d)
        if len(buf) == batch_size:
            flush()
    flush()
    result = {"source": "documents", "documents": len(chars), "chars": summarize(np.array(chars)),
              "words": summarize(np.array(words)), "_chars": chars, "_tokens": ntok}
    if tokenizer is not None:
        result["tokens"] = summarize(np.array(ntok))
        result["chars_per_token"] = float(sum(chars) / max(1, sum(ntok)))
        result |= _token_section(counts, tokenizer, top_k)
    return result


def analyse_packed(path: str | os.PathLike, split: str = "train", tokenizer: TokenizerLike | None = None,
                   top_k: int = 30, chunk: int = 1 << 20) -> dict:
    from stellarbyte.data.loader import PackedTokens

    pt = PackedTokens(path, split)
    eos = pt.index["eos_token_id"]
    counts = np.zeros(int(pt.index["vocab_size"]), dtype=np.int64)
    eos_pos: list[np.ndarray] = []
    for start in range(0, len(pt), chunk):
        part = pt.read(start, min(chunk, len(pt) - start))
        counts += np.bincount(part, minlength=counts.size)
        eos_pos.append(np.flatnonzero(part == eos) + start)
    ends = np.concatenate(eos_pos) if eos_pos else np.empty(0, dtype=np.int64)
    lengths = np.diff(np.concatenate([[-1], ends])) if ends.size else np.array([len(pt)])  # tokens incl. EOS
    result = {"source": f"{path} [{split}]", "documents": int(lengths.size), "tokens": summarize(lengths),
              "_tokens": lengths.tolist(), "_chars": []}
    return result | _token_section(counts, tokenizer, top_k)


def _table(summary: dict) -> str:
    keys = ["count", "mean", "min", "p50", "p90", "p99", "max"]
    return "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n| " + " | ".join(
        f"{summary.get(k, 0):,.1f}" if k != "count" else f"{summary.get(k, 0):,}" for k in keys) + " |\n"


def _plots(result: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    made = []
    for key, name, xlabel in (("_chars", "lengths.png", "characters per document"),
                              ("_tokens", "tokens.png", "tokens per document")):
        if result.get(key):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.hist(result[key], bins=50)
            ax.set(xlabel=xlabel, ylabel="documents", title=xlabel)
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            made.append(name)
    if result.get("rank_counts"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.loglog(np.arange(1, len(result["rank_counts"]) + 1), result["rank_counts"])
        ax.set(xlabel="rank", ylabel="count", title="token rank-frequency (Zipf)")
        fig.tight_layout()
        fig.savefig(out / "rank_frequency.png", dpi=100)
        plt.close(fig)
        made.append("rank_frequency.png")
    return made


def write_report(result: dict, out_dir: str | os.PathLike) -> Path:
    """report.md (+ analysis.json, + PNGs when matplotlib is available) under out_dir; returns the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        plots, note = _plots(result, out), ""
    except ImportError:
        plots, note = [], "_Plots skipped: matplotlib is not installed (pip install 'stellarbyte[data]')._\n"
    lines = [f"# Data analysis: {result['source']}\n", f"Documents: {result['documents']:,}\n"]
    for key, title in (("chars", "Characters per document"), ("words", "Words per document"),
                       ("tokens", "Tokens per document")):
        if key in result:
            lines += [f"\n## {title}\n\n", _table(result[key])]
    if "chars_per_token" in result:
        lines.append(f"\nCharacters per token: {result['chars_per_token']:.3f}\n")
    if "coverage" in result:
        c = result["coverage"]
        lines += ["\n## Vocabulary coverage\n\n",
                  f"- ids used: {c['ids_used']:,} of {c['vocab_size']:,} ({c['fraction_used']:.1%})\n",
                  f"- share of tokens from the top 1% of ids: {c['top1pct_share']:.1%}; top 10%: "
                  f"{c['top10pct_share']:.1%}\n", f"- total tokens: {c['total_tokens']:,}\n",
                  "\n## Most frequent tokens\n\n| rank | id | token | count | share |\n|---|---|---|---|---|\n"]
        for r, t in enumerate(result["top_tokens"], 1):
            shown = repr(t["token"])[1:-1].replace("|", "\\|")
            lines.append(f"| {r} | {t['id']} | `{shown}` | {t['count']:,} | {t['share']:.2%} |\n")
    lines.append("\n## Plots\n\n")
    lines += [f"![{p}]({p})\n" for p in plots]
    lines.append(note)
    with atomic_write(out / "report.md") as f:
        f.write("".join(lines))
    write_json(out / "analysis.json", {k: v for k, v in result.items() if not k.startswith("_")
                                       and k != "rank_counts"})
    return out / "report.md"
