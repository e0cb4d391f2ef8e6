"""`stellarbyte tokenizer train|encode|info` and `stellarbyte bench tokenizer`, run in-process."""

from __future__ import annotations

import csv

from stellarbyte.cli import main
from stellarbyte.tokenizer import ByteTokenizer


def test_train_encode_info(tmp_path, corpus_file, capsys):
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--input", corpus_file, "--vocab-size", "400", "--out", str(out),
                 "--model", "bpe"]) == 0
    assert "vocab_size=400" in capsys.readouterr().out
    tok = ByteTokenizer.from_pretrained(out)
    assert tok.vocab_size == 400

    assert main(["tokenizer", "encode", "--tokenizer", str(out), "The cat<|im_end|>"]) == 0
    printed = capsys.readouterr().out
    ids = tok.encode("The cat<|im_end|>")
    assert f"ids ({len(ids)}): {ids}" in printed and "<|im_end|>" in printed

    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--add-special-tokens", "hi"]) == 0
    assert f"{[1, *tok.encode('hi')]}" in capsys.readouterr().out

    assert main(["tokenizer", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "vocab_size:  400" in info and "model:       bpe" in info and "<|reserved_8|>" in info


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xc3\x28\n")
    assert main(["tokenizer", "train", "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.txt:2: invalid UTF-8" in err
    assert main(["tokenizer", "train", "--input", str(bad), "--vocab-size", "10", "--out", str(tmp_path / "o")]) == 2
    assert "use at least 272" in capsys.readouterr().err
    assert main(["tokenizer", "info", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_bench_tokenizer_small(tmp_path, corpus_file, capsys):
    out_csv = tmp_path / "bench.csv"
    assert main(["bench", "tokenizer", "--input", corpus_file, "--max-bytes", "20000", "--vocab-size", "400",
                 "--repeats", "1", "--csv", str(out_csv)]) == 0
    rows = {r["row"]: r for r in csv.DictReader(out_csv.open())}
    assert set(rows) == {"train/tokenizers-bpe", "train/teaching-bpe", "train/production",
                         "encode/1-process-rust-threads", "encode/1-process-1-thread", "encode/2-processes",
                         "encode/teaching-bpe"}
    assert all(float(r["MB/s"]) > 0 for r in rows.values())
    assert "merges equal: True" in rows["train/teaching-bpe"]["note"]
    assert rows["encode/2-processes"]["note"].startswith("same ids")
    assert "tokenizer benchmark:" in capsys.readouterr().out
