"""End to end through the CLI: ingest -> clean -> dedup -> pack -> load, with every count asserted; the toy world
through the same path."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from stellarbyte.cli import main
from stellarbyte.data.loader import TokenBlockLoader
from stellarbyte.data.pack import read_index

from .conftest import make_docs


@pytest.fixture()
def raw(tmp_path):
    """40 good docs in jsonl, 5 exact copies, 5 near copies (1 word changed), 3 junk docs, HTML + PII in txt."""
    good = make_docs(40, seed=21, words=90)
    d = tmp_path / "raw"
    d.mkdir()
    lines = [json.dumps({"text": t}) for t in good]
    lines += [json.dumps({"text": t}) for t in good[:5]]  # exact duplicates
    lines += [json.dumps({"text": t.replace(t.split()[10], "zebra", 1)}) for t in good[5:10]]  # near duplicates
    lines += [json.dumps({"text": "too short"}), json.dumps({"text": " ".join(["1234 5678"] * 40)}),
              "{broken json", json.dumps({"body": "no text field"})]
    (d / "a.jsonl").write_text("\n".join(lines) + "\n")
    html = ("<html><body><nav>Home</nav><p>" + make_docs(1, seed=99, words=90)[0] +
            " Write to jane.doe@example.com or call +1 (555) 123-4567.</p><footer>All rights reserved</footer>"
            "</body></html>")
    (d / "b.txt").write_text(html + "\n")
    (d / "c.txt").write_bytes(b"")
    return d


def _run(*argv) -> int:
    return main(["data", *map(str, argv)])


def test_pipeline_cli(tmp_path, raw, tokenizer_dir, tokenizer, capsys):
    docs, clean, dedup, packed = (tmp_path / n for n in ("docs.jsonl", "clean.jsonl", "dedup.jsonl", "packed"))
    assert _run("ingest", "--input", raw, "--out", docs) == 0
    out = capsys.readouterr().out
    assert "seen=56" in out and "kept=53" in out and "bad_json=1" in out and "missing_field=1" in out
    assert "empty_file=1" in out
    assert sum(1 for _ in docs.open()) == 53

    assert _run("clean", "--input", docs, "--out", clean, "--min-words", "20") == 0
    out = capsys.readouterr().out
    rows = [json.loads(x) for x in clean.open()]
    assert len(rows) == 51  # "too short" and the digit run fail quality
    html_doc = next(r["text"] for r in rows if r["source"].endswith("b.txt"))
    assert "<p>" not in html_doc and "Home" not in html_doc and "rights reserved" not in html_doc
    assert "<EMAIL>" in html_doc and "<PHONE>" in html_doc and "jane.doe" not in html_doc
    assert "pii replaced: email=1, phone=1" in out

    assert _run("dedup", "--input", clean, "--out", dedup, "--threshold", "0.7") == 0
    out = capsys.readouterr().out
    assert "exact_duplicate=5" in out and "near_duplicate=5" in out
    texts = [json.loads(x)["text"] for x in dedup.open()]
    assert len(texts) == 41 and len(set(texts)) == 41

    assert _run("pack", "--input", dedup, "--tokenizer", tokenizer_dir, "--out", packed, "--val-fraction", "0.1",
                "--shard-tokens", "2000", "--workers", "2") == 0
    out = capsys.readouterr().out
    assert "tokens/s" in out
    index = read_index(packed)
    n_docs = index["splits"]["train"]["num_docs"] + index["splits"]["validation"]["num_docs"]
    n_tok = sum(len(tokenizer.encode(t)) + 1 for t in texts)
    assert n_docs == 41 and sum(s["num_tokens"] for s in index["splits"].values()) == n_tok
    assert _run("pack", "--input", dedup, "--tokenizer", tokenizer_dir, "--out", packed,
                "--val-fraction", "0.2") == 2
    assert "different dataset (val_fraction" in capsys.readouterr().err

    loader = TokenBlockLoader(packed, batch_size=4, seq_len=32, seed=0)
    x, y = next(loader)
    assert x.shape == y.shape == (4, 32) and torch.equal(x[:, 1:], y[:, :-1])
    # every yielded window is a slice of the train stream
    stream = np.concatenate([np.fromfile(packed / s["file"], dtype=np.uint16)
                             for s in index["splits"]["train"]["shards"]])
    s0 = int(loader.sample_ids(0, 0)[0]) * 32
    assert x[0].tolist() == stream[s0:s0 + 32].tolist()
    assert tokenizer.eos_token_id in stream.tolist()

    assert _run("analyse", "--packed", packed, "--tokenizer", tokenizer_dir, "--out", tmp_path / "rep") == 0
    assert "## Vocabulary coverage" in (tmp_path / "rep/report.md").read_text()
    assert _run("inspect", packed) == 0 and "train:" in capsys.readouterr().out


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert _run("ingest", "--input", tmp_path / "missing.txt", "--out", tmp_path / "o.jsonl") == 2
    err = capsys.readouterr().err
    assert err.startswith("stellarbyte data: error:") and "no such file" in err
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\nnope\n')
    assert _run("ingest", "--input", tmp_path / "x.jsonl", "--out", tmp_path / "o.jsonl", "--strict") == 2
    assert "x.jsonl:2: bad json" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()  # no half-written output


def test_toyworld_handler_passes_arguments(tmp_path, monkeypatch, capsys):
    calls = {}

    def build_toyworld(out_dir, size="1MB", seed=0, **kw):
        calls.update(out_dir=out_dir, size=size, seed=seed, **kw)
        return {"seed": seed, "size": size, "files": {"pretrain/train.txt": {"bytes": 10, "documents": 2}}}

    monkeypatch.setitem(sys.modules, "stellarbyte.data.toyworld", types.SimpleNamespace(build_toyworld=build_toyworld))
    assert _run("toyworld", "--out", tmp_path / "tw", "--size", "5MB", "--seed", "3") == 0
    assert calls == {"out_dir": str(tmp_path / "tw"), "size": "5MB", "seed": 3}
    assert "pretrain/train.txt" in capsys.readouterr().out


def test_toyworld_to_loader_sft_and_preference(tmp_path, tokenizer_dir, tokenizer):
    pytest.importorskip("stellarbyte.data.toyworld")
    from stellarbyte.data.ingest import read_files
    from stellarbyte.data.preference import build_preference_pairs, collate_preference
    from stellarbyte.data.records import Stats
    from stellarbyte.data.sft import SFTConfig, build_sft_examples, pad_collate

    tw = tmp_path / "tw"
    assert _run("toyworld", "--out", tw, "--size", "1MB", "--seed", "0") == 0
    assert _run("pack", "--input", tw / "pretrain/train.txt", "--tokenizer", tokenizer_dir, "--out", tmp_path / "p",
                "--val-fraction", "0.05") == 0
    index = read_index(tmp_path / "p")
    assert index["splits"]["train"]["num_docs"] + index["splits"]["validation"]["num_docs"] == len(
        list(read_files([tw / "pretrain/train.txt"])))
    x, _ = next(TokenBlockLoader(tmp_path / "p", 8, 64))
    assert x.shape == (8, 64)

    stats = Stats("sft")
    sft = list(build_sft_examples((json.loads(x) for x in (tw / "sft/train.jsonl").open()), tokenizer,
                                  SFTConfig(max_length=256), stats))
    assert stats.seen > 100 and stats.kept == len(sft) and stats.kept >= 0.95 * stats.seen
    batch = pad_collate(sft[:16], tokenizer.pad_token_id)
    assert ((batch["labels"] != -100).sum(1) > 0).all()
    pstats = Stats("pref")
    pairs = list(build_preference_pairs((json.loads(x) for x in (tw / "preference/train.jsonl").open()),
                                        tokenizer, stats=pstats))
    assert pstats.seen > 100 and len(pairs) == pstats.kept >= 0.95 * pstats.seen
    assert collate_preference(pairs[:8], tokenizer.pad_token_id)["chosen_labels"].shape[0] == 8


def test_sft_and_preference_commands(tmp_path, tokenizer_dir, capsys):
    conv = tmp_path / "c.jsonl"
    conv.write_text("\n".join(json.dumps(x) for x in [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]},
        {"instruction": "Say the cat.", "output": "The cat."},
        {"messages": [{"role": "user", "content": "No reply"}]}]) + "\n")
    assert _run("sft", "--input", conv, "--tokenizer", tokenizer_dir, "--out", tmp_path / "s.jsonl") == 0
    out = capsys.readouterr().out
    assert "seen=3" in out and "kept=2" in out and "no_assistant_turn=1" in out
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").open()]
    assert len(rows) == 2 and all(len(r["input_ids"]) == len(r["labels"]) for r in rows)
    assert _run("sft", "--input", conv, "--tokenizer", tokenizer_dir, "--strict") == 2
    assert "example 2" in capsys.readouterr().err

    pref = tmp_path / "p.jsonl"
    pref.write_text(json.dumps({"prompt": "Q?", "chosen": "Yes.", "rejected": "No."}) + "\n{\"prompt\": \"x\"}\n")
    assert _run("preference", "--input", pref, "--tokenizer", tokenizer_dir, "--out", tmp_path / "q.jsonl") == 0
    assert "kept=1" in capsys.readouterr().out and len((tmp_path / "q.jsonl").read_text().splitlines()) == 1


def test_ingest_hf_cli_on_local_files(tmp_path, capsys):
    pytest.importorskip("datasets")
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps({"body": f"row {i}"}) + "\n" for i in range(7)))
    out = tmp_path / "o.jsonl"
    assert _run("ingest", "--hf", "json", "--data-files", src, "--text-field", "body", "--limit", "5",
                "--out", out) == 0
    assert [json.loads(x)["text"] for x in out.open()] == [f"row {i}" for i in range(5)]
    assert "seen=5" in capsys.readouterr().out
