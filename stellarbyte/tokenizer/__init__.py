"""StellarByte tokenizers: byte-level BPE (and WordPiece / Unigram) trained with HF `tokenizers`, fixed special
ids, a ChatML chat template, and a pure-Python teaching BPE (teaching_bpe.py). See docs/tokenizer.md."""

from .chat_template import CHAT_TEMPLATE, render_chat
from .special_tokens import (
    BOS_ID,
    EOS_ID,
    IM_END_ID,
    IM_START_ID,
    IMAGE_ID,
    MIN_VOCAB_SIZE,
    NUM_SPECIAL_TOKENS,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
)
from .tokenizer import ByteTokenizer
from .trainer import train_tokenizer

__all__ = [
    "BOS_ID", "CHAT_TEMPLATE", "EOS_ID", "IMAGE_ID", "IM_END_ID", "IM_START_ID", "MIN_VOCAB_SIZE",
    "NUM_SPECIAL_TOKENS", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID", "ByteTokenizer", "render_chat", "train_tokenizer",
]
