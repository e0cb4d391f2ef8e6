"""Ingest: txt paragraphs/files, jsonl with a configurable field, parquet, HF datasets; bad input counted or raised."""

from __future__ import annotations

import gzip
import json
import sys
import types

import pytest

from stellarbyte.data.ingest import IngestConfig, read_files, read_hf_dataset
from stellarbyte.data.records import Stats


def _ingest(paths, **kw):
    stats = Stats("ingest")
    docs = list(read_files(paths, IngestConfig(**kw), stats))
    return docs, stats


def test_txt_paragraph_and_file_modes(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("First para line one.\nline two.\n\n\n  \nSecond para.\r\n\r\nThird.\n", encoding="utf-8")
    docs, stats = _ingest([p])
    assert [d.text for d in docs] == ["First para line one.\nline two.", "Second para.", "Third."]
    assert (stats.seen, stats.kept, stats.removed) == (3, 3, 0)
    assert docs[1].id == "a.txt:1" and docs[1].source == str(p)
    docs, _ = _ingest([p], txt_mode="file")
    assert [d.text for d in docs] == ["First para line one.\nline two.\n\n\n  \nSecond para.\n\nThird."]


def test_jsonl_field_gzip_and_bad_lines_counted(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    lines = [json.dumps({"body": {"content": "hello"}, "id": 7}), "not json {", json.dumps({"other": 1}),
             json.dumps(["a list"]), json.dumps({"body": {"content": 5}}), json.dumps({"body": {"content": "  "}}), "",
             json.dumps({"body": {"content": "world"}})]
    data = ("\n".join(lines) + "\n").encode() + b'{"body": {"content": "\xff\xfe"}}\n'
    with gzip.open(p, "wb") as f:
        f.write(data)
    docs, stats = _ingest([p], text_field="body.content")
    assert [d.text for d in docs] == ["hello", "world"]
    assert docs[0].id == "7" and docs[1].id == "d.jsonl.gz:8"
    assert stats.seen == 8 and stats.kept == 2
    assert dict(stats.reasons) == {"bad_json": 1, "missing_field": 1, "not_an_object": 1, "non_string_field": 1,
                                   "empty_doc": 1, "invalid_utf8": 1}


def test_strict_mode_raises_with_location_and_fix(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n{"txt": "wrong key"}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:2: missing field.*text_field"):
        _ingest([p], strict=True)


def test_empty_file_and_invalid_utf8_txt(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"  \n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 latin-1 text\n\nclean paragraph\n")
    docs, stats = _ingest([tmp_path])  # a directory expands to its files, sorted
    assert [d.text for d in docs] == ["caf\ufffd latin-1 text", "clean paragraph"]
    assert stats.reasons["empty_file"] == 1 and stats.changed == 1 and stats.kept == 2
    with pytest.raises(ValueError, match="invalid UTF-8 at byte 3"):
        _ingest([bad], strict=True)


def test_missing_path_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        _ingest([tmp_path / "nope.txt"])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match="cannot tell the format"):
        _ingest([tmp_path / "x.csv"])
    docs, _ = _ingest([tmp_path / "x.csv"], format="txt")
    assert docs[0].text == "a,b"


def test_parquet_streams_batches_and_checks_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    texts = [f"doc number {i}" for i in range(2500)] + [None, ""]
    pq.write_table(pa.table({"content": texts, "id": list(range(len(texts)))}), p, row_group_size=1000)
    docs, stats = _ingest([p], text_field="content")
    assert len(docs) == 2500 and docs[1234].text == "doc number 1234" and docs[1234].id == "1234"
    assert stats.reasons == {"missing_field": 1, "empty_doc": 1}
    with pytest.raises(ValueError, match="no column 'text'.*content"):
        _ingest([p])


def test_hf_datasets_real_library_on_local_jsonl(tmp_path):
    pytest.importorskip("datasets")
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(10)) + '{"text": ""}\n')
    stats = Stats("ingest")
    docs = list(read_hf_dataset("json", IngestConfig(), stats, data_files=str(p), streaming=True))
    assert [d.text for d in docs] == [f"row {i}" for i in range(10)]
    assert stats.seen == 11 and stats.reasons == {"empty_doc": 1}
    assert len(list(read_hf_dataset("json", data_files=str(p), streaming=False, limit=3))) == 3


def test_hf_datasets_call_contract_with_fake_module(monkeypatch):
    calls = {}

    def load_dataset(path, name=None, split=None, streaming=False, data_files=None, **kw):
        calls.update(path=path, name=name, split=split, streaming=streaming, data_files=data_files, **kw)
        return iter([{"content": "a"}, {"content": None}, {"content": "b"}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    stats = Stats("ingest")
    docs = list(read_hf_dataset("org/corpus", IngestConfig(text_field="content"), stats, split="validation",
                                subset="en", revision="main"))
    assert [d.text for d in docs] == ["a", "b"] and docs[1].id == "org/corpus:validation:2"
    assert calls == {"path": "org/corpus", "name": "en", "split": "validation", "streaming": True,
                     "data_files": None, "revision": "main"}
    assert stats.reasons == {"missing_field": 1}


def test_config_validation():
    with pytest.raises(ValueError, match="txt_mode"):
        IngestConfig(txt_mode="line")
    with pytest.raises(ValueError, match="format"):
        IngestConfig(format="csv")


def test_json_array_file(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps([{"text": "one"}, {"text": ""}, {"content": "x"}, {"text": "two"}]))
    docs, stats = _ingest([p])
    assert [d.text for d in docs] == ["one", "two"] and stats.reasons == {"empty_doc": 1, "missing_field": 1}
    (tmp_path / "bad.json").write_text("[{\"text\": 1,")
    with pytest.raises(ValueError, match="not a valid JSON array"):
        _ingest([tmp_path / "bad.json"])
