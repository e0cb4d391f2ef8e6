"""Quality heuristics after Gopher (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
Training Gopher", appendix A.1.1 "MassiveWeb quality filter" and table A1 repetition thresholds).

Rules (words = whitespace-split tokens; each threshold is a QualityConfig field):
- length: min_words <= #words <= max_words                                          -> too_short / too_long
- mean word length in [min_mean_word_len, max_mean_word_len]                          -> mean_word_length
- symbol ratio: (#"#" + #"..." + #"…") / #words <= max_symbol_ratio                   -> symbol_ratio
- digit ratio: digits / non-space characters <= max_digit_ratio (ours, not Gopher's)   -> digit_ratio
- >= min_alpha_words of words hold an alphabetic character                            -> alpha_words
- >= min_stop_words distinct English stop words (the, be, to, of, and, that, have, with) -> stop_words
- bullet-started lines <= max_bullet_lines; lines ending in an ellipsis <= max_ellipsis_lines
- repetition: duplicate-line fraction (by count, by characters), duplicate-paragraph fraction (same), the
  character share of the most frequent word 2/3/4-gram, and the share of characters covered by word 5..10-grams
  that occur more than once, each against the table A1 threshold                      -> dup_* / top_ngram_* / ...

Contract: `QualityFilter(text) -> (text, None)` or `(None, reason)`; `quality_signals(text)` returns every measured
number so the thresholds can be tuned from an analysis report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_BULLETS = ("•", "●", "○", "▪", "-", "*", "‣", "–")


@dataclass(slots=True)
class QualityConfig:
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 10.0
    max_symbol_ratio: float = 0.1
    max_digit_ratio: float = 0.3
    min_alpha_words: float = 0.8
    min_stop_words: int = 2
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    max_dup_lines: float = 0.30
    max_dup_line_chars: float = 0.20
    max_dup_paragraphs: float = 0.30
    max_dup_paragraph_chars: float = 0.20
    # most frequent n-gram's character share, n -> threshold (Gopher table A1)
    top_ngram: dict = field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    # share of characters in n-grams seen more than once, n -> threshold (Gopher table A1)
    dup_ngram: dict = field(default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})

    def __post_init__(self) -> None:
        if self.min_words < 0 or self.max_words < self.min_words:
            raise ValueError(f"need 0 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        for name in ("max_symbol_ratio", "max_digit_ratio", "min_alpha_words", "max_bullet_lines",
                     "max_ellipsis_lines", "max_dup_lines", "max_dup_line_chars", "max_dup_paragraphs",
                     "max_dup_paragraph_chars"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"quality threshold {name} must be a fraction in [0, 1], got {getattr(self, name)}")


def _dup_fractions(parts: list[str]) -> tuple[float, float]:
    """(fraction of parts that repeat an earlier part, fraction of characters in those repeats)."""
    parts = [p for p in parts if p.strip()]
    if not parts:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_n = dup_chars = 0
    for p in parts:
        if p in seen:
            dup_n += 1
            dup_chars += len(p)
        seen.add(p)
    return dup_n / len(parts), dup_chars / max(1, sum(map(len, parts)))


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of the most frequent word n-gram times its count, over all word characters (0 if it occurs once)."""
    total = sum(map(len, words))
    if len(words) < n or total == 0:
        return 0.0
    counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    gram, count = counts.most_common(1)[0]
    return 0.0 if count < 2 else min(1.0, count * sum(map(len, gram)) / total)


def dup_ngram_char_fraction(words: list[str], n: int) -> float:
    """Share of word characters covered by n-grams occurring more than once (overlaps counted once)."""
    total = sum(map(len, words))
    if len(words) < n or total == 0:
        return 0.0
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = bytearray(len(words))  # 1 where the word lies inside some repeated n-gram
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i:i + n] = b"\x01" * n
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def quality_signals(text: str, config: QualityConfig | None = None) -> dict[str, float]:
    """Every number the filter looks at, by name."""
    config = config or QualityConfig()
    words = text.split()
    n = len(words)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    non_space = sum(not c.isspace() for c in text)
    sig: dict[str, float] = {
        "words": n,
        "mean_word_len": sum(map(len, words)) / n if n else 0.0,
        "symbol_ratio": (text.count("#") + text.count("...") + text.count("…")) / n if n else 0.0,
        "digit_ratio": sum(c.isdigit() for c in text) / non_space if non_space else 0.0,
        "alpha_words": sum(any(c.isalpha() for c in w) for w in words) / n if n else 0.0,
        "stop_words": len(STOP_WORDS.intersection(w.lower().strip(".,;:!?\"'()") for w in words)),
        "bullet_lines": sum(ln.lstrip().startswith(_BULLETS) for ln in lines) / len(lines) if lines else 0.0,
        "ellipsis_lines": sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / len(lines) if lines else 0.0,
    }
    sig["dup_lines"], sig["dup_line_chars"] = _dup_fractions(text.split("\n"))
    sig["dup_paragraphs"], sig["dup_paragraph_chars"] = _dup_fractions(text.split("\n\n"))
    for k in config.top_ngram:
        sig[f"top_{k}gram"] = top_ngram_char_fraction(words, k)
    for k in config.dup_ngram:
        sig[f"dup_{k}gram"] = dup_ngram_char_fraction(words, k)
    return sig


def quality_reason(text: str, config: QualityConfig) -> str | None:
    """The first rule the text fails, or None if it passes all."""
    c = config
    s = quality_signals(text, c)
    checks = [
        ("too_short", s["words"] < c.min_words), ("too_long", s["words"] > c.max_words),
        ("mean_word_length", not c.min_mean_word_len <= s["mean_word_len"] <= c.max_mean_word_len),
        ("symbol_ratio", s["symbol_ratio"] > c.max_symbol_ratio), ("digit_ratio", s["digit_ratio"] > c.max_digit_ratio),
        ("alpha_words", s["alpha_words"] < c.min_alpha_words), ("stop_words", s["stop_words"] < c.min_stop_words),
        ("bullet_lines", s["bullet_lines"] > c.max_bullet_lines),
        ("ellipsis_lines", s["ellipsis_lines"] > c.max_ellipsis_lines),
        ("dup_lines", s["dup_lines"] > c.max_dup_lines), ("dup_line_chars", s["dup_line_chars"] > c.max_dup_line_chars),
        ("dup_paragraphs", s["dup_paragraphs"] > c.max_dup_paragraphs),
        ("dup_paragraph_chars", s["dup_paragraph_chars"] > c.max_dup_paragraph_chars),
    ]
    checks += [(f"top_{k}gram", s[f"top_{k}gram"] > t) for k, t in c.top_ngram.items()]
    checks += [(f"dup_{k}gram", s[f"dup_{k}gram"] > t) for k, t in c.dup_ngram.items()]
    return next((name for name, failed in checks if failed), None)


@dataclass(slots=True)
class QualityFilter:
    config: QualityConfig = field(default_factory=QualityConfig)
    name: str = "quality"

    def __call__(self, text: str) -> tuple[str | None, str | None]:
        reason = quality_reason(text, self.config)
        return (text, None) if reason is None else (None, reason)
