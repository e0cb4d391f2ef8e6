"""Documents, per-step statistics and atomic file writes shared by the data pipeline.

Contracts:
- A `Document` is one unit of text plus where it came from (`source`, e.g. "corpus.jsonl:17") and a stable `id`.
- Every pipeline step owns one `Stats`: how many documents it saw, kept, removed (by reason) and changed, so the
  CLI can print a table and nothing disappears silently.
- Files are written to a temporary name in the same directory and moved into place with `os.replace`, so a reader
  never sees a half-written file (POSIX rename within one filesystem is atomic).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Document:
    """One document: its text, a stable id and where it came from."""

    text: str
    id: str = ""
    source: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source}


@dataclass(slots=True)
class Stats:
    """What one step did: documents seen, kept, removed (with reasons) and changed in place."""

    step: str
    seen: int = 0
    kept: int = 0
    changed: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def removed(self) -> int:
        return self.seen - self.kept

    def remove(self, reason: str) -> None:
        self.reasons[reason] += 1

    def as_dict(self) -> dict:
        return {"step": self.step, "seen": self.seen, "kept": self.kept, "removed": self.removed,
                "changed": self.changed, "reasons": dict(sorted(self.reasons.items()))}

    def line(self) -> str:
        why = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items()))
        return (f"{self.step:<12} seen={self.seen:<8} kept={self.kept:<8} removed={self.removed:<7} "
                f"changed={self.changed:<7}{'  (' + why + ')' if why else ''}")


def format_stats(stats: Iterable[Stats]) -> str:
    """One line per step, for the CLI."""
    return "\n".join(s.line() for s in stats)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file beside `path`; on success move it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, docs: Iterable[Document]) -> int:
    """Write documents as jsonl ({"id", "text", "source"} per line) atomically; returns the count."""
    n = 0
    with atomic_write(path) as f:
        for doc in docs:
            f.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def count_iter(it: Iterator, stats: Stats) -> Iterator:
    """Pass items through, counting them as seen and kept (for steps that never drop)."""
    for x in it:
        stats.seen += 1
        stats.kept += 1
        yield x
