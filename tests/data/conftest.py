"""Shared fixtures for the data tests: a small corpus and a tiny ByteTokenizer trained on it (vocab 512)."""

from __future__ import annotations

import random

import pytest

WORDS = (
    "the", "cat", "dog", "sat", "on", "a", "mat", "and", "ran", "to", "house", "tree", "river", "small", "big",
    "red", "blue", "green", "happy", "sad", "old", "young", "girl", "boy", "mother", "father", "friend", "saw",
    "found", "gave", "took", "made", "went", "came", "said", "asked", "told", "with", "from", "into", "over",
    "under", "near", "far", "apple", "bread", "ball", "book", "box", "door", "garden", "hill", "lake", "road",
    "school", "town", "village", "market",
)


def make_docs(n: int, seed: int = 0, words: int = 80) -> list[str]:
    """n distinct pseudo-English documents of `words` words with sentence punctuation."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        sent, out = [], []
        for i in range(words):
            sent.append(rng.choice(WORDS))
            if len(sent) >= rng.randint(6, 12) or i == words - 1:
                out.append(" ".join(sent).capitalize() + ".")
                sent = []
        docs.append(" ".join(out))
    return docs


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_docs(200, seed=1)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus):
    from stellarbyte.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(iter(corpus), vocab_size=512, out_dir=out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from stellarbyte.data.tokenizing import load_tokenizer

    return load_tokenizer(tokenizer_dir)
