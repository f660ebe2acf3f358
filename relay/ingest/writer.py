"""The ingest write: concurrent callbacks batched into shared script calls, one pipeline.

Requests do not each await a Redis round trip of their own: ``IngestWriter.submit`` queues the
callback and gives a future of its own reply, while one flusher sends every queued callback in a
single redis-py pipeline (its public API), up to ``CALLBACKS_PER_SCRIPT`` per INGEST call. Under
load a round trip carries many callbacks; each request is still answered only after Redis has
acknowledged its own write. The script is called in one place, ``IngestWriter.ingest_call``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError

from relay import metrics
from relay.events import entries_of
from relay.ingest.parsing import Callback
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import INGEST, ScriptPipeline

log = structlog.get_logger("relay.ingest")


class NotReplicated(RedisError):
    """Fewer replicas than RELAY_REDIS_MIN_REPLICAS acknowledged a write in time."""

    def __init__(self, replicas: object) -> None:
        super().__init__(f"only {replicas} replica(s) acknowledged the write in time")


CALLBACKS_PER_SCRIPT = 64
"""Callbacks one INGEST call writes at most. Redis runs a script without serving anyone else,
so this bounds how long one call holds it (well under a millisecond at this size); a batch
larger than this goes as several calls in the same round trip."""


def _per_call(calls: list[_Call], reply: object) -> list[object]:
    """Each call's result from one INGEST reply: its count, or the error that ended the call."""
    if isinstance(reply, list) and len(reply) == len(calls):
        return reply
    if not isinstance(reply, Exception):
        reply = ResponseError(f"unexpected INGEST reply: {reply!r:.80}")
    return [reply] * len(calls)


@dataclass(slots=True, kw_only=True)
class _Call:
    keys: list[str]
    args: list[str | bytes | int]
    future: asyncio.Future[int]
    deadline: float
    """Loop time by which the request gets its answer, written or not."""


