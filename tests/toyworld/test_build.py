"""build_toyworld: layout, determinism, size, atomic writes, and what happens to an existing output directory."""

from __future__ import annotations

import hashlib
import json

import pytest

import stellarbyte.data.toyworld.build as build_mod
from stellarbyte.data.toyworld import build_toyworld, load_heldout, parse_size

LAYOUT = ["eval/heldout.jsonl", "preference/train.jsonl", "pretrain/train.txt", "pretrain/val.txt",
          "rl/train.jsonl", "sft/train.jsonl", "sft/val.jsonl"]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_and_manifest(world_dir, manifest):
    assert sorted(manifest["files"]) == LAYOUT
    for rel, info in manifest["files"].items():
        path = world_dir / rel
        assert path.stat().st_size == info["bytes"] and _sha(path) == info["sha256"], rel
    assert manifest["seed"] == 0 and manifest["size_bytes"] == 1_000_000 and manifest["version"] == "toyworld-1"
    assert not [p for p in world_dir.rglob(".*")], "temp files left behind"


def test_size_is_what_was_asked(manifest):
    assert abs(manifest["total_bytes"] - 1_000_000) / 1_000_000 < 0.05  # brief: +-20%; we stop at byte budgets
    files = manifest["files"]
    pretrain = files["pretrain/train.txt"]["bytes"] + files["pretrain/val.txt"]["bytes"]
    assert 0.5 < pretrain / manifest["total_bytes"] < 0.7
    assert 0.03 < files["pretrain/val.txt"]["bytes"] / pretrain < 0.07


def test_pretrain_documents_are_separated_by_one_blank_line(world_dir, pretrain_docs, manifest):
    text = (world_dir / "pretrain/train.txt").read_text()
    assert text.endswith("\n") and not text.endswith("\n\n") and "\n\n\n" not in text
    assert all(d and d == d.strip() and "\n\n" not in d for d in pretrain_docs)
    n_docs = manifest["files"]["pretrain/train.txt"]["documents"] + manifest["files"]["pretrain/val.txt"]["documents"]
    assert len(pretrain_docs) == n_docs == sum(manifest["counts"]["pretrain_documents"].values())
    mix = manifest["pretrain_mixture_bytes"]
    total = sum(mix.values())
    for kind, share in build_mod.PRETRAIN_MIXTURE.items():
        assert abs(mix[kind] / total - share) < 0.02, kind


def test_jsonl_schemas(world_dir, heldout):
    for r in heldout:
        assert set(r) == {"question", "answer", "kind", "task"} and r["task"]["kind"] == r["kind"]
        assert 0 < r["task"]["chance"] <= 1
    for line in (world_dir / "preference/train.jsonl").read_text().splitlines():
        assert set(json.loads(line)) == {"prompt", "chosen", "rejected"}
    assert load_heldout(world_dir) == heldout


def test_same_seed_and_size_is_byte_identical(tmp_path, world_dir, manifest):
    again = build_toyworld(tmp_path / "again", "1MB", seed=0)
    assert again == manifest
    for rel in LAYOUT + ["manifest.json"]:
        assert (tmp_path / "again" / rel).read_bytes() == (world_dir / rel).read_bytes(), rel


def test_other_seed_gives_another_world_and_small_sizes_work(tmp_path, manifest):
    m = build_toyworld(tmp_path / "s1", "300KB", seed=1)
    assert abs(m["total_bytes"] - 300_000) / 300_000 < 0.2
    assert m["files"]["pretrain/train.txt"]["sha256"] != manifest["files"]["pretrain/train.txt"]["sha256"]
    assert m["heldout"]["held_out_add_pairs"] != manifest["heldout"]["held_out_add_pairs"]


def test_world_scales_with_size():
    small, big = build_mod.WorldScale.for_size(10**6), build_mod.WorldScale.for_size(10**9)
    assert small.n_people == 60 and big.n_people > 10_000 and big.n_countries > small.n_countries


