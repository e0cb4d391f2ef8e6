"""A small packed dataset written straight in stellarbyte.data.pack's on-disk format (index.json + .bin shards)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stellarbyte.data.pack import FORMAT, INDEX_FILE, VERSION


def write_packed(path, n_train: int = 6000, n_val: int = 1200, vocab: int = 128, seed: int = 0) -> str:
    """Token streams with learnable structure: runs of an arithmetic progression mod `vocab` with random starts."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, n in (("train", n_train), ("validation", n_val)):
        starts = rng.integers(0, vocab, size=n // 16 + 1)
        steps = rng.integers(1, 4, size=n // 16 + 1)
        tokens = np.concatenate([(s + k * np.arange(16)) % vocab for s, k in zip(starts, steps)])[:n]
        tokens.astype(np.uint16).tofile(path / f"{split}_00000.bin")
        splits[split] = {"num_tokens": n, "num_docs": n // 16,
                         "shards": [{"file": f"{split}_00000.bin", "num_tokens": n}]}
    index = {"format": FORMAT, "version": VERSION, "dtype": "uint16", "vocab_size": vocab, "eos_token_id": 0,
             "splits": splits, "content_hash": f"test-{seed}-{n_train}"}
    (path / INDEX_FILE).write_text(json.dumps(index))
    return str(path)


@pytest.fixture
def packed(tmp_path):
    return write_packed(tmp_path / "data")
