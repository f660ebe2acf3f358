"""The ingest write: one script call per callback, calls from concurrent requests pipelined.

Requests do not each await a Redis round trip of their own: ``IngestWriter.write`` queues the
call and waits for its own reply, while one flusher sends every queued call in a single pipeline.
Under load a round trip carries many callbacks; each request is still answered only after Redis
has acknowledged its own write.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog
from redis.exceptions import NoScriptError

from relay.callback import Callback
from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import INGEST

log = structlog.get_logger("relay.ingest")

_FIELDS = 10  # StreamEvent.to_fields() has ten fields


@dataclass(slots=True)
class _Call:
    keys: list[str]
    args: list[str | bytes | int]
    future: asyncio.Future[int]


def _retrieve(future: asyncio.Future[int]) -> None:
    """Mark a late outcome as seen: its request may have timed out and answered 503 already."""
    if not future.cancelled():
        future.exception()


class IngestWriter:
    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        *,
        dedup_window: float,
        timeout: float,
        max_batch: int = 512,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.window_ms = max(1, int(dedup_window * 1000))
        self.timeout = timeout
        self.max_batch = max_batch
        self._queue: list[_Call] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="ingest-flusher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for call in self._queue:
            if not call.future.done():
                call.future.set_exception(ConnectionError("the relay is shutting down"))
        self._queue.clear()

    def call_for(
        self, callback: Callback, events: list[StreamEvent]
    ) -> tuple[list[str], list[str | bytes | int]]:
        digest = callback.digest
        partition = self.keys.partition_of(digest)
        keys = [self.keys.dedup(partition, digest.hex()), self.keys.events(partition)]
        args: list[str | bytes | int] = [self.window_ms, _FIELDS]
        for event in events:
            for name, value in event.to_fields().items():
                args.append(name)
                args.append(value)
        return keys, args

    async def write(self, callback: Callback, events: list[StreamEvent]) -> bool:
        """True when the events were appended, False when the body is a repeat inside the window.

        Raises ``redis.RedisError``, ``ConnectionError`` or ``TimeoutError`` when Redis did not
        acknowledge the write in time; the write may still land, and then the dedup claim makes
        CallFire's retry of the same body a no-op, so nothing is enqueued twice.
        """
        keys, args = self.call_for(callback, events)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._queue.append(_Call(keys, args, future))
        self._wakeup.set()
        async with asyncio.timeout(self.timeout):
            written = await asyncio.shield(future)
        return written > 0

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._flush(batch)

    async def _flush(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                results = await self._send(batch)
                retry = [c for c, r in zip(batch, results, strict=True) if isinstance(r, NoScriptError)]
                if retry:  # Redis restarted and forgot the script
                    await INGEST.load(self.redis)
                    again = await self._send(retry)
                    results = [again.pop(0) if isinstance(r, NoScriptError) else r for r in results]
        except Exception as exc:
            results = [exc] * len(batch)
        for call, result in zip(batch, results, strict=True):
            if call.future.done():
                continue
            if isinstance(result, BaseException):
                call.future.set_exception(result)
            else:
                call.future.set_result(int(result))  # type: ignore[call-overload]

    async def _send(self, batch: list[_Call]) -> list[object]:
        pipe = self.redis.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(INGEST.sha, len(call.keys), *call.keys, *call.args)
        return list(await pipe.execute(raise_on_error=False))
