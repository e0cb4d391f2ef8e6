"""One 1 MB toy world per test session (about 2 s to build), shared read-only by the toyworld tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stellarbyte.data.toyworld import build_toyworld
from stellarbyte.data.toyworld.world import WorldScale, make_world

TRAINING_FILES = ("pretrain/train.txt", "pretrain/val.txt", "sft/train.jsonl", "sft/val.jsonl",
                  "preference/train.jsonl", "rl/train.jsonl")


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toyworld") / "tw"
    build_toyworld(out, "1MB", seed=0)
    return out


@pytest.fixture(scope="session")
def manifest(world_dir: Path) -> dict:
    return json.loads((world_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def world(manifest: dict):
    return make_world(manifest["seed"], WorldScale.for_size(manifest["size_bytes"]))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def sft(world_dir: Path) -> list[dict]:
    return read_jsonl(world_dir / "sft/train.jsonl") + read_jsonl(world_dir / "sft/val.jsonl")


@pytest.fixture(scope="session")
def preference(world_dir: Path) -> list[dict]:
    return read_jsonl(world_dir / "preference/train.jsonl")


@pytest.fixture(scope="session")
def heldout(world_dir: Path) -> list[dict]:
    return read_jsonl(world_dir / "eval/heldout.jsonl")


@pytest.fixture(scope="session")
def pretrain_docs(world_dir: Path) -> list[str]:
    docs = []
    for split in ("train", "val"):
        text = (world_dir / f"pretrain/{split}.txt").read_text(encoding="utf-8")
        docs += text.rstrip("\n").split("\n\n")
    return docs


@pytest.fixture(scope="session")
def training_texts(world_dir: Path) -> dict[str, str]:
    """Each training file's text as the model would see it (JSON decoded, so escapes cannot hide a match)."""
    out = {}
    for rel in TRAINING_FILES:
        raw = (world_dir / rel).read_text(encoding="utf-8")
        if rel.endswith(".jsonl"):
            parts = []
            for line in raw.splitlines():
                obj = json.loads(line)
                if "messages" in obj:
                    parts += [m["content"] for m in obj["messages"]]
                else:
                    parts += [str(v) for k, v in obj.items() if k != "task"]
            raw = "\n".join(parts)
        out[rel] = raw
    return out
