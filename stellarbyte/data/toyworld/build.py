"""Build a toy world on disk: `build_toyworld(out_dir, size="1MB", seed=0) -> manifest`.

Layout written (every file streamed to a temp name and os.replace'd; manifest.json last, so a directory with a
manifest is a complete dataset):
    pretrain/train.txt, pretrain/val.txt  documents separated by one blank line; no document has a blank line
    sft/train.jsonl, sft/val.jsonl        {"messages": [{"role", "content"}, ...]}
    preference/train.jsonl                {"prompt", "chosen", "rejected"}
    rl/train.jsonl                        training task records (same form as the held-out ones) for RL rewards
    eval/heldout.jsonl                    {"question", "answer", "kind", "task"}: never seen in any training file
    manifest.json                         seed, size, version, world scale, counts, bytes and SHA-256 per file,
                                          pretrain mixture, held-out design and chance level per kind

Contracts:
- Deterministic: the same (seed, size) gives byte-identical files (each stream has its own seeded RNG; no clocks,
  no set iteration order, no salted hashes).
- Size: total bytes of all data files within a few percent of `size` (budgets per file, generation stops at them).
- Memory: documents are generated and written one at a time; only the world (people, towns) is held in memory.
- An out_dir that holds a different dataset (other seed, size or version) is an error, not overwritten, unless
  overwrite=True; the same dataset is returned from its manifest without regenerating.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from . import heldout
from .arithmetic import arithmetic_document
from .encyclopedia import encyclopedia_document
from .faq import faq_document
from .heldout import ADD_MAX
from .lists import list_document
from .preference import preference_pair
from .sampler import TaskSampler
from .sft import conversation
from .stories import story_document
from .text import ShuffledCycle, child_rng
from .world import World, WorldScale, make_world
from .writer import AtomicWriter, write_json_atomic

VERSION = "toyworld-1"
MIN_SIZE = 200_000
MAX_SIZE = 200 * 10**9
VAL_EVERY = 20  # every 20th document / conversation goes to validation: exactly 5%
# shares of the bytes left after the held-out eval file
FILE_SHARES = {"pretrain": 0.62, "sft": 0.28, "preference": 0.065, "rl": 0.035}
PRETRAIN_MIXTURE = {"story": 0.27, "encyclopedia": 0.27, "faq": 0.08, "arithmetic": 0.20, "lists": 0.18}
OUR_ENTRIES = {"pretrain", "sft", "preference", "rl", "eval", "manifest.json"}
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_size(size: str | int) -> int:
    """'1MB' -> 1_000_000 (decimal units; KiB/MiB/GiB are binary), an int is a byte count."""
    if isinstance(size, bool):
        raise ValueError("size must be a byte count or a string like '1MB', not a bool")
    if isinstance(size, int):
        n = size
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(size))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot parse size {size!r}; use a byte count or a number with KB, MB, GB (e.g. '50MB')")
        n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if not MIN_SIZE <= n <= MAX_SIZE:
        raise ValueError(f"size {size!r} = {n} bytes is outside [{MIN_SIZE}, {MAX_SIZE}]; pick e.g. '1MB' or '1GB'")
    return n


def _check_out_dir(out: Path, seed: int, size_bytes: int, overwrite: bool) -> dict[str, Any] | None:
    """Return the existing manifest when out already holds exactly this dataset; raise if it holds another one."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a directory path")
    if not out.exists():
        return None
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = {}
        same = (old.get("version"), old.get("seed"), old.get("size_bytes")) == (VERSION, seed, size_bytes)
        complete = same and all((out / rel).is_file() and (out / rel).stat().st_size == info["bytes"]
                                for rel, info in old.get("files", {}).items())
        if complete and not overwrite:
            return old
        if not same and not overwrite:
            raise FileExistsError(
                f"{out} already holds a different toy world (version={old.get('version')}, seed={old.get('seed')}, "
                f"size_bytes={old.get('size_bytes')}); choose another output directory, delete it, or pass "
                "overwrite=True (--overwrite on the command line)"
            )
        manifest_path.unlink()  # from here on the directory is not a complete dataset
        return None
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUR_ENTRIES and not p.name.startswith("."))
    if foreign and not overwrite:
        raise FileExistsError(
            f"{out} is not empty and not a toy world (it holds {foreign[:5]}); use an empty directory"
        )
    return None


