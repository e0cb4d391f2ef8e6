"""Bad training input gives a clear error naming the file, the line and the fix; nothing is written."""

from __future__ import annotations

import json
import sys

import pytest

from stellarbyte.tokenizer import train_tokenizer
from stellarbyte.tokenizer.sources import CHUNK_CHARS, iter_texts, resolve_paths


def _train(inputs, tmp_path, **kw):
    return train_tokenizer(inputs, 300, tmp_path / "out", **kw)


def test_empty_file(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"e\.txt: file is empty"):
        _train([tmp_path / "e.txt"], tmp_path)
    assert not (tmp_path / "out").exists()


def test_only_empty_records_is_an_error(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"text": ""}\n\n{"text": ""}\n')
    with pytest.raises(ValueError, match="hold no text"):
        _train([tmp_path / "e.jsonl"], tmp_path)
    with pytest.raises(ValueError, match="hold no text"):
        _train(iter(["", ""]), tmp_path)
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_names_line_and_bytes(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine line\nsecond fine\ncaf\xe9 latin-1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: invalid UTF-8 \(byte 3 of the line: e9.*iconv"):
        _train([tmp_path / "bad.txt"], tmp_path)
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_in_jsonl(tmp_path):
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: invalid UTF-8"):
        _train([tmp_path / "bad.jsonl"], tmp_path)


def test_jsonl_missing_field_lists_fields(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\n{"content": "b", "id": 1}\n')
    with pytest.raises(ValueError, match=r"d\.jsonl:2: no field 'text' \(fields: content, id\).*--text-field"):
        _train([tmp_path / "d.jsonl"], tmp_path)


def test_jsonl_not_json_and_not_object_and_not_string(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a"}\n{"text": "b",\n')
    with pytest.raises(ValueError, match=r"a\.jsonl:2: not valid JSON"):
        list(iter_texts([tmp_path / "a.jsonl"]))
    (tmp_path / "b.jsonl").write_text('["text"]\n')
    with pytest.raises(ValueError, match=r"b\.jsonl:1: expected a JSON object, got list"):
        list(iter_texts([tmp_path / "b.jsonl"]))
    (tmp_path / "c.jsonl").write_text('{"text": 5}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:1: field 'text' is int"):
        list(iter_texts([tmp_path / "c.jsonl"]))


def test_jsonl_custom_field_and_blank_lines(tmp_path):
    rows = [{"body": "first"}, {"body": "second"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert list(iter_texts([tmp_path / "d.jsonl"], text_field="body")) == ["first", "second"]


def test_txt_chunks_keep_every_character(tmp_path):
    text = "".join(f"line {i} ünï 😀\n" for i in range(20000))
    (tmp_path / "big.txt").write_text(text)
    chunks = list(iter_texts(tmp_path / "big.txt"))
    assert len(chunks) > 1 and all(len(c) >= CHUNK_CHARS for c in chunks[:-1])
    assert "".join(chunks) == text


def test_paths_vs_iterators(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found: hello world.*pass an iterator"):
        list(iter_texts(["hello world"]))  # a list is paths, never guessed to be text
    assert list(iter_texts(iter(["hello", "", "world"]))) == ["hello", "world"]
    with pytest.raises(ValueError, match="item 1 is int"):
        list(iter_texts(iter(["a", 1])))
    with pytest.raises(ValueError, match="no input files"):
        resolve_paths([])
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"unknown file type '\.csv'"):
        resolve_paths([tmp_path / "x.csv"])


def test_directory_expands(tmp_path):
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.jsonl").write_text('{"text": "ay"}\n')
    (tmp_path / "notes.csv").write_text("ignored")
    assert list(iter_texts([tmp_path])) == ["ay", "bee\n"]
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        resolve_paths([tmp_path / "sub"])


def test_parquet_missing_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["a", None, "b"]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"no column 'text' \(columns: content\)"):
        list(iter_texts([tmp_path / "d.parquet"]))
    assert list(iter_texts([tmp_path / "d.parquet"], text_field="content")) == ["a", "b"]  # nulls hold no text


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "d.parquet").write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow...` raise ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ValueError, match=r"needs pyarrow.*pip install pyarrow"):
        list(iter_texts([tmp_path / "d.parquet"]))
