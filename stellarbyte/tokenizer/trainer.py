"""`train_tokenizer`: train a StellarByte tokenizer with HF `tokenizers` and save it as a transformers-loadable
directory.

Contract: inputs are file paths (.txt / .jsonl / .parquet, see sources.py) or an iterator of strings; the result
has the fixed special ids of special_tokens.py, the whole byte alphabet, at most `vocab_size` ids (fewer when the
corpus runs out of pairs seen at least `min_frequency` times) and the ChatML template. The output directory is
written only after training succeeded, each file atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .chat_template import CHAT_TEMPLATE
from .pipeline import MODEL_TYPES, build_tokenizer, build_trainer, check_layout, check_vocab_size
from .sources import InputsLike, iter_texts
from .tokenizer import ByteTokenizer


class _Counted:
    """Wraps the text iterator to count what the trainer consumed (an empty corpus must be an error)."""

    def __init__(self, texts: Iterator[str]) -> None:
        self.texts, self.n_texts, self.n_chars = texts, 0, 0

    def __iter__(self) -> Iterator[str]:
        for text in self.texts:
            self.n_texts += 1
            self.n_chars += len(text)
            yield text


def train_tokenizer(inputs: InputsLike, vocab_size: int, out_dir: str | os.PathLike, model: str = "bpe",
                    text_field: str = "text", *, min_frequency: int = 2,
                    show_progress: bool = False) -> ByteTokenizer:
    """Train a byte-level tokenizer on `inputs` and save it to `out_dir`; returns the loaded ByteTokenizer."""
    if model not in MODEL_TYPES:
        raise ValueError(f"unknown tokenizer model {model!r}; choose one of {', '.join(MODEL_TYPES)}")
    check_vocab_size(vocab_size)
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
        raise ValueError(f"min_frequency must be an int >= 0, got {min_frequency!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} exists and is a file; give a directory path")

    tok = build_tokenizer(model)
    trainer = build_trainer(model, vocab_size, min_frequency=min_frequency, show_progress=show_progress)
    counted = _Counted(iter_texts(inputs, text_field))
    # errors raised while reading (bad UTF-8, bad JSON) propagate out of the Rust trainer as the same exception
    tok.train_from_iterator(counted, trainer=trainer)
    if counted.n_chars == 0:
        raise ValueError("the training inputs hold no text (every file/record was empty); nothing to train on")
    check_layout(tok)
    result = ByteTokenizer(tok, chat_template=CHAT_TEMPLATE)
    result.save_pretrained(out_dir)
    return result
