"""`stellarbyte bench dedup`: precision and recall of the MinHash-LSH near-duplicate detector on planted duplicates,
plus signature throughput and (optionally) packing throughput in tokens/s.

Test set (seeded): `--originals` distinct documents of 100-300 words drawn from a Zipf(1.1) distribution over a
5,000-word vocabulary; for `--copies` of them, one near copy per edit rate in `--edit-rates`, where each word is
independently substituted, deleted or followed by an inserted word with total probability = the edit rate.

Ground truth for a threshold t: the pairs inside one planted family (an original and all its copies, which are
near copies of each other too) whose exact shingle Jaccard >= t. Pairs of independent random documents share
essentially no 5-word shingles; any the detector reports ("other") count as false positives, and their largest
exact Jaccard is printed, so the assumption is checked, not trusted.
precision = detected pairs that are true / detected pairs; recall = true pairs detected / true pairs;
"recall+.05" = recall over the clear duplicates, J >= t + 0.05 (the detector confirms a candidate with the
*estimated* Jaccard, whose standard error at 128 permutations is about 0.04, so pairs right at the threshold are a
coin flip by design).
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from stellarbyte.data.dedup import find_duplicate_pairs
from stellarbyte.data.minhash import MinHashConfig, jaccard


def add_arguments(parser) -> None:
    parser.add_argument("--originals", type=int, default=3000, help="distinct documents")
    parser.add_argument("--copies", type=int, default=300, help="originals that get near copies")
    parser.add_argument("--edit-rates", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9])
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fn-weight", type=float, default=0.5,
                        help="LSH: weight of missed duplicates when choosing bands x rows (higher = more recall)")
    parser.add_argument("--verify", nargs="+", default=["estimate", "exact"], choices=["estimate", "exact"],
                        help="confirm LSH candidates by estimated or exact Jaccard (one table row per mode)")
    parser.add_argument("--pack", action="store_true", help="also measure packing throughput (trains a tokenizer)")
    parser.add_argument("--csv", default="bench_dedup.csv", help="where to write the table")


def make_planted_set(originals: int, copies: int, edit_rates: list[float], seed: int = 0):
    """(texts, planted) where planted is a list of (original index, copy index, edit rate)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    p = 1.0 / np.arange(1, 5001) ** 1.1
    p /= p.sum()
    texts = [" ".join(vocab[rng.choice(5000, size=rng.integers(100, 301), p=p)]) for _ in range(originals)]
    planted = []
    for o in rng.choice(originals, size=copies, replace=False):
        words = texts[o].split()
        for rate in edit_rates:
            out = []
            for w in words:
                r = rng.random()
                if r < rate / 3:  # substitute
                    out.append(str(vocab[rng.choice(5000, p=p)]))
                elif r < 2 * rate / 3:  # delete
                    continue
                elif r < rate:  # keep and insert after
                    out += [w, str(vocab[rng.choice(5000, p=p)])]
                else:
                    out.append(w)
            planted.append((int(o), len(texts), rate))
            texts.append(" ".join(out))
    return texts, planted


