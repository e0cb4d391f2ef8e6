"""MinHash signatures and LSH banding, in vectorised numpy (written for StellarByte, no datasketch).

References: Broder 1997, "On the resemblance and containment of documents" (min-wise hashing: for a random hash h,
P[min h(A) = min h(B)] = Jaccard(A, B)); Leskovec, Rajaraman, Ullman, "Mining of Massive Datasets" ch. 3.4 (LSH
banding: with b bands of r rows a pair of similarity s becomes a candidate with probability 1 - (1 - s^r)^b);
Dietzfelbinger et al. 1997 multiply-add-shift hashing, h_{a,b}(x) = ((a*x + b) mod 2^64) >> 32 for 32-bit x, the
universal family we use as the "random permutations".

Pipeline for one document:
  text -> lowercase, punctuation dropped, whitespace-split words (or characters, shingle="char")
       -> shingles = overlapping n-grams, each hashed to 32 bits            # (S,) uint64 holding 32-bit values
       -> for each of P hash functions, the minimum over shingles          # (P,) uint32 signature
Many documents are done at once: shingles of a batch are concatenated and `np.minimum.reduceat` takes per-document
minima of the (P, S_total) hash matrix, chunked so it stays under ~64 MB.

Estimated Jaccard(A, B) = mean(sig_A == sig_B). LSH: the signature is cut into `bands` slices of `rows`; two
documents sharing any slice are candidates, and candidates are confirmed by the estimated Jaccard >= threshold.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field

import numpy as np

_MASK32 = np.uint64(0xFFFFFFFF)
_EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a document with no shingles
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Bijective 64-bit mixer (Steele et al. 2014, SplitMix64 finaliser); uint64 arithmetic wraps mod 2^64."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising the weighted areas of false positives (below the
    threshold, under the S-curve 1-(1-s^r)^b) and false negatives (above it, over the curve)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    best, best_cost = (1, num_perm), float("inf")
    lo = np.linspace(0.0, threshold, 201)
    hi = np.linspace(threshold, 1.0, 201)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1.0 - (1.0 - lo**r) ** b, lo)
            fn = np.trapezoid((1.0 - hi**r) ** b, hi)
            cost = fp_weight * fp + fn_weight * fn
            if cost < best_cost:
                best, best_cost = (b, r), cost
    return best


@dataclass(slots=True)
class MinHashConfig:
    """num_perm hash functions; shingles of `ngram` words (or characters); LSH with `bands` x `rows`
    (None = chosen by `optimal_bands` for `threshold`)."""

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    shingle: str = "word"
    bands: int | None = None
    rows: int | None = None
    seed: int = 1
    fn_weight: float = 0.5  # weight of missed duplicates vs false candidates when choosing bands x rows

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"minhash threshold must be in (0, 1), got {self.threshold}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be >= 2, got {self.num_perm}")
        if self.ngram < 1:
            raise ValueError(f"ngram (shingle size) must be >= 1, got {self.ngram}")
        if self.shingle not in ("word", "char"):
            raise ValueError(f"shingle must be 'word' or 'char', got {self.shingle!r}")
        if self.bands is None and self.rows is None:
            if not 0.0 < self.fn_weight < 1.0:
                raise ValueError(f"fn_weight must be in (0, 1), got {self.fn_weight}")
            self.bands, self.rows = optimal_bands(self.threshold, self.num_perm,
                                                  fp_weight=1.0 - self.fn_weight, fn_weight=self.fn_weight)
        elif self.rows is None:
            self.rows = self.num_perm // self.bands
        elif self.bands is None:
            self.bands = self.num_perm // self.rows
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ValueError(f"need bands * rows <= num_perm; got {self.bands} x {self.rows} > {self.num_perm}")


def _normalize(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def shingle_hashes(text: str, ngram: int, shingle: str = "word") -> np.ndarray:
    """32-bit hashes (in uint64) of the distinct-position n-gram shingles of `text`; a text shorter than one
    shingle gives a single shingle of everything it has, an empty text none."""
    norm = _normalize(text)
    if shingle == "word":
        toks = np.fromiter((zlib.crc32(w.encode()) for w in norm.split()), dtype=np.uint64)
    else:
        toks = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if toks.size == 0:
        return toks
    n = min(ngram, toks.size)
    # shingle i = mix(sum_j tok[i+j] * K_j): order-sensitive, one vectorised pass per position in the n-gram
    k = _splitmix64(np.arange(1, n + 1, dtype=np.uint64)) | np.uint64(1)
    acc = np.zeros(toks.size - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc += toks[j:toks.size - n + 1 + j] * k[j]
    return _splitmix64(acc) >> np.uint64(32)


@dataclass
class MinHasher:
    """Signatures for many documents at once."""

    config: MinHashConfig = field(default_factory=MinHashConfig)
    chunk_columns: int = 1 << 16  # shingles per (P, chunk) block: 128 x 65536 x 8 B = 64 MB

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.config.seed)
        p = self.config.num_perm
        self.a = rng.integers(1, 2**63, size=p, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd multipliers
        self.b = rng.integers(0, 2**63, size=p, dtype=np.uint64)
        # per-row multipliers that fold a band's `rows` values into one 64-bit bucket key
        self.band_mult = _splitmix64(rng.integers(1, 2**63, size=self.config.rows, dtype=np.uint64)) | np.uint64(1)

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(N, P) uint32 MinHash signatures; a document with no shingles gets all-0xFFFFFFFF."""
        cfg = self.config
        return self.signatures_of([shingle_hashes(t, cfg.ngram, cfg.shingle) for t in texts])

    def signatures_of(self, shingles: list[np.ndarray]) -> np.ndarray:
        """Signatures from precomputed `shingle_hashes` arrays (one per document)."""
        cfg = self.config
        sizes = np.array([s.size for s in shingles], dtype=np.int64)
        out = np.full((len(shingles), cfg.num_perm), _EMPTY, dtype=np.uint32)
        nonempty = np.flatnonzero(sizes)
        # group consecutive non-empty documents into chunks of about chunk_columns shingles
        start = 0
        while start < nonempty.size:
            stop, cols = start, 0
            while stop < nonempty.size and (cols == 0 or cols + sizes[nonempty[stop]] <= self.chunk_columns):
                cols += sizes[nonempty[stop]]
                stop += 1
            docs = nonempty[start:stop]
            x = np.concatenate([shingles[i] for i in docs])  # (S,)
            offsets = np.concatenate([[0], np.cumsum(sizes[docs])[:-1]])
            out[docs] = self._segment_min(x, offsets).T
            start = stop
        return out

    def _segment_min(self, x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(P, D) per-segment minima of h_p(x) = ((a_p * x + b_p) mod 2^64) >> 32, chunked over columns."""
        if x.size <= self.chunk_columns:
            with np.errstate(over="ignore"):
                h = (self.a[:, None] * x[None, :] + self.b[:, None]) >> np.uint64(32)  # (P, S)
            return np.minimum.reduceat(h, offsets, axis=1).astype(np.uint32)
        # one document larger than a chunk: running minimum over column blocks
        assert offsets.size == 1
        acc = np.full(self.config.num_perm, 0xFFFFFFFF, dtype=np.uint64)
        for s in range(0, x.size, self.chunk_columns):
            with np.errstate(over="ignore"):
                h = (self.a[:, None] * x[None, s:s + self.chunk_columns] + self.b[:, None]) >> np.uint64(32)
            np.minimum(acc, h.min(axis=1), out=acc)
        return acc.astype(np.uint32)[:, None]

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """(N, bands) uint64 bucket keys: band j's `rows` signature values folded into one 64-bit hash."""
        cfg = self.config
        used = sigs[:, : cfg.bands * cfg.rows].astype(np.uint64).reshape(len(sigs), cfg.bands, cfg.rows)
        with np.errstate(over="ignore"):
            keys = (used * self.band_mult[None, None, :]).sum(axis=2, dtype=np.uint64)
        return _splitmix64(keys)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values along the last axis (broadcasts)."""
    return (sig_a == sig_b).mean(axis=-1)


def jaccard(text_a: str, text_b: str, ngram: int = 5, shingle: str = "word") -> float:
    """Exact Jaccard similarity of the two texts' shingle-hash sets (the quantity MinHash estimates)."""
    a = set(shingle_hashes(text_a, ngram, shingle).tolist())
    b = set(shingle_hashes(text_b, ngram, shingle).tolist())
    return len(a & b) / len(a | b) if a or b else 0.0
