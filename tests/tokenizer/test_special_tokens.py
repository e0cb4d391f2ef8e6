"""The reserved special-token ids are fixed, whatever the model type or corpus."""

from __future__ import annotations

import pytest

from stellarbyte.tokenizer import (
    BOS_ID,
    EOS_ID,
    IM_END_ID,
    IM_START_ID,
    IMAGE_ID,
    MIN_VOCAB_SIZE,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    ByteTokenizer,
    train_tokenizer,
)


def test_reserved_id_scheme():
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID, IM_START_ID, IM_END_ID, IMAGE_ID) == (0, 1, 2, 3, 4, 5, 6)
    assert SPECIAL_TOKENS[:7] == ("<|pad|>", "<|bos|>", "<|endoftext|>", "<|unk|>", "<|im_start|>", "<|im_end|>",
                                  "<|image|>")
    assert SPECIAL_TOKENS[7:] == tuple(f"<|reserved_{i}|>" for i in range(9))
    assert PAD_ID != EOS_ID
    assert MIN_VOCAB_SIZE == 256 + 16


@pytest.mark.parametrize("model", ["bpe", "wordpiece", "unigram"])
def test_trained_tokenizers_have_fixed_ids(model_dirs, model):
    tok = ByteTokenizer.from_pretrained(model_dirs[model])
    assert tok.pad_token_id == 0 and tok.bos_token_id == 1 and tok.eos_token_id == 2
    assert tok.image_token_id == 6 and tok.im_start_token_id == 4 and tok.im_end_token_id == 5
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
    assert tok.special_token_ids == set(range(16))
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i and tok.id_to_token(i) == t
    # a special token written in text is one id, and decode can drop it
    ids = tok.encode("a<|image|>b")
    assert IMAGE_ID in ids and tok.decode(ids, skip_special_tokens=True) == "ab"


def test_fixed_ids_do_not_depend_on_corpus(tmp_path):
    a = train_tokenizer(iter(["zzz qqq " * 50]), 300, tmp_path / "a")
    b = train_tokenizer(iter(["hello world " * 50, "ünï 漢字"]), 400, tmp_path / "b")
    for i, t in enumerate(SPECIAL_TOKENS):
        assert a.token_to_id(t) == b.token_to_id(t) == i


@pytest.mark.parametrize("vocab_size", [0, 100, 256, MIN_VOCAB_SIZE - 1])
def test_too_small_vocab_is_a_clear_error(tmp_path, vocab_size):
    with pytest.raises(ValueError, match=r"smaller than the 256 byte tokens plus 16 special tokens.*at least 272"):
        train_tokenizer(iter(["some text"]), vocab_size, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_minimum_vocab_works(tmp_path):
    tok = train_tokenizer(iter(["hello world " * 20]), MIN_VOCAB_SIZE, tmp_path / "t")
    assert tok.vocab_size == MIN_VOCAB_SIZE  # specials + bytes, no merge
    assert tok.decode(tok.encode("héllo 😀")) == "héllo 😀"