def _write_pretrain(out: Path, world: World, seed: int, budget: int) -> dict[str, Any]:
    rng = child_rng(seed, "pretrain")
    # round-robin subjects so every person, town and country is covered evenly (random picks are too lumpy)
    heroes, bios, quizzes = (ShuffledCycle(rng, world.people) for _ in range(3))
    towns, countries = ShuffledCycle(rng, [t.name for t in world.towns]), ShuffledCycle(rng, world.country_by_name)
    add_tables = ShuffledCycle(rng, list(range(1, ADD_MAX + 1)))
    makers = {
        "story": lambda: story_document(rng, world, heroes.next()),
        "encyclopedia": lambda: encyclopedia_document(rng, world, bios.next(), towns.next(), countries.next()),
        "faq": lambda: faq_document(rng, seed, world, quizzes.next()),
        "arithmetic": lambda: arithmetic_document(rng, seed, world, add_tables),
        "lists": lambda: list_document(rng, seed),
    }
    written = dict.fromkeys(makers, 0)
    docs = Counter()
    with AtomicWriter(out / "pretrain/train.txt") as train, AtomicWriter(out / "pretrain/val.txt") as val:
        n = 0
        while train.bytes + val.bytes < budget:
            # the type furthest below its byte share goes next: exact mixture, deterministic
            kind = min(makers, key=lambda k: written[k] / PRETRAIN_MIXTURE[k])
            doc = makers[kind]()
            assert "\n\n" not in doc and doc.strip() == doc, f"{kind} document broke the blank-line rule"
            n += 1
            w = val if n % VAL_EVERY == 0 else train
            written[kind] += w.write(doc if w.records == 0 else "\n\n" + doc)
            w.records += 1
            docs[kind] += 1
        train.write("\n")
        val.write("\n")
    files = {"pretrain/train.txt": train, "pretrain/val.txt": val}
    return {"files": {k: {"bytes": w.bytes, "sha256": w.sha256, "documents": w.records} for k, w in files.items()},
            "mixture": {k: {"documents": docs[k], "bytes": written[k]} for k in makers}}


def _write_jsonl(out: Path, rels: list[str], budget: int, make: Any) -> dict[str, Any]:
    """Stream records from `make()` into rels (train, optional val every VAL_EVERY-th) until budget bytes."""
    writers = [AtomicWriter(out / rel) for rel in rels]
    try:
        n = 0
        while sum(w.bytes for w in writers) < budget:
            n += 1
            target = writers[1] if len(writers) > 1 and n % VAL_EVERY == 0 else writers[0]
            target.write_json_line(make())
        for w in writers:
            w.commit()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return {rel: {"bytes": w.bytes, "sha256": w.sha256, "records": w.records} for rel, w in zip(rels, writers)}


