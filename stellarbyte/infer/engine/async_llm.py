"""AsyncLLM: per-request streaming over one LLMEngine, for servers (asyncio).

Reference: vLLM's AsyncLLMEngine (a background loop steps the engine; each request reads its own queue).
  generate(...) is an async iterator of RequestOutput, one per step that advanced the request (token ids
  and text so far); the last has finished=True.
  The background loop runs engine.step() in a worker thread so the event loop keeps serving; the engine is
  only touched between steps: adds and aborts from coroutines wait in a pending list the loop applies.
  A consumer that stops early (client disconnect -> task cancelled, or aclose()) aborts its request, and
  the engine frees its KV blocks before the next step.
Contract: a bad request raises ValueError at the first iteration (before any output), so a server can
answer 400 before it starts a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

from stellarbyte.infer.engine.llm_engine import LLMEngine
from stellarbyte.infer.engine.outputs import RequestOutput
from stellarbyte.infer.engine.sampling_params import SamplingParams


class AsyncLLM:
    def __init__(self, engine: LLMEngine) -> None:
        self.engine = engine
        self._queues: dict[str, asyncio.Queue] = {}
        self._pending: list[tuple] = []  # ("add", ids, params, rid, prompt) | ("abort", rid)
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._ids = itertools.count()

    async def generate(self, prompt_token_ids: list[int], params: SamplingParams | None = None,
                       request_id: str | None = None, prompt: str | None = None) -> AsyncIterator[RequestOutput]:
        params = params or SamplingParams()
        ids = self.engine.check_request(prompt_token_ids, params)
        rid = f"async-{next(self._ids)}" if request_id is None else request_id
        if rid in self._queues:
            raise ValueError(f"request_id {rid!r} is already streaming; pass a unique id")
        queue: asyncio.Queue = asyncio.Queue()
        self._queues[rid] = queue
        self._submit(("add", ids, params, rid, prompt))
        finished = False
        try:
            while not finished:
                out = await queue.get()
                if isinstance(out, BaseException):
                    raise out
                finished = out.finished
                yield out
        finally:
            self._queues.pop(rid, None)
            if not finished:
                self._submit(("abort", rid))

    async def abort(self, request_id: str) -> None:
        self._submit(("abort", request_id))

    def _submit(self, op: tuple) -> None:
        self._pending.append(op)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop())
        self._wakeup.set()

    def _apply_pending(self) -> None:
        ops, self._pending = self._pending, []
        for op in ops:
            if op[0] == "add":
                _, ids, params, rid, prompt = op
                if rid in self._queues:  # not cancelled before it started
                    self.engine.add_request(ids, params, request_id=rid, prompt=prompt)
            elif op[1] in self.engine.requests:
                self.engine.abort_request(op[1])

    async def _loop(self) -> None:
        while True:
            if not self._pending and not self.engine.has_unfinished_requests():
                self._wakeup.clear()
                await self._wakeup.wait()
            try:
                self._apply_pending()
                if not self.engine.has_unfinished_requests():
                    continue
                outputs = await asyncio.to_thread(self.engine.step)
            except Exception as err:  # fail every waiting stream with the cause, then keep serving
                for rid, queue in list(self._queues.items()):
                    queue.put_nowait(err)
                    if rid in self.engine.requests:
                        self.engine.abort_request(rid)
                continue
            for out in outputs:
                queue = self._queues.get(out.request_id)
                if queue is not None:
                    queue.put_nowait(out)

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
