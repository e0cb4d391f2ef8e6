"""`ByteTokenizer`: the tokenizer every other part of StellarByte codes against.

A thin, typed wrapper over a `tokenizers.Tokenizer` plus the chat template. A saved directory holds
tokenizer.json, tokenizer_config.json (with "chat_template") and special_tokens_map.json, so
`transformers.AutoTokenizer.from_pretrained(dir)` loads it as a PreTrainedTokenizerFast that gives the same ids,
the same decoded text and the same chat rendering (tests/tokenizer pin all three).

Contract:
- encode(text) adds nothing; encode(text, add_special_tokens=True) prepends <|bos|> (like transformers' default).
- Special-token strings inside `text` ARE parsed as special tokens (transformers does the same, and the chat
  template relies on it). Sanitise untrusted text upstream if that matters.
- decode is lossless on ids from encode: decode(encode(s)) == s for every Python str that is valid Unicode.
- Special ids are fixed (special_tokens.py): pad 0, bos 1, eos 2, unk 3, im_start 4, im_end 5, image 6.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from .chat_template import CHAT_TEMPLATE, render_chat
from .io import write_json_atomic, write_text_atomic
from .parallel import batch_encoder, parallel_encode
from .special_tokens import (
    BOS_TOKEN,
    EOS_TOKEN,
    IM_END_TOKEN,
    IM_START_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    UNK_TOKEN,
)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_MAP_FILE = "special_tokens_map.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # where transformers >= 4.43 may save the template instead


def _token_str(value: Any) -> str | None:
    # tokenizer_config.json stores a token either as a string or as an AddedToken dict {"content": ...}
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class ByteTokenizer:
    """Byte-level tokenizer with fixed special ids and a ChatML chat template (see module docstring)."""

    def __init__(self, tokenizer: Tokenizer, chat_template: str = CHAT_TEMPLATE, bos_token: str = BOS_TOKEN,
                 eos_token: str = EOS_TOKEN, pad_token: str = PAD_TOKEN, unk_token: str = UNK_TOKEN,
                 image_token: str = IMAGE_TOKEN) -> None:
        self._tok = tokenizer
        self.chat_template: str = chat_template
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.unk_token, self.image_token = unk_token, image_token
        ids = {}
        for name, token in (("bos", bos_token), ("eos", eos_token), ("pad", pad_token), ("unk", unk_token),
                            ("image", image_token), ("im_start", IM_START_TOKEN), ("im_end", IM_END_TOKEN)):
            ids[name] = tokenizer.token_to_id(token)
            if ids[name] is None:
                raise ValueError(f"the vocabulary has no {name} token {token!r}; StellarByte tokenizers need all of "
                                 f"{', '.join(SPECIAL_TOKENS[:7])} (train one with `stellarbyte tokenizer train`)")
        self.bos_token_id: int = ids["bos"]
        self.eos_token_id: int = ids["eos"]
        self.pad_token_id: int = ids["pad"]
        self.unk_token_id: int = ids["unk"]
        self.image_token_id: int = ids["image"]
        self.im_start_token_id: int = ids["im_start"]
        self.im_end_token_id: int = ids["im_end"]  # the stop token of a chat turn

    # ---- loading and saving -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> ByteTokenizer:
        """Load a directory written by save_pretrained / train_tokenizer (or by transformers' save_pretrained)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"tokenizer directory not found: {directory}")
        tok_path = directory / TOKENIZER_FILE
        if not tok_path.is_file():
            raise FileNotFoundError(f"{directory} has no {TOKENIZER_FILE}; is it a tokenizer directory?")
        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as err:  # tokenizers raises a bare Exception for malformed JSON
            raise ValueError(f"{tok_path} is not a valid tokenizers file: {err}") from None
        config: dict[str, Any] = {}
        if (directory / CONFIG_FILE).is_file():
            config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        template = config.get("chat_template")
        if (directory / CHAT_TEMPLATE_FILE).is_file():
            template = (directory / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
        kwargs = {}
        for key in ("bos_token", "eos_token", "pad_token", "unk_token", "image_token"):
            value = _token_str(config.get(key))
            if value is not None:
                kwargs[key] = value
        return cls(tokenizer, chat_template=template if isinstance(template, str) else CHAT_TEMPLATE, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json (each atomically)."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"cannot save a tokenizer into {directory}: it is a file")
        directory.mkdir(parents=True, exist_ok=True)
        named = {"bos_token": self.bos_token, "eos_token": self.eos_token, "pad_token": self.pad_token,
                 "unk_token": self.unk_token}
        extra = [t for t in self._special_tokens_in_id_order() if t not in named.values()]
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **named,
            "extra_special_tokens": extra,
            "chat_template": self.chat_template,
            "clean_up_tokenization_spaces": False,  # byte-level decoding is exact; never "clean" spaces
            "model_input_names": ["input_ids", "attention_mask"],
            "padding_side": "right",
        }
        special_map = {**named, "additional_special_tokens": extra}
        write_text_atomic(directory / TOKENIZER_FILE, self._tok.to_str(pretty=True))
        write_json_atomic(directory / CONFIG_FILE, config)
        write_json_atomic(directory / SPECIAL_MAP_FILE, special_map)
        if (directory / CHAT_TEMPLATE_FILE).exists():
            # a transformers-saved chat_template.jinja takes precedence when loading: keep it in sync
            write_text_atomic(directory / CHAT_TEMPLATE_FILE, self.chat_template)
        return directory

    def _special_tokens_in_id_order(self) -> list[str]:
        decoder = self._tok.get_added_tokens_decoder()
        return [decoder[i].content for i in sorted(decoder) if decoder[i].special]

    # ---- encoding and decoding ----------------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"encode() takes a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: list[str], num_workers: int = 1) -> list[list[int]]:
        """Encode many texts (no special tokens added). num_workers > 1 uses that many processes."""
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"encode_batch() item {i} is {type(t).__name__}, expected str")
        if num_workers == 1:
            # Rust threads parallelise this call; the fast variant skips computing offsets
            return [enc.ids for enc in batch_encoder(self._tok)(texts, add_special_tokens=False)]
        return parallel_encode(self._tok.to_str(), texts, num_workers)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]  # accepts lists, tuples, numpy arrays and 1-D tensors
        n = self.vocab_size
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise ValueError(f"token ids out of range [0, {n}): {bad[:5]}")
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = False,
                            tokenize: bool = False) -> str | list[int]:
        """Render a conversation with the chat template (same text and ids as transformers)."""
        text = render_chat(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                           special_tokens=self._template_special_tokens())
        return self.encode(text) if tokenize else text

    def apply_chat_template_with_mask(self, messages: list[dict],
                                      add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
        """(ids, mask) where mask[i] = 1 for tokens inside the template's {% generation %} blocks (assistant
        content and its <|im_end|>); the same mask as transformers' return_assistant_tokens_mask."""
        text, spans = render_chat(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                                  special_tokens=self._template_special_tokens(), return_spans=True)
        enc = self._tok.encode(text, add_special_tokens=False)
        mask = [0] * len(enc.ids)
        # a token is trained on when its character range overlaps a span; spans and offsets are both sorted
        s = 0
        for i, (start, end) in enumerate(enc.offsets):
            while s < len(spans) and start >= spans[s][1]:
                s += 1
            if s == len(spans):
                break
            if end > spans[s][0]:
                mask[i] = 1
        return enc.ids, mask

    def _template_special_tokens(self) -> dict[str, str]:
        # the variables transformers passes to every template (its special_tokens_map)
        return {"bos_token": self.bos_token, "eos_token": self.eos_token, "unk_token": self.unk_token,
                "pad_token": self.pad_token}

    # ---- vocabulary ---------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the embedding table needs at least this many rows)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(int(token_id))

    @property
    def special_token_ids(self) -> set[int]:
        decoder = self._tok.get_added_tokens_decoder()
        return {i for i, tok in decoder.items() if tok.special}

    @property
    def backend(self) -> Tokenizer:
        """The underlying `tokenizers.Tokenizer` (for offsets, batch APIs, inspection)."""
        return self._tok

    @property
    def model_type(self) -> str:
        return type(self._tok.model).__name__.lower()  # "bpe", "wordpiece" or "unigram"

    def __repr__(self) -> str:
        return f"ByteTokenizer(model={self.model_type}, vocab_size={self.vocab_size})"