def build_toyworld(out_dir: str | os.PathLike[str], size: str | int = "1MB", seed: int = 0, *,
                   overwrite: bool = False) -> dict[str, Any]:
    """Generate the toy world dataset into out_dir and return its manifest (also written as manifest.json)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    size_bytes = parse_size(size)
    out = Path(out_dir)
    existing = _check_out_dir(out, seed, size_bytes, overwrite)
    if existing is not None:
        return existing
    out.mkdir(parents=True, exist_ok=True)

    mb = size_bytes / 1e6
    world = make_world(seed, WorldScale.for_size(size_bytes))
    files: dict[str, dict[str, Any]] = {}

    # 1. held-out evaluation set first: its size is fixed by the world, the rest of the budget is shared out after
    eval_sampler = TaskSampler(world, seed, child_rng(seed, "eval"))
    records = eval_sampler.heldout_records(max_facts=1000, lists_per_op=int(min(500, max(20, 40 * mb**0.5))))
    with AtomicWriter(out / "eval/heldout.jsonl") as w:
        for r in records:
            w.write_json_line(r)
    files["eval/heldout.jsonl"] = {"bytes": w.bytes, "sha256": w.sha256, "records": w.records}
    rest = max(size_bytes - w.bytes, 0)

    # 2. pretraining text, 3. SFT, 4. preference pairs, 5. RL prompts: each its own seeded stream
    pre = _write_pretrain(out, world, seed, int(rest * FILE_SHARES["pretrain"]))
    files.update(pre["files"])
    sft_sampler = TaskSampler(world, seed, child_rng(seed, "sft"))
    files.update(_write_jsonl(out, ["sft/train.jsonl", "sft/val.jsonl"], int(rest * FILE_SHARES["sft"]),
                              lambda: conversation(sft_sampler)))
    pref_sampler = TaskSampler(world, seed, child_rng(seed, "preference"))
    files.update(_write_jsonl(out, ["preference/train.jsonl"], int(rest * FILE_SHARES["preference"]),
                              lambda: preference_pair(pref_sampler)))
    rl_sampler = TaskSampler(world, seed, child_rng(seed, "rl"))
    files.update(_write_jsonl(out, ["rl/train.jsonl"], int(rest * FILE_SHARES["rl"]), rl_sampler.train_record))

    kinds: dict[str, dict[str, float]] = {}
    for r in records:
        k = kinds.setdefault(r["kind"], {"count": 0, "chance": 0.0})
        k["count"] += 1
        k["chance"] += r["task"]["chance"]
    for k in kinds.values():
        k["chance"] = round(k["chance"] / k["count"], 6)
    manifest = {
        "name": "toyworld",
        "version": VERSION,
        "seed": seed,
        "size": str(size),
        "size_bytes": size_bytes,
        "total_bytes": sum(f["bytes"] for f in files.values()),
        "world": {"people": len(world.people), "towns": len(world.towns), "countries": len(world.countries),
                  "facts": len(world.facts())},
        "files": dict(sorted(files.items())),
        "splits": {"pretrain": {"train": "pretrain/train.txt", "val": "pretrain/val.txt"},
                   "sft": {"train": "sft/train.jsonl", "val": "sft/val.jsonl"},
                   "preference": {"train": "preference/train.jsonl"}, "rl": {"train": "rl/train.jsonl"},
                   "eval": {"heldout": "eval/heldout.jsonl"}, "val_fraction": 1 / VAL_EVERY},
        "counts": {"pretrain_documents": {k: v["documents"] for k, v in pre["mixture"].items()},
                   "sft_conversations": files["sft/train.jsonl"]["records"] + files["sft/val.jsonl"]["records"],
                   "preference_pairs": files["preference/train.jsonl"]["records"],
                   "rl_tasks": files["rl/train.jsonl"]["records"], "heldout_tasks": len(records)},
        "pretrain_mixture_bytes": {k: v["bytes"] for k, v in pre["mixture"].items()},
        "heldout": {
            "fractions": {"facts": heldout.FACT_HELDOUT_FRACTION, "add_pairs": heldout.ADD_HELDOUT_FRACTION,
                          "add_orders": heldout.SWAP_HELDOUT_FRACTION,
                          "lists": heldout.LIST_HELDOUT_FRACTION},
            "held_out_facts": len(eval_sampler.heldout_facts),
            "held_out_add_pairs": [list(p) for p in heldout.heldout_add_pairs(seed)],
            "held_out_add_orders": [list(p) for p in heldout.heldout_add_orders(seed)],
            "kinds": dict(sorted(kinds.items())),
            "design": "facts: stated in pretraining, question never asked in training; add: unordered pairs never "
                      "shown in any training text (nor their inverse subtractions); add_swap: ordered pairs whose "
                      "mirror order is in training; lists: multisets never used in training in any order. "
                      "chance = mean over the kind's items of 1/number of candidate answers.",
        },
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def load_heldout(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The held-out evaluation records of a built toy world (see tasks.check_answer to score responses)."""
    out = Path(out_dir)
    path = out / "eval/heldout.jsonl"
    if not (out / "manifest.json").is_file() or not path.is_file():
        raise FileNotFoundError(f"{out} is not a complete toy world (no manifest.json or eval/heldout.jsonl); "
                                f"build it with `stellarbyte data toyworld --out {out}`")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
