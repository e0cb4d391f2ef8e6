"""Analysis numbers against direct numpy / collections computations; report files with and without matplotlib."""

from __future__ import annotations

import builtins
import json
from collections import Counter

import numpy as np
import pytest

from stellarbyte.data.analyse import analyse_documents, analyse_packed, summarize, write_report
from stellarbyte.data.pack import PackConfig, pack_documents


def test_summarize_matches_numpy():
    v = np.array([5, 1, 9, 3, 7, 100])
    s = summarize(v)
    assert s["p50"] == np.median(v) and s["p90"] == np.percentile(v, 90) and s["mean"] == v.mean()
    assert (s["min"], s["max"], s["count"]) == (1, 100, 6)


def test_document_analysis(tokenizer, corpus):
    docs = corpus[:50]
    r = analyse_documents(docs, tokenizer, top_k=5, batch_size=16)
    ids = [tokenizer.encode(d) for d in docs]
    ref = Counter(i for x in ids for i in x)
    assert r["documents"] == 50 and r["chars"]["max"] == max(map(len, docs))
    assert r["tokens"]["total"] == sum(map(len, ids)) and r["words"]["p50"] == np.median([len(d.split()) for d in docs])
    assert [(t["id"], t["count"]) for t in r["top_tokens"]] == ref.most_common(5)
    assert r["coverage"]["ids_used"] == len(ref) and r["coverage"]["vocab_size"] == tokenizer.vocab_size
    assert r["chars_per_token"] == pytest.approx(sum(map(len, docs)) / sum(map(len, ids)))


def test_packed_analysis_agrees_with_document_analysis(tmp_path, tokenizer, corpus):
    pack_documents(corpus, tokenizer, tmp_path / "ds", PackConfig(val_fraction=0.0, shard_tokens=999))
    p = analyse_packed(tmp_path / "ds", tokenizer=tokenizer, chunk=1000, top_k=1000)
    d = analyse_documents(corpus, tokenizer, top_k=1000)
    assert p["documents"] == 200
    assert p["tokens"]["total"] == d["tokens"]["total"] + 200  # + one EOS per document
    assert p["tokens"]["max"] == d["tokens"]["max"] + 1
    p_counts = {t["id"]: t["count"] for t in p["top_tokens"]}
    assert p_counts[tokenizer.eos_token_id] == 200
    assert all(p_counts[t["id"]] == t["count"] for t in d["top_tokens"])  # same histogram apart from EOS


def test_report_with_plots(tmp_path, tokenizer, corpus):
    pytest.importorskip("matplotlib")
    path = write_report(analyse_documents(corpus, tokenizer), tmp_path / "rep")
    text = path.read_text()
    assert "## Vocabulary coverage" in text and "![lengths.png](lengths.png)" in text
    for png in ("lengths.png", "tokens.png", "rank_frequency.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "rep/analysis.json").read_text())["documents"] == 200


def test_report_without_matplotlib(tmp_path, corpus, monkeypatch):
    real_import = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    path = write_report(analyse_documents(corpus[:10]), tmp_path / "rep")
    assert "Plots skipped: matplotlib is not installed" in path.read_text()
    assert not list((tmp_path / "rep").glob("*.png"))
