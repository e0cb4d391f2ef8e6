"""Shared fixtures: a small deterministic corpus and tokenizers trained on it (no network, no shared data)."""

from __future__ import annotations

import random

import pytest

from stellarbyte.tokenizer import train_tokenizer

_WORDS = ("the cat dog sat on a mat and ran to big small red blue house tree bird sang song happy sad "
         "Lily Tom went park played ball with her his friend mom dad said hello goodbye because it was "
         "sunny day night moon star 12 345 2024 3.14 don't can't I'm we'll they've")
WORDS = _WORDS.split(" ")

# varied text for parity and round-trip checks: scripts, emoji (incl. ZWJ sequences), combining marks,
# control characters, whitespace runs, special-token strings inside text, code
VARIED_TEXTS = [
    "",
    " ",
    "Hello, world!",
    "  leading spaces and trailing   ",
    "tabs\tand\nnewlines\r\n\n\nend",
    "Ünïcödé façade naïve résumé",
    "漢字かな交じり文 한국어 텍스트 中文",
    "emoji 😀🎉👩‍👩‍👧‍👦 flags 🇫🇷 skin 👍🏽",
    "combining e\u0301 a\u0308 \u0915\u094d\u0937 Z\u0351\u0360\u0315",
    "control \x00 \x01 \x07 \x1b[31m red \x7f \u200b zero-width \ufeff bom",
    "Arabic مرحبا بالعالم Hebrew שלום",
    "math ∑ x² ≤ ∞, price $3.50 €4 ¥5",
    "def f(x):\n    return x ** 2  # code\n",
    "special tokens in text: <|endoftext|> <|im_start|>user\nhi<|im_end|> <|image|>",
    "The cat sat on the mat. Lily and Tom played with the ball in the park.",
    "a" * 500 + " " + "ab" * 200,
]


def make_corpus(n_lines: int = 600, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16)))
        lines.append(sentence.capitalize() + rng.choice([".", "!", "?", ","]) + "\n")
        if i % 50 == 0:
            lines.append(VARIED_TEXTS[(i // 50) % len(VARIED_TEXTS)] + "\n")
    return lines


@pytest.fixture(scope="session")
def corpus_lines() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory, corpus_lines) -> str:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("".join(corpus_lines), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def bpe_dir(tmp_path_factory, corpus_file) -> str:
    out = tmp_path_factory.mktemp("tok") / "bpe"
    train_tokenizer([corpus_file], 600, out, model="bpe")
    return str(out)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, corpus_file, bpe_dir) -> dict[str, str]:
    dirs = {"bpe": bpe_dir}
    for model in ("wordpiece", "unigram"):
        out = tmp_path_factory.mktemp("tok") / model
        train_tokenizer([corpus_file], 600, out, model=model)
        dirs[model] = str(out)
    return dirs
