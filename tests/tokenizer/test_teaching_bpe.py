"""The teaching BPE learns exactly the merges of HF `tokenizers`' BpeTrainer, and round-trips any string."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from stellarbyte.tokenizer.teaching_bpe import (
    BASE_BYTES_IN_ID_ORDER,
    BYTE_TO_CHAR,
    TeachingBPE,
    bytes_to_unicode,
    pre_tokenize,
)

from .conftest import VARIED_TEXTS, make_corpus


def hf_bpe(texts: list[str], vocab_size: int, min_frequency: int = 0) -> Tokenizer:
    """HF's trainer configured like the teaching BPE: ByteLevel pre-tokenizer, no specials, full byte alphabet."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def hf_merges(tok: Tokenizer) -> list[tuple[str, str]]:
    return [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]


def first_divergence(a: list, b: list) -> int | None:
    """Index of the first differing merge (or the shorter length if one is a prefix), None when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def test_byte_map_and_base_order_match_hf():
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert set(mapping.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert mapping[ord(" ")] == "Ġ" and mapping[ord("\n")] == "Ċ" and mapping[ord("a")] == "a"
    vocab = hf_bpe(["x"], 256).get_vocab()  # no merges: the vocabulary is the ordered alphabet
    assert [vocab[BYTE_TO_CHAR[b]] for b in BASE_BYTES_IN_ID_ORDER] == list(range(256))
    assert BASE_BYTES_IN_ID_ORDER[0] == ord("!")  # ordered by printable char, not by byte value


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_pre_tokenize_matches_hf_bytelevel(text):
    hf = [piece for piece, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)]
    ours = ["".join(BYTE_TO_CHAR[b] for b in w.encode("utf-8")) for w in pre_tokenize(text)]
    assert ours == hf
    assert "".join(pre_tokenize(text)) == text


@pytest.mark.parametrize("vocab_size, min_frequency, stops_early", [(300, 0, False), (600, 0, False),
                                                                     (600, 2, False), (1200, 3, True)])
def test_same_merges_as_hf_on_corpus(vocab_size, min_frequency, stops_early):
    texts = make_corpus(400, seed=1) + VARIED_TEXTS
    ours = TeachingBPE.train(texts, vocab_size, min_frequency)
    hf = hf_bpe(texts, vocab_size, min_frequency)
    assert first_divergence(ours.merges_as_strings(), hf_merges(hf)) is None
    assert {ours.token_str(i): i for i in range(len(ours.vocab))} == hf.get_vocab()
    # stops_early: the best pair was seen fewer than min_frequency times before the vocabulary was full
    assert (len(ours.vocab) < vocab_size) == stops_early
    for text in VARIED_TEXTS:  # same vocabulary and merges -> the same ids
        assert ours.encode(text) == hf.encode(text).ids


def test_same_merges_as_hf_on_tie_heavy_random_corpora():
    """Tiny alphabets and few words make many pairs tie on count: the tie-break order is what is tested here."""
    for seed in range(150):
        rng = random.Random(seed)
        words = ["".join(rng.choice("abc") for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(3, 12))]
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 20))) for _ in range(10)]
        vocab_size = 256 + rng.randint(3, 40)
        bpe = TeachingBPE.train(texts, vocab_size)
        assert first_divergence(bpe.merges_as_strings(), hf_merges(hf_bpe(texts, vocab_size))) is None, f"seed {seed}"
        assert len(set(bpe.merge_ids)) == len(bpe.merge_ids)  # no merge recreated an existing token


def test_tie_break_prefers_smallest_id_pair():
    # words "cd" x1, " ab" x3, " cd" x2: pairs (a,b), (c,d) and (Ġ,a) all count 3. Base ids follow the printable
    # char order, so a < c < Ġ (U+0120): (a, b) wins, then (c, d) beats (Ġ, ab), also tied at 3.
    bpe = TeachingBPE.train(["cd ab cd ab cd ab"], 258)
    assert bpe.merges_as_strings() == [("a", "b"), ("c", "d")]
    assert bpe.merges_as_strings() == hf_merges(hf_bpe(["cd ab cd ab cd ab"], 258))


ROUND_TRIP = VARIED_TEXTS + ["\U0010ffff", "\ud7ff\ue000", "ß" * 3, "\u0301\u0301", "a\u0000b", "🏳️‍🌈" * 5]


@pytest.fixture(scope="module")
def trained() -> TeachingBPE:
    return TeachingBPE.train(make_corpus(300, seed=2) + VARIED_TEXTS, 700)


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_fixed(trained, text):
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert all(0 <= i < len(trained.vocab) for i in ids)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_round_trip_any_string(trained, text):
    assert trained.decode(trained.encode(text)) == text


def test_errors():
    with pytest.raises(ValueError, match="at least 256"):
        TeachingBPE.train(["abc"], 100)
    assert TeachingBPE.train([], 300).merges == []  # nothing to learn from: bytes only
