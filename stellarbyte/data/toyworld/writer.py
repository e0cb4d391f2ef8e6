"""A streaming, atomic file writer: bytes go to a temp file beside the target and appear only on commit.

Contract: until `commit()` the target path is untouched (an interrupted build leaves no half-written file under the
final name); `commit()` flushes, fsyncs and `os.replace`s the temp file, which is atomic on POSIX. The writer counts
bytes and hashes them (SHA-256) as they stream, so the manifest can record both without re-reading gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class AtomicWriter:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._f = open(self.tmp, "wb", buffering=1 << 20)  # noqa: SIM115 -- closed in commit/abort
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.records = 0

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self._f.write(data)
        self._sha.update(data)
        self.bytes += len(data)
        return len(data)

    def write_json_line(self, obj: Any) -> int:
        self.records += 1
        return self.write(json.dumps(obj, ensure_ascii=False) + "\n")

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def commit(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    with AtomicWriter(path) as w:
        w.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
