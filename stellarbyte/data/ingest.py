"""Ingest: turn local txt / jsonl / parquet files or a Hugging Face `datasets` dataset into `Document`s.

References: the jsonl-per-line convention of most open corpora (The Pile, RedPajama, FineWeb exports); pyarrow's
`ParquetFile.iter_batches` for reading parquet in bounded memory; `datasets.load_dataset(..., streaming=True)`,
which returns an `IterableDataset` so a hub-sized corpus is read row by row instead of downloaded whole.

Contract:
- Everything is a generator: memory stays bounded by one batch / line, whatever the input size.
- Bad input never crashes silently. With `strict=False` (the default) a bad record is skipped and counted in
  `Stats.reasons` (empty_file, empty_doc, invalid_utf8, bad_json, not_an_object, missing_field, non_string_field);
  with `strict=True` the first one raises ValueError naming the file, the line and the fix.
- Invalid UTF-8 inside a txt file is decoded with U+FFFD replacement (strict: an error) and counted as `changed`;
  in jsonl a line is a record, so an undecodable line is skipped as `invalid_utf8`.
- Configuration errors (a parquet column that does not exist, an unknown format, a missing path) always raise.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stellarbyte.data.records import Document, Stats

FORMATS = ("auto", "txt", "jsonl", "parquet")
_SUFFIXES = {".txt": "txt", ".md": "txt", ".text": "txt", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
             ".parquet": "parquet", ".pq": "parquet"}


@dataclass(slots=True)
class IngestConfig:
    """How to read raw inputs.

    text_field: key of the text in a jsonl / parquet / datasets record; dots reach into nested objects ("meta.body").
    txt_mode: "paragraph" = one document per blank-line-separated block; "file" = one document per file.
    strict: raise on the first bad record instead of skipping and counting it.
    """

    text_field: str = "text"
    id_field: str | None = "id"
    source_field: str | None = "source"  # kept from a record that has it (jsonl written by an earlier step)
    txt_mode: str = "paragraph"
    format: str = "auto"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.txt_mode not in ("paragraph", "file"):
            raise ValueError(f"txt_mode must be 'paragraph' or 'file', got {self.txt_mode!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if not self.text_field:
            raise ValueError("text_field must be a non-empty key such as 'text'")


def _bad(stats: Stats, config: IngestConfig, reason: str, where: str, fix: str) -> None:
    """Count a skipped record, or raise in strict mode."""
    if config.strict:
        raise ValueError(f"{where}: {reason.replace('_', ' ')}; {fix} (or run without strict mode to skip it)")
    stats.remove(reason)


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def detect_format(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = _SUFFIXES.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the format from the suffix; use .txt/.jsonl/.parquet or pass "
                         f"format='txt'|'jsonl'|'parquet' (--format)")
    return fmt


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, directories expanded to their known-format files (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                           and any(s.lower() in _SUFFIXES for s in f.suffixes))
            if not found:
                raise FileNotFoundError(f"{p}: directory holds no .txt/.jsonl/.parquet files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


def _get_field(record: dict, dotted: str):
    cur = record
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def _record_to_doc(record, config: IngestConfig, stats: Stats, where: str, default_id: str,
                   source: str) -> Document | None:
    """Validate one dict-like record (jsonl line, parquet row, datasets row) and build its Document."""
    if not isinstance(record, dict):
        _bad(stats, config, "not_an_object", where, "each line must be a JSON object like {\"text\": ...}")
        return None
    text = _get_field(record, config.text_field)
    if text is None:
        keys = ", ".join(sorted(map(str, record))[:8])
        _bad(stats, config, "missing_field", where,
             f"no field {config.text_field!r} (keys: {keys}); pass text_field=... (--text-field)")
        return None
    if not isinstance(text, str):
        _bad(stats, config, "non_string_field", where, f"field {config.text_field!r} must be a string")
        return None
    if not text.strip():
        _bad(stats, config, "empty_doc", where, "remove empty documents")
        return None
    doc_id = record.get(config.id_field) if config.id_field else None
    origin = record.get(config.source_field) if config.source_field else None
    stats.kept += 1
    return Document(text=text, id=str(doc_id) if doc_id is not None else default_id,
                    source=origin if isinstance(origin, str) and origin else source)


def read_txt(path: Path, config: IngestConfig, stats: Stats) -> Iterator[Document]:
    with _open_bytes(path) as f:
        raw = f.read()
    if not raw.strip():
        stats.seen += 1
        _bad(stats, config, "empty_file", str(path), "remove the empty file")
        return
    try:
        text = raw.decode("utf-8")
        repaired = False
    except UnicodeDecodeError as err:
        if config.strict:
            raise ValueError(f"{path}: invalid UTF-8 at byte {err.start}; re-encode the file as UTF-8 "
                             f"(or run without strict mode to replace bad bytes with U+FFFD)") from err
        text, repaired = raw.decode("utf-8", errors="replace"), True
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if config.txt_mode == "file":
        blocks = [text]
    else:
        # a paragraph = lines up to the next blank (whitespace-only) line
        blocks, cur = [], []
        for line in text.split("\n"):
            if line.strip():
                cur.append(line)
            elif cur:
                blocks.append("\n".join(cur))
                cur = []
        if cur:
            blocks.append("\n".join(cur))
    for i, block in enumerate(blocks):
        stats.seen += 1
        if not block.strip():  # only reachable in file mode with whitespace-only text
            _bad(stats, config, "empty_doc", f"{path} block {i}", "remove the empty document")
            continue
        stats.kept += 1
        if repaired and "\ufffd" in block:
            stats.changed += 1
        yield Document(text=block.strip("\n"), id=f"{path.name}:{i}", source=str(path))


def _read_json_array(path: Path, config: IngestConfig, stats: Stats) -> Iterator[Document]:
    """A .json file holding one array of records (loaded whole: such files are small by nature)."""
    try:
        with _open_bytes(path) as f:
            records = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON array of records ({err}); fix the file or convert it to "
                         f"jsonl (one object per line)") from err
    if not records:
        stats.seen += 1
        _bad(stats, config, "empty_file", str(path), "remove the empty file")
        return
    for i, record in enumerate(records):
        stats.seen += 1
        doc = _record_to_doc(record, config, stats, f"{path}[{i}]", f"{path.name}:{i}", str(path))
        if doc is not None:
            yield doc


def _starts_with_bracket(path: Path) -> bool:
    with _open_bytes(path) as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[")


def read_jsonl(path: Path, config: IngestConfig, stats: Stats) -> Iterator[Document]:
    """One JSON object per line; a .json file that holds a single array of objects is read as that array."""
    if ".json" in path.suffixes and _starts_with_bracket(path):
        yield from _read_json_array(path, config, stats)
        return
    empty = True
    with _open_bytes(path) as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            empty = False
            stats.seen += 1
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                _bad(stats, config, "invalid_utf8", where, f"byte {err.start} is not UTF-8; re-encode the file")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                _bad(stats, config, "bad_json", where, f"not valid JSON ({err.msg} at column {err.colno})")
                continue
            doc = _record_to_doc(record, config, stats, where, f"{path.name}:{lineno}", str(path))
            if doc is not None:
                yield doc
    if empty:
        stats.seen += 1
        _bad(stats, config, "empty_file", str(path), "remove the empty file")


def read_parquet(path: Path, config: IngestConfig, stats: Stats, batch_size: int = 1024) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("reading parquet needs pyarrow: pip install 'stellarbyte[data]' (or pip install "
                          "pyarrow)") from err
    pf = pq.ParquetFile(path)
    column = config.text_field.split(".")[0]
    names = pf.schema_arrow.names
    if column not in names:
        raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(names)}); pass text_field=... "
                         f"(--text-field)")
    if pf.metadata.num_rows == 0:
        stats.seen += 1
        _bad(stats, config, "empty_file", str(path), "remove the empty file")
        return
    columns = [column] + ([config.id_field] if config.id_field and config.id_field in names else [])
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):  # bounded memory: one batch at a time
        for record in batch.to_pylist():
            stats.seen += 1
            doc = _record_to_doc(record, config, stats, f"{path}:row {row}", f"{path.name}:{row}", str(path))
            row += 1
            if doc is not None:
                yield doc


def read_files(paths: Iterable[str | os.PathLike], config: IngestConfig | None = None,
               stats: Stats | None = None) -> Iterator[Document]:
    """Documents from local files or directories, in path order; counts go into `stats`."""
    config = config or IngestConfig()
    stats = stats if stats is not None else Stats("ingest")
    readers = {"txt": read_txt, "jsonl": read_jsonl, "parquet": read_parquet}
    for path in expand_paths(paths):
        fmt = detect_format(path) if config.format == "auto" else config.format
        yield from readers[fmt](path, config, stats)


def read_hf_dataset(path: str, config: IngestConfig | None = None, stats: Stats | None = None, *,
                    split: str = "train", subset: str | None = None, streaming: bool = True,
                    data_files=None, limit: int | None = None, **load_kwargs) -> Iterator[Document]:
    """Documents from a Hugging Face dataset: a hub name ("HuggingFaceFW/fineweb-edu") or a builder such as
    "json"/"parquet"/"text" with `data_files` for local files. `streaming=True` reads row by row (IterableDataset),
    so a hub-scale corpus is never downloaded or held whole. `datasets` is an optional dependency."""
    config = config or IngestConfig()
    stats = stats if stats is not None else Stats("ingest")
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as err:
        raise ImportError("Hugging Face datasets are optional: pip install 'stellarbyte[data]' "
                          "(or pip install datasets)") from err
    ds = datasets.load_dataset(path, subset, split=split, streaming=streaming, data_files=data_files, **load_kwargs)
    for i, record in enumerate(ds):
        if limit is not None and i >= limit:
            break
        stats.seen += 1
        doc = _record_to_doc(dict(record), config, stats, f"{path}[{split}] row {i}", f"{path}:{split}:{i}", path)
        if doc is not None:
            yield doc
