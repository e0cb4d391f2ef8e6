"""The `tokenizers` pipeline every StellarByte tokenizer shares, and the trainer for each model type.

    text --(no normalizer)--> ByteLevel pre-tokenizer --> model (BPE | WordPiece | Unigram) --> post-processor
    ids  --> ByteLevel decoder --> text

- No normalizer: the tokenizer is lossless, decode(encode(s)) == s for every string. Unicode normalisation is a
  data-cleaning decision (stellarbyte.data), not a tokenizer side effect.
- ByteLevel pre-tokenizer (GPT-2, Radford et al. 2019): split with the GPT-2 regex, then map each UTF-8 byte to a
  printable character (space -> "Ġ", newline -> "Ċ"), so the base alphabet is exactly 256 symbols and no text is
  ever unknown. add_prefix_space=False: " hello" and "hello" stay different, as in GPT-2.
- Models: BPE (merges, Sennrich et al. 2016); WordPiece (BERT's greedy longest-match-first over the same byte
  alphabet; its "##" continuation prefix is dropped because byte-level pieces already carry their leading space as
  "Ġ", so decoding is plain concatenation; max_input_chars_per_word is unbounded so long words never become UNK);
  Unigram (Kudo 2018, the SentencePiece LM) over the byte alphabet.
- Post-processor: ByteLevel offsets, then TemplateProcessing "<|bos|> $A" applied only when add_special_tokens=True.
- Special tokens come first in the trainer's list, so they get ids 0..15 (special_tokens.py); `check_layout`
  verifies that and that all 256 byte symbols survived training.
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .special_tokens import BOS_ID, BOS_TOKEN, MIN_VOCAB_SIZE, NUM_SPECIAL_TOKENS, SPECIAL_TOKENS, UNK_TOKEN

MODEL_TYPES = ("bpe", "wordpiece", "unigram")
UNBOUNDED_WORD_CHARS = 1 << 62  # WordPiece's max_input_chars_per_word; words longer than it would become UNK


def byte_alphabet() -> list[str]:
    """The 256 printable characters the ByteLevel pre-tokenizer maps bytes to."""
    return pre_tokenizers.ByteLevel.alphabet()


def special_added_tokens() -> list[AddedToken]:
    # normalized=False: matched on the raw text; special=True: skipped by decode(skip_special_tokens=True)
    return [AddedToken(t, special=True, normalized=False, single_word=False, lstrip=False, rstrip=False)
            for t in SPECIAL_TOKENS]


def check_vocab_size(vocab_size: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"vocab_size must be an int, got {vocab_size!r}")
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the 256 byte tokens plus {NUM_SPECIAL_TOKENS} "
                         f"special tokens; use at least {MIN_VOCAB_SIZE} (typical: 8192 to 65536)")


def build_tokenizer(model: str) -> Tokenizer:
    """An untrained tokenizer of `model` type with the shared pre-tokenizer, decoder and post-processor."""
    if model == "bpe":
        core = models.BPE()
    elif model == "wordpiece":
        core = models.WordPiece(unk_token=UNK_TOKEN, continuing_subword_prefix="",
                                max_input_chars_per_word=UNBOUNDED_WORD_CHARS)
    elif model == "unigram":
        core = models.Unigram()
    else:
        raise ValueError(f"unknown tokenizer model {model!r}; choose one of {', '.join(MODEL_TYPES)}")
    tok = Tokenizer(core)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B:1",
                                      special_tokens=[(BOS_TOKEN, BOS_ID)]),
    ])
    return tok


def build_trainer(model: str, vocab_size: int, min_frequency: int = 2,
                  show_progress: bool = False) -> trainers.Trainer:
    """The `tokenizers` trainer for `model`, with our special tokens first and the full byte alphabet kept."""
    check_vocab_size(vocab_size)
    common = dict(vocab_size=vocab_size, special_tokens=special_added_tokens(), initial_alphabet=byte_alphabet(),
                  show_progress=show_progress)
    if model == "bpe":
        return trainers.BpeTrainer(min_frequency=min_frequency, **common)
    if model == "wordpiece":
        return trainers.WordPieceTrainer(min_frequency=min_frequency, continuing_subword_prefix="", **common)
    if model == "unigram":
        return trainers.UnigramTrainer(unk_token=UNK_TOKEN, **common)
    raise ValueError(f"unknown tokenizer model {model!r}; choose one of {', '.join(MODEL_TYPES)}")


def check_layout(tok: Tokenizer) -> None:
    """Assert the invariants the rest of StellarByte relies on: fixed special ids and the full byte alphabet."""
    for i, token in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(token)
        if got != i:
            raise RuntimeError(f"special token {token} has id {got}, expected the reserved id {i}")
    missing = [c for c in byte_alphabet() if tok.token_to_id(c) is None]
    if missing:
        raise RuntimeError(f"{len(missing)} byte symbols are missing from the vocabulary, e.g. {missing[:5]}")
