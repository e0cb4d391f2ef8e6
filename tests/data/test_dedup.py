"""MinHash estimates Jaccard (Broder 1997); LSH candidate rate follows 1-(1-s^r)^b; dedup removes planted copies."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stellarbyte.data.dedup import ExactDedup, NearDedup, candidate_pairs, find_duplicate_pairs
from stellarbyte.data.minhash import MinHashConfig, MinHasher, estimated_jaccard, jaccard, optimal_bands
from stellarbyte.data.pipeline import apply_step
from stellarbyte.data.records import Document, Stats

from .conftest import make_docs


def _edit(text: str, rate: float, rng: random.Random) -> str:
    words = text.split()
    return " ".join(rng.choice(["zebra", "quartz", "violin", "magnet"]) if rng.random() < rate else w for w in words)


def _edit_n(text: str, n: int, rng: random.Random) -> str:
    """Exactly n word substitutions: with 5-word shingles, J >= (S - 5n) / (S + 5n) for S shingles."""
    words = text.split()
    for i in rng.sample(range(len(words)), n):
        words[i] = "zebra"
    return " ".join(words)


def test_signature_estimates_exact_jaccard():
    rng = random.Random(0)
    base = make_docs(40, seed=5, words=150)
    pairs = [(b, _edit(b, rate, rng)) for b in base for rate in (0.02, 0.1)]
    hasher = MinHasher(MinHashConfig(num_perm=256, ngram=3))
    sigs = hasher.signatures([t for p in pairs for t in p]).reshape(len(pairs), 2, 256)
    est = estimated_jaccard(sigs[:, 0], sigs[:, 1])
    exact = np.array([jaccard(a, b, ngram=3) for a, b in pairs])
    # standard error of a 256-sample estimate is <= sqrt(0.25/256) = 0.031
    assert np.abs(est - exact).mean() < 0.03 and np.abs(est - exact).max() < 0.12
    assert abs((est - exact).mean()) < 0.01  # unbiased
    assert estimated_jaccard(sigs[0, 0], sigs[0, 0]) == 1.0


def test_signatures_are_batch_independent_and_handle_empty():
    texts = make_docs(7, seed=2) + ["", "!!!", "one"]
    h = MinHasher(MinHashConfig(num_perm=64), chunk_columns=50)  # tiny chunks: exercises chunking + big-doc path
    batch = h.signatures(texts)
    single = np.concatenate([h.signatures([t]) for t in texts])
    assert np.array_equal(batch, single) and batch.dtype == np.uint32 and batch.shape == (10, 64)
    assert (batch[7] == 0xFFFFFFFF).all() and (batch[8] == 0xFFFFFFFF).all() and not (batch[9] == 0xFFFFFFFF).all()


def test_lsh_candidate_rate_matches_s_curve():
    cfg = MinHashConfig(num_perm=32, bands=8, rows=4, ngram=1, threshold=0.5)
    h = MinHasher(cfg)
    texts = []
    for k in range(400):  # A = words 0..99, B = words 50..149 -> Jaccard 50/150 = 1/3
        texts += [" ".join(f"p{k}w{i}" for i in range(100)), " ".join(f"p{k}w{i}" for i in range(50, 150))]
    keys = h.band_keys(h.signatures(texts)).reshape(400, 2, 8)
    rate = (keys[:, 0] == keys[:, 1]).any(axis=1).mean()
    s = 1 / 3
    assert rate == pytest.approx(1 - (1 - s**4) ** 8, abs=0.07)  # 0.218; std of a 400-pair mean is 0.021


def test_optimal_bands_put_the_s_curve_near_the_threshold():
    for t in (0.5, 0.7, 0.8, 0.9):
        b, r = optimal_bands(t, 128)
        assert b * r <= 128 and abs((1 / b) ** (1 / r) - t) < 0.1
    assert MinHashConfig(threshold=0.8).bands == optimal_bands(0.8, 128)[0]
    with pytest.raises(ValueError, match="bands \\* rows"):
        MinHashConfig(num_perm=16, bands=5, rows=4)


def test_exact_dedup_normalizes_whitespace_and_case():
    d = ExactDedup()
    assert d("Hello  World") == ("Hello  World", None)
    assert d("hello world\n") == (None, "exact_duplicate")
    assert ExactDedup(normalize=False)("Hello World")[1] is None


def test_near_dedup_removes_planted_copies_only():
    rng = random.Random(1)
    originals = make_docs(60, seed=11, words=120)
    docs = [Document(t, f"o{i}") for i, t in enumerate(originals)]
    docs += [Document(_edit_n(t, 1, rng), f"n{i}") for i, t in enumerate(originals[:20])]  # J >= 0.91
    docs += [Document(_edit(t, 0.6, rng), f"far{i}") for i, t in enumerate(originals[20:30])]  # J ~ 0.01: distinct
    rng.shuffle(docs)
    outs = []
    for batch_size, verify in ((1, "estimate"), (7, "estimate"), (1024, "estimate"), (7, "exact")):
        stats = Stats("near")
        step = NearDedup(MinHashConfig(threshold=0.7), verify=verify)
        outs.append([d.id for d in apply_step(step, docs, stats, batch_size)])
    assert outs[0] == outs[1] == outs[2] == outs[3]
    assert stats.removed == 20 and stats.reasons == {"near_duplicate": 20}
    kept_ids = set(outs[0])
    # of each (original, copy) pair exactly one survives; every far edit survives
    for i in range(20):
        assert (f"o{i}" in kept_ids) != (f"n{i}" in kept_ids)
    assert all(f"far{i}" in kept_ids for i in range(10))


def test_find_duplicate_pairs_matches_brute_force():
    rng = random.Random(2)
    base = make_docs(30, seed=4, words=100)
    texts = base + [_edit(t, 0.01, rng) for t in base[:10]] + [base[3]]
    cfg = MinHashConfig(threshold=0.8, num_perm=128)
    pairs, est = find_duplicate_pairs(texts, cfg)
    truth = {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts)) if jaccard(texts[i], texts[j]) >= 0.9}
    found = {tuple(p) for p in pairs.tolist()}
    assert truth <= found and (3, 40) in found  # every clear duplicate (J >= 0.9) is found, incl. the exact copy
    assert all(jaccard(texts[i], texts[j]) > 0.6 for i, j in found) and (est >= 0.8).all()


def test_candidate_pairs_small():
    keys = np.array([[1, 9], [2, 9], [1, 8], [3, 7]], dtype=np.uint64)
    assert candidate_pairs(keys).tolist() == [[0, 1], [0, 2]]
    big = np.zeros((1000, 1), dtype=np.uint64)  # one bucket of 1000: a star of 999 pairs, not 499,500
    assert candidate_pairs(big, max_clique=256).tolist() == [[0, j] for j in range(1, 1000)]


def test_exact_verification_and_recall_weight():
    rng = random.Random(3)
    base = make_docs(30, seed=8, words=100)
    texts = base + [_edit(t, 0.03, rng) for t in base[:15]]
    for fn_weight in (0.5, 0.9):
        cfg = MinHashConfig(threshold=0.6, fn_weight=fn_weight)
        pairs, js = find_duplicate_pairs(texts, cfg, verify="exact")
        assert len(pairs) >= 10 and (js >= 0.6).all()
        assert all(jaccard(texts[i], texts[j]) == pytest.approx(jv) for (i, j), jv in zip(pairs.tolist(), js))
    assert MinHashConfig(threshold=0.8, fn_weight=0.9).rows < MinHashConfig(threshold=0.8).rows  # wider net
    with pytest.raises(ValueError, match="verify"):
        find_duplicate_pairs(texts, verify="maybe")


def test_near_dedup_exact_verify_never_removes_below_threshold():
    rng = random.Random(4)
    base = make_docs(40, seed=9, words=150)
    copies = [_edit_n(t, 3, rng) for t in base]  # 3 edits: J around 0.8
    texts = [t for pair in zip(base, copies) for t in pair]
    js = [jaccard(a, b) for a, b in zip(base, copies)]
    for t in (0.75, 0.8, 0.85):
        res = NearDedup(MinHashConfig(threshold=t), verify="exact").batch(texts)
        removed = [res[2 * i + 1][0] is None for i in range(40)]
        assert all(j >= t for j, r in zip(js, removed) if r)  # every removal is a true duplicate at t
        assert all(res[2 * i][0] is not None for i in range(40))  # originals always kept
    with pytest.raises(ValueError, match="verify"):
        NearDedup(verify="nah")