def run(args) -> int:
    t0 = time.perf_counter()
    texts, planted = make_planted_set(args.originals, args.copies, args.edit_rates, args.seed)
    families: dict[int, list[int]] = {}
    for o, c, _ in planted:
        families.setdefault(o, [o]).append(c)
    true_j = {(a, b): jaccard(texts[a], texts[b], args.ngram)
              for fam in families.values() for i, a in enumerate(fam) for b in fam[i + 1:]}
    print(f"{len(texts):,} documents ({args.originals:,} distinct + {len(planted):,} planted near copies), "
          f"built in {time.perf_counter() - t0:.1f}s")
    print("\nmean exact Jaccard of planted pairs by edit rate:")
    for rate in args.edit_rates:
        js = [true_j[(o, c)] for o, c, r in planted if r == rate]
        print(f"  edit {rate:>5.2f}: J = {np.mean(js):.3f} (min {np.min(js):.3f}, max {np.max(js):.3f})")

    rows = []
    header = (f"\n{'threshold':>9} {'verify':>8} {'bands x rows':>12} {'true':>6} {'found':>6} {'other':>6} "
              f"{'precision':>9} {'recall':>7} {'recall+.05':>10} {'docs/s':>8}  recall of planted copies by edit rate")
    print(header)
    for t, verify in ((t, v) for t in args.thresholds for v in args.verify):
        cfg = MinHashConfig(threshold=t, num_perm=args.num_perm, ngram=args.ngram, seed=args.seed + 1,
                            fn_weight=args.fn_weight)
        s = time.perf_counter()
        pairs, _ = find_duplicate_pairs(texts, cfg, verify=verify)
        dt = time.perf_counter() - s
        found = {tuple(x) for x in pairs.tolist()}
        truth = {k for k, j in true_j.items() if j >= t}
        other = [p for p in found if p not in true_j]
        tp = len(found & truth)
        precision = tp / len(found) if found else 1.0
        recall = tp / len(truth) if truth else 1.0
        clear = {k for k, j in true_j.items() if j >= t + 0.05}
        recall_clear = len(found & clear) / len(clear) if clear else 1.0
        by_rate = {r: np.mean([(o, c) in found for o, c, rr in planted if rr == r]) for r in args.edit_rates}
        other_j = max((jaccard(texts[a], texts[b], args.ngram) for a, b in other[:50]), default=0.0)
        print(f"{t:>9.2f} {verify:>8} {f'{cfg.bands} x {cfg.rows}':>12} {len(truth):>6} {len(found):>6} "
              f"{len(other):>6} {precision:>9.3f} {recall:>7.3f} {recall_clear:>10.3f} {len(texts) / dt:>8,.0f}  "
              + " ".join(f"{r:.2f}:{v:.2f}" for r, v in by_rate.items())
              + (f"  (max J of other pairs {other_j:.2f})" if other else ""))
        rows.append({"threshold": t, "verify": verify, "bands": cfg.bands, "rows": cfg.rows,
                     "num_perm": cfg.num_perm,
                     "true_pairs": len(truth), "found_pairs": len(found), "unplanted_found": len(other),
                     "precision": precision, "recall": recall, "recall_clear": recall_clear,
                     "docs_per_s": len(texts) / dt,
                     **{f"recall_edit_{r}": v for r, v in by_rate.items()}})

    if args.pack:
        rows_pack = _pack_throughput(texts)
        for r in rows_pack:
            print(f"pack, {r['label']}: {r['tokens']:,} tokens in {r['seconds']:.2f}s = "
                  f"{r['tokens_per_s']:,.0f} tokens/s")
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {args.csv}")
    return 0


def _pack_throughput(texts: list[str]) -> list[dict]:
    """tokens/s of pack_documents: one process (tokenizers' Rust thread pool on, then off) and 2 worker processes."""
    import os

    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.tokenizer import train_tokenizer

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_tokenizer(iter(texts[:2000]), vocab_size=4096, out_dir=Path(tmp) / "tok")
        docs = texts * 4
        saved = os.environ.get("TOKENIZERS_PARALLELISM")
        for k, (workers, threads) in enumerate([(1, "true"), (1, "false"), (2, "false")]):
            os.environ["TOKENIZERS_PARALLELISM"] = threads
            try:
                s = time.perf_counter()
                index = pack_documents(docs, tok, Path(tmp) / f"p{k}", PackConfig(num_workers=workers))
                dt = time.perf_counter() - s
            finally:
                if saved is None:
                    os.environ.pop("TOKENIZERS_PARALLELISM", None)
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = saved
            n = sum(sp["num_tokens"] for sp in index["splits"].values())
            label = f"{workers} process(es), tokenizer threads {'on' if threads == 'true' else 'off'}"
            out.append({"workers": workers, "label": label, "tokens": n, "seconds": dt, "tokens_per_s": n / dt})
    return out
