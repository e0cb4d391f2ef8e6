"""Chaining cleaning steps over a document stream, each with its own `Stats`.

A step is any callable `step(text) -> (new_text, None)` to keep (possibly changed) or `(None, reason)` to drop,
with a `name` attribute. Stateful steps (exact and near dedup) fit the same shape: they remember what they saw.
`run_steps` wires them lazily, so memory stays bounded by what the steps themselves keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from stellarbyte.data.records import Document, Stats


class Step(Protocol):
    name: str

    def __call__(self, text: str) -> tuple[str | None, str | None]: ...


def _decisions(step: Step, docs: Iterable[Document], batch_size: int):
    """(doc, (new_text, reason)) pairs; steps with a `batch(texts)` method (near dedup) get whole batches."""
    if not hasattr(step, "batch"):
        for doc in docs:
            yield doc, step(doc.text)
        return
    buf: list[Document] = []
    for doc in docs:
        buf.append(doc)
        if len(buf) == batch_size:
            yield from zip(buf, step.batch([d.text for d in buf]))
            buf = []
    if buf:
        yield from zip(buf, step.batch([d.text for d in buf]))


def apply_step(step: Step, docs: Iterable[Document], stats: Stats, batch_size: int = 1024) -> Iterator[Document]:
    for doc, (new_text, reason) in _decisions(step, docs, batch_size):
        stats.seen += 1
        if new_text is None:
            stats.remove(reason or "removed")
            continue
        stats.kept += 1
        if new_text != doc.text:
            stats.changed += 1
            doc = Document(text=new_text, id=doc.id, source=doc.source)
        yield doc


def run_steps(docs: Iterable[Document], steps: list[Step]) -> tuple[Iterator[Document], list[Stats]]:
    """Chain `steps` over `docs`; returns the lazy output stream and one Stats per step (filled as it is consumed)."""
    all_stats = []
    stream: Iterable[Document] = docs
    for step in steps:
        stats = Stats(step.name)
        all_stats.append(stats)
        stream = apply_step(step, stream, stats)
    return iter(stream), all_stats