class IngestWriter:
    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        *,
        dedup_window: float,
        timeout: float,
        max_batch: int = 512,
        min_replicas: int = 0,
    ) -> None:
        self.redis = redis
        self.min_replicas = min_replicas
        self.keys = keys
        self.window_ms = max(1, int(dedup_window * 1000))
        self.timeout = timeout
        self.max_batch = max_batch
        self._queue: list[_Call] = []
        self._sending: list[_Call] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="ingest-flusher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for call in [*self._sending, *self._queue]:
            if not call.future.done():
                call.future.set_exception(ConnectionError("the relay is shutting down"))
        self._queue.clear()

    def call_for(
        self, callback: Callback, received_at: int, traceparent: str = ""
    ) -> tuple[list[str], list[str | bytes | int]]:
        """The callback's keys and arguments in an INGEST call: each event's entry, as
        ``relay.events.entries_of`` packs it (``events_of`` makes the same events, field for
        field); ``traceparent``: its trace's context, when it is traced."""
        digest = callback.digest
        digest_hex = digest.hex()
        partition = self.keys.partition_of(digest)
        keys = [self.keys.dedup(partition, digest_hex), self.keys.events(partition)]
        args: list[str | bytes | int] = [len(callback.events)]
        for meta, text in entries_of(callback, received_at, traceparent):
            args += (meta, text)
        return keys, args

    def submit(self, callback: Callback, received_at: int, traceparent: str = "") -> asyncio.Future[int]:
        """Queue the callback's write; the future gives the script's reply (1: appended, 0: a
        repeat inside the window) once Redis acknowledged it, or the error that stopped it:
        ``redis.RedisError``, ``ConnectionError`` or ``TimeoutError`` when Redis did not
        acknowledge the write in time. The write may still land, and then the dedup claim makes
        CallFire's retry of the same body a no-op, so nothing is enqueued twice."""
        keys, args = self.call_for(callback, received_at, traceparent)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        # No timer per request: the flusher answers every call by its deadline (see _expire).
        self._queue.append(_Call(keys=keys, args=args, future=future, deadline=loop.time() + self.timeout))
        self._wakeup.set()
        return future

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                self._sending = self._expire(batch)
                if self._sending:
                    metrics.INGEST_BATCH.observe(len(self._sending))
                    await self._flush(self._sending)
                self._sending = []

    @staticmethod
    def _expire(batch: list[_Call]) -> list[_Call]:
        """The calls still to send. One whose deadline passed while it waited its turn gets
        TimeoutError, unsent; the others go in a pipeline cut at the earliest deadline among them,
        so every request is answered within ``timeout`` without a timer of its own."""
        now = asyncio.get_running_loop().time()
        live: list[_Call] = []
        for call in batch:
            if call.future.done():  # its request is gone (the client left)
                continue
            if call.deadline <= now:
                call.future.set_exception(TimeoutError("Redis did not answer in time"))
                continue
            live.append(call)
        return live

    async def _flush(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout_at(min(call.deadline for call in batch)):
                results = await self._send(batch)
                retry = [c for c, r in zip(batch, results, strict=True) if isinstance(r, NoScriptError)]
                if retry:  # Redis restarted and forgot the script (loaded again by now): these
                    again = await self._send(retry)  # go again, each with its replica barrier
                    results = [again.pop(0) if isinstance(r, NoScriptError) else r for r in results]
        except RedisClusterException as exc:  # e.g. no node reachable: as unavailable as Redis gets
            results = [RedisError(f"Redis Cluster: {exc}")] * len(batch)
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
        """One round trip on redis-py's pipeline: the batch's INGEST calls (several callbacks per
        call on one server; one per call on a cluster, whose callbacks' keys do not share a
        slot), then the replica barriers; each call's result, in order."""
        step = 1 if isinstance(self.redis, RedisCluster) else CALLBACKS_PER_SCRIPT
        chunks = [batch[i : i + step] for i in range(0, len(batch), step)]
        pipe = ScriptPipeline(self.redis)
        for chunk in chunks:
            self.ingest_call(pipe, chunk)
        groups = await self._replica_barriers(pipe.pipe, batch) if self.min_replicas else []
        replies = await pipe.execute(resend=False)
        results = [r for chunk, reply in zip(chunks, replies, strict=False) for r in _per_call(chunk, reply)]
        barriers = replies[len(chunks) :]
        for index, members in enumerate(groups):
            error = self._unreplicated(barriers[2 * index + 1])
            if error is None:
                continue
            for member in members:
                if not isinstance(results[member], Exception):
                    results[member] = error
        return results

    def _unreplicated(self, reply: object) -> Exception | None:
        """What a WAIT reply means for the writes behind it: None when enough replicas have them."""
        if isinstance(reply, int) and reply >= self.min_replicas:
            return None
        return reply if isinstance(reply, Exception) else NotReplicated(reply)

    def ingest_call(self, pipe: ScriptPipeline, calls: list[_Call]) -> None:
        """THE call of the INGEST script: one, on ``pipe``, writing ``calls`` in order."""
        keys = [key for call in calls for key in call.keys]
        args = [arg for call in calls for arg in call.args]
        pipe.call(INGEST, keys, [self.window_ms, *args])

    def _wait_ms(self) -> int:
        return max(1, int(self.timeout * 500))

    async def _replica_barriers(self, pipe: Any, batch: list[_Call]) -> list[list[int]]:
        """Append, per server the batch writes to, a WAIT for RELAY_REDIS_MIN_REPLICAS replicas.

        WAIT covers the writes made on its own connection, and a pipeline sends each server's
        commands on one connection. A duplicate writes nothing, yet its first copy (written by
        another connection) may not be replicated yet: the ``SET XX KEEPTTL`` of a dedup claim,
        a write that changes nothing, moves this connection past it. Returns the indexes of the
        calls behind each WAIT, in order.
        """
        cluster = self.redis if isinstance(self.redis, RedisCluster) else None
        if cluster is not None:
            await cluster.initialize()  # a no-op once the slots are known
        groups: dict[str, list[int]] = {}
        targets: dict[str, dict[str, Any]] = {}
        for index, call in enumerate(batch):
            node = cluster.get_node_from_key(call.keys[0]) if cluster is not None else None
            name = node.name if node is not None else ""
            groups.setdefault(name, []).append(index)
            targets[name] = {"target_nodes": node} if node is not None else {}
        wait_ms = self._wait_ms()
        for name, members in groups.items():
            pipe.set(batch[members[-1]].keys[0], "1", xx=True, keepttl=True)
            pipe.execute_command("WAIT", self.min_replicas, wait_ms, **targets[name])
        return list(groups.values())
