"""Packing (dtype, EOS, split, shards, index, atomicity, re-runs) and the memmap loader (windows, ranks, resume)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from stellarbyte.data import pack as pack_mod
from stellarbyte.data.loader import PackedTokens, TokenBlockLoader
from stellarbyte.data.pack import PackConfig, is_validation, pack_documents, read_index
from stellarbyte.data.tokenizing import token_dtype, tokenizer_fingerprint


def _stream(tok, docs, val_fraction, seed=0):
    """Reference token streams built directly from tok.encode: doc ids + EOS, split by the hash rule."""
    out = {"train": [], "validation": []}
    for d in docs:
        ids = tok.encode(d)
        if ids:
            out["validation" if is_validation(d, val_fraction, seed) else "train"] += ids + [tok.eos_token_id]
    return out


def test_token_dtype():
    assert token_dtype(512) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    with pytest.raises(ValueError):
        token_dtype(0)


def test_pack_matches_reference_stream_and_shards(tmp_path, tokenizer, corpus):
    docs = corpus + [""]  # an empty document is skipped and counted
    cfg = PackConfig(val_fraction=0.1, shard_tokens=1000, chunk_docs=16)
    index = pack_documents(docs, tokenizer, tmp_path / "ds", cfg)
    ref = _stream(tokenizer, docs, 0.1)
    assert index["dtype"] == "uint16" and index["eos_token_id"] == tokenizer.eos_token_id
    assert index["tokenizer_hash"] == tokenizer_fingerprint(tokenizer)
    assert index["skipped"] == {"empty_after_tokenize": 1}
    for split in ("train", "validation"):
        info = index["splits"][split]
        got = np.concatenate([np.fromfile(tmp_path / "ds" / s["file"], dtype=np.uint16) for s in info["shards"]])
        assert got.tolist() == ref[split] and info["num_tokens"] == len(ref[split])
        assert all(s["num_tokens"] == 1000 for s in info["shards"][:-1]) and info["shards"][-1]["num_tokens"] <= 1000
    n_val = sum(is_validation(d, 0.1, 0) for d in corpus)
    assert index["splits"]["validation"]["num_docs"] == n_val and 5 <= n_val <= 40  # ~10% of 200
    assert index["splits"]["train"]["num_docs"] == 200 - n_val
    assert sorted(os.listdir(tmp_path / "ds")) == sorted(
        ["index.json"] + [s["file"] for sp in index["splits"].values() for s in sp["shards"]])  # no temp files left


def test_pack_multiprocess_is_byte_identical(tmp_path, tokenizer, corpus):
    a = pack_documents(corpus, tokenizer, tmp_path / "a", PackConfig(val_fraction=0.05, chunk_docs=8))
    b = pack_documents(corpus, tokenizer, tmp_path / "b", PackConfig(val_fraction=0.05, chunk_docs=8, num_workers=2))
    assert a["content_hash"] == b["content_hash"]
    assert (tmp_path / "a/train_00000.bin").read_bytes() == (tmp_path / "b/train_00000.bin").read_bytes()


def test_rerun_same_is_noop_different_is_error(tmp_path, tokenizer, corpus):
    out = tmp_path / "ds"
    first = pack_documents(corpus, tokenizer, out, PackConfig(val_fraction=0.1))
    mtime = (out / "index.json").stat().st_mtime_ns
    assert pack_documents(corpus, tokenizer, out, PackConfig(val_fraction=0.1)) == first
    assert (out / "index.json").stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match="different dataset \\(val_fraction"):
        pack_documents(corpus, tokenizer, out, PackConfig(val_fraction=0.2))
    with pytest.raises(FileExistsError, match="different dataset \\(content hash"):
        pack_documents(corpus[:50], tokenizer, out, PackConfig(val_fraction=0.1))
    assert read_index(out) == first  # the failed attempts changed nothing
    new = pack_documents(corpus[:50], tokenizer, out, PackConfig(val_fraction=0.1, overwrite=True))
    assert new["splits"]["train"]["num_docs"] + new["splits"]["validation"]["num_docs"] == 50
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a packed dataset \\(notes.txt\\)"):
        pack_documents(corpus, tokenizer, tmp_path / "other")


def test_crash_midway_leaves_no_index_and_no_temp(tmp_path, tokenizer, corpus, monkeypatch):
    def docs():
        yield from corpus[:100]
        raise RuntimeError("disk on fire")

    for workers in (1, 2):  # the error reaches the caller from the pool's feeder too
        with pytest.raises(RuntimeError, match="disk on fire"):
            pack_documents(docs(), tokenizer, tmp_path / "ds", PackConfig(shard_tokens=500, chunk_docs=10,
                                                                           num_workers=workers))
        assert os.listdir(tmp_path / "ds") == []
    with pytest.raises(FileNotFoundError, match="no index.json"):
        TokenBlockLoader(tmp_path / "ds", 2, 8)
    # a crash between renaming shards and writing the index: shards exist, the dataset is still not "complete"
    monkeypatch.setattr(pack_mod, "write_json", lambda *a: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        pack_documents(corpus, tokenizer, tmp_path / "ds2", PackConfig())
    assert not (tmp_path / "ds2/index.json").exists()
    monkeypatch.undo()
    index = pack_documents(corpus, tokenizer, tmp_path / "ds2", PackConfig())  # a re-run cleans up and completes
    assert read_index(tmp_path / "ds2") == index


def test_pack_rejects_ids_beyond_dtype(tmp_path, tokenizer):
    class Liar:  # claims a small vocab but emits a big id
        vocab_size, eos_token_id, pad_token_id, bos_token_id = 100, 2, 0, 1

        def encode(self, text, add_special_tokens=False):
            return [70000]

    with pytest.raises(ValueError, match=r"token id 70000 is outside the vocabulary \[0, 100\) \(stored as uint16\)"):
        pack_documents(["x"], Liar(), tmp_path / "ds")
    assert os.listdir(tmp_path / "ds") == []


@pytest.fixture(scope="module")
def packed(tmp_path_factory, tokenizer, corpus):
    out = tmp_path_factory.mktemp("packed")
    pack_documents(corpus, tokenizer, out, PackConfig(val_fraction=0.1, shard_tokens=777))  # odd size: stitching
    return out


def test_packed_tokens_read_across_shards(packed):
    pt = PackedTokens(packed, "train")
    full = np.concatenate([np.fromfile(f, dtype=np.uint16) for f in pt.files]).astype(np.int64)
    assert len(pt) == full.size and len(pt.files) > 3
    for start, length in [(0, 10), (770, 20), (777 * 2 - 1, 800), (full.size - 5, 5)]:
        assert np.array_equal(pt.read(start, length), full[start:start + length])
    with pytest.raises(IndexError):
        pt.read(full.size - 2, 5)
    assert isinstance(pt._map(0), np.memmap)  # memory-mapped, not loaded


def test_loader_windows_are_shifted_stream_slices(packed):
    pt = PackedTokens(packed, "train")
    full = torch.from_numpy(pt.read(0, len(pt)))
    loader = TokenBlockLoader(packed, batch_size=4, seq_len=16, shuffle=False, num_epochs=1)
    batches = list(loader)
    assert len(batches) == len(loader) == ((len(pt) - 1) // 16) // 4
    x, y = batches[1]
    assert x.shape == (4, 16) and x.dtype == torch.long
    for row in range(4):
        s = (4 + row) * 16
        assert torch.equal(x[row], full[s:s + 16]) and torch.equal(y[row], full[s + 1:s + 17])


def test_ranks_are_disjoint_and_cover_the_epoch(packed):
    W, B, T = 3, 2, 8
    ids = []
    for r in range(W):
        lo = TokenBlockLoader(packed, B, T, rank=r, world_size=W, seed=5)
        ids.append(np.concatenate([lo.sample_ids(0, b) for b in range(len(lo))]))
    lens = {len(i) for i in ids}
    assert len(lens) == 1  # same number of samples per rank
    allids = np.concatenate(ids)
    assert len(np.unique(allids)) == allids.size  # disjoint
    n = TokenBlockLoader(packed, B, T).num_samples
    assert allids.size >= n - W * B - W  # only the tail that cannot fill a batch on every rank is dropped
    with pytest.raises(ValueError, match="rank"):
        TokenBlockLoader(packed, B, T, rank=3, world_size=3)


def test_shuffle_is_seeded_and_changes_per_epoch(packed):
    a = TokenBlockLoader(packed, 2, 8, seed=1)
    b = TokenBlockLoader(packed, 2, 8, seed=1)
    c = TokenBlockLoader(packed, 2, 8, seed=2)
    assert np.array_equal(a.sample_ids(0, 0), b.sample_ids(0, 0))
    assert not np.array_equal(a._rank_order(0), c._rank_order(0))
    assert not np.array_equal(a._rank_order(0), a._rank_order(1))
    assert sorted(a._rank_order(1)) == list(range(a.num_samples))


def test_resume_from_state_dict_equals_uninterrupted(packed):
    ref = TokenBlockLoader(packed, 3, 12, seed=7, rank=1, world_size=2)
    k = len(ref) + 2  # crosses an epoch boundary
    reference = [next(ref) for _ in range(k + 5)]
    lo = TokenBlockLoader(packed, 3, 12, seed=7, rank=1, world_size=2)
    for _ in range(k):
        next(lo)
    state = json.loads(json.dumps(lo.state_dict()))  # survives a JSON checkpoint
    assert (state["epoch"], state["batch"]) == (1, 2)
    resumed = TokenBlockLoader(packed, 3, 12, seed=7, rank=1, world_size=2)
    resumed.load_state_dict(state)
    for want, got in zip(reference[k:], [next(resumed) for _ in range(5)]):
        assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
    with pytest.raises(ValueError, match="seq_len=12 but this loader has 16"):
        TokenBlockLoader(packed, 3, 16, seed=7, rank=1, world_size=2).load_state_dict(state)


def test_loader_errors(packed, tmp_path):
    with pytest.raises(ValueError, match="too few for one batch"):
        TokenBlockLoader(packed, batch_size=10_000, seq_len=64)
    with pytest.raises(ValueError, match="no split 'test'"):
        TokenBlockLoader(packed, 2, 8, split="test")
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in packed.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "train_00001.bin").write_bytes(b"\x00\x01")  # truncated shard
    with pytest.raises(ValueError, match="damaged"):
        TokenBlockLoader(bad, 2, 8)


class _CountingTokenizer:
    """A fast fake tokenizer (ids = word lengths mod 1000) for size tests; the real one is tested above."""

    vocab_size, eos_token_id, pad_token_id, bos_token_id = 1000, 0, 1, 2

    def encode(self, text, add_special_tokens=False):
        return [3 + len(w) % 997 for w in text.split()]


def test_loader_reads_only_the_batch_not_the_shard(tmp_path):
    import tracemalloc

    docs = [" ".join(["abc defg hi"] * 5000)] * 200  # 3M tokens in one shard (6 MB as uint16)
    index = pack_documents(docs, _CountingTokenizer(), tmp_path / "big", PackConfig(val_fraction=0.0))
    assert index["splits"]["train"]["num_tokens"] == 200 * 15001
    loader = TokenBlockLoader(tmp_path / "big", batch_size=4, seq_len=128, seed=0)
    next(loader)  # open the memmap
    tracemalloc.start()
    for _ in range(10):
        next(loader)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000  # a batch is 4 x 129 int64 = 4 KB (+ tensors); the shard is 6 MB
