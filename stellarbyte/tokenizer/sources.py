"""Training text sources: .txt, .jsonl (one JSON object per line, text in a chosen field), .parquet, or an iterator.

Contract:
- `iter_texts(inputs, text_field)` yields non-empty `str` chunks, in file order, and never silently drops data:
  a problem (missing file, empty file, invalid UTF-8, a jsonl line that is not JSON or lacks the field, a parquet
  file without the column, pyarrow not installed) raises ValueError / FileNotFoundError naming the file, the line
  and the fix.
- A list or tuple means FILE PATHS (a directory expands to its .txt/.jsonl/.parquet files); any other iterable
  (a generator, `iter(list_of_strings)`) means TEXTS. A list is never guessed to be text, so a typo in a path
  cannot silently turn into a training sentence.
- .txt files are read in binary and decoded line by line, so an invalid byte is reported with its line number
  (Python's text mode would only say "position 123456" of some internal buffer). Lines are grouped into chunks of
  about `CHUNK_CHARS` characters: the trainer sees the file's newlines, and Python overhead per line is avoided.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".text", ".md")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
KNOWN_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
CHUNK_CHARS = 1 << 16  # ~64 KiB of text per yielded chunk for .txt files

InputsLike = str | os.PathLike | Iterable


def resolve_paths(inputs: str | os.PathLike | list | tuple) -> list[Path]:
    """Turn a path, or a list/tuple of paths (directories expand), into a checked list of existing files."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise ValueError("no input files given: pass at least one .txt/.jsonl/.parquet path")
    paths: list[Path] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise ValueError(f"input {item!r} is not a path; a list means file paths, to train on in-memory "
                             "strings pass an iterator instead, e.g. iter(texts)")
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in KNOWN_SUFFIXES)
            if not found:
                raise ValueError(f"directory {path} holds no {'/'.join(KNOWN_SUFFIXES)} files")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"input file not found: {path} (a list means file paths; to train on "
                                    "in-memory strings pass an iterator, e.g. iter(texts))")
    for path in paths:
        if path.suffix.lower() not in KNOWN_SUFFIXES:
            raise ValueError(f"{path}: unknown file type {path.suffix!r}; expected one of {', '.join(KNOWN_SUFFIXES)}"
                             " (rename the file or convert it)")
    return paths


def iter_texts(inputs: InputsLike, text_field: str = "text") -> Iterator[str]:
    """Yield the training text of `inputs` (paths or an iterator of strings; see the module docstring)."""
    if isinstance(inputs, (str, os.PathLike, list, tuple)):
        for path in resolve_paths(inputs):
            yield from iter_file(path, text_field)
        return
    if isinstance(inputs, (bytes, dict)) or not isinstance(inputs, Iterable):
        raise ValueError(f"inputs must be file paths or an iterator of strings, got {type(inputs).__name__}")
    for i, text in enumerate(inputs):
        if not isinstance(text, str):
            raise ValueError(f"text iterator item {i} is {type(text).__name__}, expected str")
        if text:
            yield text


def iter_file(path: Path, text_field: str = "text") -> Iterator[str]:
    """Yield the text of one file, dispatching on its suffix."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty; remove it from the inputs or give it some text")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _iter_jsonl(path, text_field)
    elif suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet(path, text_field)
    else:
        yield from _iter_txt(path)


def _decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.end].hex(" ")
        raise ValueError(
            f"{path}:{lineno}: invalid UTF-8 (byte {err.start} of the line: {bad}, {err.reason}); re-encode the file "
            "as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`, or remove the bad bytes") from None


def _iter_txt(path: Path) -> Iterator[str]:
    chunk: list[str] = []
    size = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode_line(raw, path, lineno)
            chunk.append(line)
            size += len(line)
            if size >= CHUNK_CHARS:
                yield "".join(chunk)
                chunk, size = [], 0
    if chunk:
        yield "".join(chunk)


def _iter_jsonl(path: Path, text_field: str) -> Iterator[str]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode_line(raw, path, lineno)
            if not line.strip():
                continue  # blank lines between records are tolerated
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno}); every line of "
                                 "a .jsonl file must be one JSON object") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            if text_field not in record:
                fields = ", ".join(sorted(map(str, record))) or "none"
                raise ValueError(f"{path}:{lineno}: no field {text_field!r} (fields: {fields}); choose the text "
                                 "field with --text-field / text_field=")
            text = record[text_field]
            if not isinstance(text, str):
                raise ValueError(f"{path}:{lineno}: field {text_field!r} is {type(text).__name__}, expected a string")
            if text:
                yield text


def _iter_parquet(path: Path, text_field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{path}: reading .parquet needs pyarrow, which is not installed; run "
                         "`pip install pyarrow` (or convert the file to .jsonl)") from None
    pf = pq.ParquetFile(path)
    columns = pf.schema_arrow.names
    if text_field not in columns:
        raise ValueError(f"{path}: no column {text_field!r} (columns: {', '.join(columns)}); choose the text column "
                         "with --text-field / text_field=")
    row = 0
    for batch in pf.iter_batches(columns=[text_field], batch_size=4096):
        for text in batch.column(0).to_pylist():
            row += 1
            if text is None:
                continue  # a null cell holds no text; nothing is lost
            if not isinstance(text, str):
                raise ValueError(f"{path}: row {row} column {text_field!r} is {type(text).__name__}, expected a "
                                 "string column")
            if text:
                yield text
