"""Streaming plumbing: merge several engine streams into one, and turn "text so far" into safe deltas.

Contracts:
  - MergedStreams runs one asyncio task per prompt (a request with a list of prompts is several engine
    requests) and yields (prompt_index, RequestOutput) in arrival order. cancel() is synchronous on purpose:
    when a client disconnects, Starlette cancels the response task and keeps re-cancelling every await
    inside it, so cleanup cannot await. Cancelling a task raises CancelledError inside AsyncLLM.generate,
    whose finally aborts the request; the engine frees its KV blocks before its next step.
  - DeltaTracker sends only text that can no longer change: while a completion runs it holds back a
    trailing U+FFFD (an incomplete UTF-8 character of a byte-level BPE token) and any suffix that could be
    the start of a stop string (the engine cuts a stop string from the text once it is complete, so text
    sent early could not be taken back). On the last output everything left is sent. Joined deltas therefore
    equal the non-streamed text exactly (tests/serve pin it). The same idea as vLLM's incremental detokenizer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from stellarbyte.infer.engine.outputs import CompletionOutput, RequestOutput

_DONE = object()


class MergedStreams:
    def __init__(self, streams: list[AsyncIterator[RequestOutput]]) -> None:
        self._streams = streams
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._open = len(streams)
        self.finished = [False] * len(streams)

    async def _pump(self, index: int, stream: AsyncIterator[RequestOutput]) -> None:
        try:
            async for out in stream:
                self._queue.put_nowait((index, out))
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # a failed step: surface it to the reader
            self._queue.put_nowait((index, err))
        finally:
            self._queue.put_nowait((index, _DONE))

    def __aiter__(self) -> MergedStreams:
        return self

    async def __anext__(self) -> tuple[int, RequestOutput]:
        if not self._tasks and self._streams:  # start lazily: a response that never runs starts nothing
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._pump(i, s)) for i, s in enumerate(self._streams)]
        while self._open:
            index, item = await self._queue.get()
            if item is _DONE:
                self._open -= 1
                continue
            if isinstance(item, BaseException):
                self.cancel()
                raise item
            self.finished[index] = item.finished
            return index, item
        raise StopAsyncIteration

    @property
    def all_finished(self) -> bool:
        return all(self.finished)

    def cancel(self) -> None:
        """Abort every engine request still running (synchronous: safe inside a cancelled task)."""
        for task in self._tasks:
            if not task.done():
                task.cancel()


@dataclass(slots=True)
class Delta:
    text: str
    token_ids: list[int]  # tokens generated since the previous delta
    logprobs: list[dict[int, float]] | None
    finish_reason: str | None


@dataclass(slots=True)
class DeltaTracker:
    stop: list[str] = field(default_factory=list)
    sent_text: str = ""
    sent_tokens: int = 0
    done: bool = False

    def _held_back(self, text: str) -> int:
        """How many trailing characters might still change."""
        hold = len(text) - len(text.rstrip("\ufffd"))
        body = text[:len(text) - hold]
        for s in self.stop:
            for k in range(min(len(s) - 1, len(body)), 0, -1):
                if body.endswith(s[:k]):
                    return hold + k
        return hold

    def update(self, completion: CompletionOutput) -> Delta | None:
        """The next delta of one completion, or None when nothing new can be sent yet."""
        if self.done:
            return None
        finished = completion.finish_reason is not None
        text = completion.text
        safe = text if finished else text[:len(text) - self._held_back(text)]
        new_text = safe[len(self.sent_text):] if safe.startswith(self.sent_text) else ""
        new_ids = completion.token_ids[self.sent_tokens:]
        if not new_text and not new_ids and not finished:
            return None
        lps = completion.logprobs[self.sent_tokens:] if completion.logprobs is not None else None
        if new_text:
            self.sent_text += new_text
        self.sent_tokens = len(completion.token_ids)
        self.done = finished
        return Delta(new_text, list(new_ids), lps, completion.finish_reason)
