"""Training writes directories that transformers loads and that give identical ids, text and decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from stellarbyte.tokenizer import CHAT_TEMPLATE, ByteTokenizer, train_tokenizer

from .conftest import VARIED_TEXTS

MODELS = ["bpe", "wordpiece", "unigram"]


@pytest.mark.parametrize("model", MODELS)
def test_directory_layout(model_dirs, model):
    d = Path(model_dirs[model])
    assert sorted(p.name for p in d.iterdir()) == ["special_tokens_map.json", "tokenizer.json",
                                                   "tokenizer_config.json"]
    config = json.loads((d / "tokenizer_config.json").read_text())
    assert config["chat_template"] == CHAT_TEMPLATE
    assert (config["bos_token"], config["eos_token"], config["pad_token"]) == ("<|bos|>", "<|endoftext|>", "<|pad|>")
    assert json.loads((d / "tokenizer.json").read_text())["model"]["type"].lower() == model
    tok = ByteTokenizer.from_pretrained(d)
    assert tok.model_type == model and 272 < tok.vocab_size <= 600


@pytest.mark.parametrize("model", MODELS)
def test_autotokenizer_parity(model_dirs, model):
    ours = ByteTokenizer.from_pretrained(model_dirs[model])
    hf = AutoTokenizer.from_pretrained(model_dirs[model])
    assert isinstance(hf, PreTrainedTokenizerFast)
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id, hf.unk_token_id) == (1, 2, 0, 3)
    assert len(hf) == ours.vocab_size
    assert hf.chat_template == ours.chat_template
    for text in VARIED_TEXTS:
        ids = ours.encode(text)
        assert hf.encode(text, add_special_tokens=False) == ids, text
        assert hf(text)["input_ids"] == ours.encode(text, add_special_tokens=True) == [1, *ids]
        assert hf.convert_ids_to_tokens(ids) == [ours.id_to_token(i) for i in ids]
        for skip in (False, True):
            with_bos = [1, *ids, 2]
            assert hf.decode(with_bos, skip_special_tokens=skip) == ours.decode(with_bos, skip_special_tokens=skip)
        assert ours.decode(ids) == text  # lossless for every model type


def test_bpe_compresses_and_uses_merges(bpe_dir, corpus_lines):
    tok = ByteTokenizer.from_pretrained(bpe_dir)
    text = "".join(corpus_lines[:50])
    ids = tok.encode(text)
    assert len(ids) < len(text.encode("utf-8")) / 2.5  # merges were learned, not just bytes
    assert tok.token_to_id("Ġthe") is not None


def test_save_load_roundtrip(bpe_dir, tmp_path):
    tok = ByteTokenizer.from_pretrained(bpe_dir)
    tok.save_pretrained(tmp_path / "copy")
    again = ByteTokenizer.from_pretrained(tmp_path / "copy")
    assert again.vocab_size == tok.vocab_size and again.chat_template == tok.chat_template
    for text in VARIED_TEXTS:
        assert again.encode(text) == tok.encode(text)
    assert not list((tmp_path / "copy").glob("*.tmp"))  # atomic writes leave no temporaries


def test_transformers_saved_directory_loads(bpe_dir, tmp_path):
    hf = AutoTokenizer.from_pretrained(bpe_dir)
    hf.save_pretrained(tmp_path / "hf")
    tok = ByteTokenizer.from_pretrained(tmp_path / "hf")
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.encode("Hello there") == hf.encode("Hello there", add_special_tokens=False)
    # saving over that directory keeps a transformers-style chat_template.jinja (if any) in sync
    tok.chat_template = "{{ messages[0]['content'] }}"
    tok.save_pretrained(tmp_path / "hf")
    again = ByteTokenizer.from_pretrained(tmp_path / "hf")
    assert again.chat_template == tok.chat_template
    assert AutoTokenizer.from_pretrained(tmp_path / "hf").chat_template == tok.chat_template


@pytest.mark.parametrize("num_workers", [1, 2])
def test_encode_batch_matches_encode(bpe_dir, corpus_lines, num_workers):
    tok = ByteTokenizer.from_pretrained(bpe_dir)
    texts = corpus_lines[:200] + VARIED_TEXTS
    assert tok.encode_batch(texts, num_workers=num_workers) == [tok.encode(t) for t in texts]
    assert tok.encode_batch([], num_workers=num_workers) == []


def test_encode_batch_bad_workers(bpe_dir):
    tok = ByteTokenizer.from_pretrained(bpe_dir)
    with pytest.raises(ValueError, match="num_workers"):
        tok.encode_batch(["a"], num_workers=0)
    with pytest.raises(ValueError, match="item 1"):
        tok.encode_batch(["a", 3])


def test_decode_rejects_out_of_range(bpe_dir):
    tok = ByteTokenizer.from_pretrained(bpe_dir)
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([5, tok.vocab_size])


def test_train_from_iterator_equals_from_file(corpus_file, corpus_lines, bpe_dir, tmp_path):
    from stellarbyte.tokenizer.sources import CHUNK_CHARS

    text = "".join(corpus_lines)
    assert len(text) < CHUNK_CHARS  # the file is read as one chunk, so it is the same single text
    a = ByteTokenizer.from_pretrained(bpe_dir)
    b = train_tokenizer(iter([text]), 600, tmp_path / "it")
    assert a.vocab_size == b.vocab_size == 489
    assert a.backend.get_vocab() == b.backend.get_vocab()
    # line by line differs only where whitespace runs span a line break ("\n\n" is one pre-token in a file)
    c = train_tokenizer(iter(corpus_lines), 600, tmp_path / "lines")
    assert abs(c.vocab_size - a.vocab_size) <= 2


def test_jsonl_input_equals_iterator(tmp_path, corpus_lines):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": s}) + "\n" for i, s in enumerate(corpus_lines)))
    a = train_tokenizer([jsonl], 500, tmp_path / "a", text_field="body")
    b = train_tokenizer(iter(corpus_lines), 500, tmp_path / "b")  # one record = one text, like the iterator
    assert a.backend.get_vocab() == b.backend.get_vocab()


def test_parquet_input_equals_iterator(tmp_path, corpus_lines):
    pa = pytest.importorskip("pyarrow")  # optional dependency; its absence is tested in test_sources.py
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": corpus_lines}), tmp_path / "c.parquet")
    a = train_tokenizer([tmp_path / "c.parquet"], 500, tmp_path / "a", text_field="body")
    b = train_tokenizer(iter(corpus_lines), 500, tmp_path / "b")
    assert a.backend.get_vocab() == b.backend.get_vocab()


def test_unknown_model_and_bad_out(tmp_path):
    with pytest.raises(ValueError, match="unknown tokenizer model 'bpe2'"):
        train_tokenizer(iter(["x"]), 300, tmp_path / "t", model="bpe2")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        train_tokenizer(iter(["x"]), 300, tmp_path / "file")


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        ByteTokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        ByteTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tokenizers file"):
        ByteTokenizer.from_pretrained(tmp_path)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_production_round_trip_any_string(bpe_dir, text):
    tok = _cached(bpe_dir)
    assert tok.decode(tok.encode(text)) == text


_CACHE: dict[str, ByteTokenizer] = {}


def _cached(directory: str) -> ByteTokenizer:
    if directory not in _CACHE:
        _CACHE[directory] = ByteTokenizer.from_pretrained(directory)
    return _CACHE[directory]