def test_existing_directory_rules(tmp_path, world_dir, manifest):
    # the same dataset: returned from its manifest, nothing rewritten
    before = (world_dir / "pretrain/train.txt").stat().st_mtime_ns
    assert build_toyworld(world_dir, "1MB", 0) == manifest
    assert (world_dir / "pretrain/train.txt").stat().st_mtime_ns == before
    # a different dataset: refused with a message naming the fix
    with pytest.raises(FileExistsError, match="different toy world.*seed=0"):
        build_toyworld(world_dir, "1MB", seed=5)
    with pytest.raises(FileExistsError, match="different toy world"):
        build_toyworld(world_dir, "2MB", seed=0)
    # a directory with someone else's files: refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a toy world"):
        build_toyworld(other, "300KB")
    # a file where a directory should be
    with pytest.raises(NotADirectoryError):
        build_toyworld(other / "notes.txt", "300KB")


def test_overwrite_replaces_a_different_dataset(tmp_path):
    out = tmp_path / "w"
    build_toyworld(out, "300KB", seed=1)
    m = build_toyworld(out, "300KB", seed=2, overwrite=True)
    assert m["seed"] == 2 and json.loads((out / "manifest.json").read_text())["seed"] == 2


def test_a_failed_build_leaves_no_manifest_and_no_partial_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = build_mod.story_document

    def flaky(rng, world, hero=None):
        calls["n"] += 1
        if calls["n"] > 50:
            raise RuntimeError("disk full (simulated)")
        return real(rng, world, hero)

    monkeypatch.setattr(build_mod, "story_document", flaky)
    out = tmp_path / "broken"
    with pytest.raises(RuntimeError, match="simulated"):
        build_toyworld(out, "300KB", seed=0)
    assert not (out / "manifest.json").exists()
    assert not (out / "pretrain/train.txt").exists() and not list(out.rglob(".*tmp*"))
    with pytest.raises(FileNotFoundError, match="not a complete toy world"):
        load_heldout(out)
    monkeypatch.setattr(build_mod, "story_document", real)
    assert build_toyworld(out, "300KB", seed=0)["seed"] == 0  # the leftover directory is ours: rebuilt


@pytest.mark.parametrize("text, n", [("1MB", 10**6), ("50MB", 50 * 10**6), ("1GB", 10**9), ("1.5mb", 1_500_000),
                                     ("2MiB", 2 * 2**20), (300_000, 300_000), (" 500 KB ", 500_000)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad, message", [("1 parsec", "cannot parse"), ("MB", "cannot parse"), (10, "outside"),
                                          ("10TB", "outside"), (True, "bool"), ("-1MB", "cannot parse")])
def test_parse_size_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_size(bad)


def test_bad_seed(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        build_toyworld(tmp_path / "x", "300KB", seed=-1)


def test_cli_run_prints_a_table(tmp_path, capsys):
    import argparse

    from stellarbyte.data.toyworld.cli import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "cli"), "--size", "300KB", "--seed", "3"])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "pretrain/train.txt" in out and "MB/s" in out and "fact_home" in out
    assert json.loads((tmp_path / "cli/manifest.json").read_text())["seed"] == 3


@pytest.mark.slow  # two fresh interpreters importing torch: ~9 s on 2 cores
def test_determinism_across_processes_and_hash_seeds(tmp_path):
    """Set iteration order and str hashing change with PYTHONHASHSEED; the files must not."""
    import os
    import subprocess
    import sys

    code = ("import json, sys; from stellarbyte.data.toyworld.build import build_toyworld; "
            "m = build_toyworld(sys.argv[1], '300KB', 4); "
            "print(json.dumps({k: v['sha256'] for k, v in m['files'].items()}))")
    shas = []
    for hash_seed, name in (("1", "a"), ("12345", "b")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], env=env, capture_output=True,
                              text=True, check=True, cwd=os.getcwd())
        shas.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert shas[0] == shas[1] and len(shas[0]) == len(LAYOUT)
