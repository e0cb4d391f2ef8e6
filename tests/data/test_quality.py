"""Gopher-style quality rules: each signal computed on hand-checkable texts, each rule fires with its reason."""

from __future__ import annotations

import pytest

from stellarbyte.data.quality import (
    QualityConfig,
    QualityFilter,
    dup_ngram_char_fraction,
    quality_signals,
    top_ngram_char_fraction,
)

from .conftest import make_docs


def test_top_and_dup_ngram_fractions_by_hand():
    words = ["a", "b", "a", "b", "c"]  # bigrams: ab, ba, ab, bc -> "a b" twice, 2 chars each -> 2*2/5
    assert top_ngram_char_fraction(words, 2) == pytest.approx(4 / 5)
    words = ["x", "y", "z", "q", "x", "y", "z"]  # 3-gram "x y z" repeats: covers 6 of 7 chars
    assert dup_ngram_char_fraction(words, 3) == pytest.approx(6 / 7)
    assert dup_ngram_char_fraction(["a", "b", "c", "d"], 2) == 0.0
    assert top_ngram_char_fraction(["a", "b", "c", "d"], 2) == 0.0  # most frequent occurs once: no repetition


def test_signals_by_hand():
    text = "one two\none two\n# hash ...\n- 12 34"
    s = quality_signals(text)
    assert s["words"] == 10  # one two one two # hash ... - 12 34
    assert s["dup_lines"] == pytest.approx(1 / 4) and s["dup_line_chars"] == pytest.approx(7 / (7 + 7 + 10 + 7))
    assert s["symbol_ratio"] == pytest.approx(2 / 10)
    assert s["bullet_lines"] == pytest.approx(1 / 4) and s["ellipsis_lines"] == pytest.approx(1 / 4)
    assert s["digit_ratio"] == pytest.approx(4 / sum(not c.isspace() for c in text))
    assert s["alpha_words"] == pytest.approx(5 / 10)


def test_good_prose_passes_and_each_rule_fires():
    good = make_docs(1, seed=3, words=120)[0] + " It was the best of days, and that was that."
    filt = QualityFilter(QualityConfig(min_words=50))
    assert filt(good) == (good, None)
    cases = {
        "too_short": "The cat sat on the mat with a hat.",
        "digit_ratio": good + " " + " ".join(["1234567890"] * 60),
        "dup_lines": "\n".join([good] + ["the same line of text and the rest"] * 5),
        "stop_words": " ".join(f"word{i}x" for i in range(80)),
        "symbol_ratio": good + " " + " ".join(["#tag"] * 30),
        "bullet_lines": "\n".join(f"- item {w} of the list and more" for w in good.split()[:60]),
    }
    for reason, text in cases.items():
        assert filt(text) == (None, reason), reason


def test_config_validation():
    with pytest.raises(ValueError, match="max_dup_lines"):
        QualityConfig(max_dup_lines=1.5)
    with pytest.raises(ValueError, match="min_words"):
        QualityConfig(min_words=10, max_words=5)
