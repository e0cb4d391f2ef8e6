"""What the data pipeline needs from a tokenizer, and how it names one.

Contract: any object with the `TokenizerLike` methods works (stellarbyte.tokenizer.ByteTokenizer is the production
one; the tests also use a thin adapter over an HF `tokenizers.Tokenizer`). The data code never imports a concrete
tokenizer class except in `load_tokenizer`, which does so lazily.

`tokenizer_fingerprint` names a tokenizer by what it does, not by where it lives: SHA-256 over its vocab size,
special ids and the ids it gives a fixed probe text (plus the serialised backend when it exposes one). A packed
dataset records it, so loading shards with a different tokenizer is caught.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Protocol, runtime_checkable

import numpy as np

PROBE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Once upon a time, in 1987, Alice (age 42) met Bob at 10:30! "
    "def f(x):\n    return x**2 + 3.14159  # code\n"
    "Ünïcödé: naïve café, 日本語のテキスト, emoji 🦊🚀, math ∑∫√, tabs\tand  double  spaces.\n"
    "Questions? What is 17 + 25? It is 42. Paris is the capital of France; Tokyo is the capital of Japan."
)


@runtime_checkable
class TokenizerLike(Protocol):
    vocab_size: int
    eos_token_id: int
    pad_token_id: int | None
    bos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]: ...

    def encode_batch(self, texts: list[str], num_workers: int = 1) -> list[list[int]]: ...

    def decode(self, ids: list[int]) -> str: ...

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = False,
                            tokenize: bool = False) -> str | list[int]: ...


def load_tokenizer(path: str | os.PathLike) -> TokenizerLike:
    """A saved StellarByte tokenizer directory (tokenizer.json + tokenizer_config.json)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not a tokenizer directory; train one with `stellarbyte tokenizer train "
                                f"--out DIR` and pass that DIR (--tokenizer)")
    from stellarbyte.tokenizer import ByteTokenizer  # lazy: data sits beside tokenizer in the layer diagram

    return ByteTokenizer.from_pretrained(path)


def tokenizer_fingerprint(tok: TokenizerLike) -> str:
    """Stable 16-hex-digit name of a tokenizer's behaviour (see module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps([int(tok.vocab_size), tok.eos_token_id, tok.pad_token_id, tok.bos_token_id]).encode())
    h.update(np.asarray(tok.encode(PROBE_TEXT), dtype=np.int64).tobytes())
    backend = getattr(tok, "backend", None)
    to_str = getattr(backend, "to_str", None)
    if callable(to_str):
        h.update(to_str().encode())
    return h.hexdigest()[:16]


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab <= 65536): half the disk and page cache of uint32."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)
