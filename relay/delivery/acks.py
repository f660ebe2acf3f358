"""Batched completion: acknowledgements, scheduled retries and attempt records, one round trip.

Deliveries finish at their own pace; each hands its entry's completion (and its attempt record)
here without waiting. One flusher sends everything queued in a single pipeline: per partition one
script that schedules the retries and acks the entries together, plus the attempt logs, plus any
script call queued to go ``along`` (a circuit breaker's change after an attempt: it needs no
round trip of its own, and its reply comes in a future). While a flush is on the wire the next
batch gathers, so under load a round trip carries many entries.
Of each webhook's records only the newest ``kept`` are held (older ones would be trimmed anyway);
each record goes to its event's log as well, beside the webhooks each event matched. That matched
record is held until the event's first attempt record, or its entry's acknowledgement, so both
go to the event's log in one LPUSH (``relay.store.attempts``); at most ``MATCHED_HELD`` are held.

The queue is bounded: past ``bound`` completions waiting, ``room`` is cleared and the readers
stop reading until a flush brings it down, so a slow or stalled Redis cannot make it grow
without bound. A flush that fails is tried again a few times; if Redis stays away the entries
simply stay pending and are reclaimed later (delivered again: at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import structlog

from relay.delivery.retry import DueTimes, Retry
from relay.delivery.tally import Tally
from relay.store.attempts import AttemptRecord, Attempts
from relay.store.connect import RedisClient
from relay.store.scripts import Script, ScriptPipeline
from relay.store.streams import Entry, Streams

log = structlog.get_logger("relay.delivery")

MAX_BATCH = 1000
LINGER = 0.02
"""Seconds a flush waits for more to gather when fewer than ``FULL`` are queued: a round trip
costs the process, and Redis (its read, its reply, its AOF write), far more CPU than the entries
it carries, so under load batches are made big. Only acknowledgements and attempt records wait:
a delivery is never held back by it."""
FULL = 200
PER_SCRIPT = 400
"""Most entries one script call acks (its argument list stays small)."""
TRIES = 4
MATCHED_HELD = 4096
"""Matched records held at most, waiting for their event's first attempt or acknowledgement;
past it the oldest is written alone (its entry's deliveries are slow, or ended in an error)."""
EventRecords = dict[str, list[AttemptRecord | bytes]]


@dataclass(frozen=True, slots=True)
class Completion:
    """What finishing one entry writes: its retries, and its acknowledgement."""

    entry: Entry
    retries: tuple[Retry, ...] = ()
    event_id: str = ""
    """The id of the event an events-stream entry holds (its held matched record goes with the
    acknowledgement); "" for others."""


@dataclass(frozen=True, slots=True)
class _Along:
    """A script call sent with the next batch; its reply (or error) goes to ``reply``."""

    script: Script
    keys: list[str]
    args: list[Any]
    reply: asyncio.Future[Any]


class Completer:
    def __init__(
        self,
        *,
        redis: RedisClient,
        streams: Streams,
        attempts: Attempts,
        due: DueTimes,
        bound: int = MAX_BATCH,
    ) -> None:
        self.redis = redis
        self.streams = streams
        self.attempts = attempts
        self.due = due
        """Told the earliest retry written to each partition, once it is written."""
        self.bound = max(1, bound)
        self.tally = Tally()
        self.room = asyncio.Event()
        """Set while fewer than ``bound`` completions wait: readers read only then."""
        self.room.set()
        self._done: list[Completion] = []
        self._records: dict[int, deque[AttemptRecord]] = {}
        self._events: dict[str, list[AttemptRecord | bytes]] = {}
        self._matched: dict[str, bytes] = {}
        """Matched records held, by event id (oldest first)."""
        self._trims: set[str] = set()
        """Event logs an LPUSH took past ``kept``: trimmed in the next flush."""
        self._along: list[_Along] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._done)

    def complete(self, completion: Completion) -> None:
        if self._matched and completion.event_id:
            self._release(completion.event_id)
        self._done.append(completion)
        if len(self._done) >= self.bound:
            self.room.clear()
        self._kick()

    def record(self, webhook_id: int, record: AttemptRecord) -> None:
        kept = self._records.get(webhook_id)
        if kept is None:
            if self.attempts.kept <= 0:
                return
            kept = self._records[webhook_id] = deque(maxlen=self.attempts.kept)
        kept.append(record)
        if self._matched:
            self._release(record.event_id)
        self._by_event(record.event_id, record)

    def matched(self, event_id: str, record: bytes) -> None:
        """Note in the event's log which webhooks it matched (``attempts.matched_record``): held
        until its first attempt record or its acknowledgement."""
        if self.attempts.kept <= 0 or not event_id:
            return
        if len(self._matched) >= MATCHED_HELD:
            oldest = next(iter(self._matched))
            self._release(oldest)
        self._matched[event_id] = record

    def _release(self, event_id: str) -> None:
        """The event's held matched record, if any, goes to its log now."""
        held = self._matched.pop(event_id, None)
        if held is not None:
            self._by_event(event_id, held)

    def along(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Send one call of ``script`` with the next batch; the future gives its reply, or the
        error that stopped it (the batch could not be sent, or the call failed)."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._along.append(_Along(script, keys, args, reply))
        self._kick()
        return reply

    def _by_event(self, event_id: str, record: AttemptRecord | bytes) -> None:
        if event_id:
            self._events.setdefault(event_id, []).append(record)
        self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="delivery-acks")

    async def drained(self) -> None:
        """Wait until everything queued so far has been sent."""
        await self._idle.wait()

    async def stop(self, grace: float) -> None:
        """Send what is queued (within ``grace`` seconds), then stop."""
        for held in list(self._matched):
            self._release(held)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.drained()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.tally.flush()
        for call in self._along:
            call.reply.cancel()
        self._along.clear()
        if self._done:
            log.warning("entries left unacknowledged at stop; they will be reclaimed", count=len(self._done))

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            if len(self._done) < FULL:
                await asyncio.sleep(LINGER)
            self._wakeup.clear()
            while self._done or self._records or self._events or self._trims or self._along:
                done, self._done = self._done[:MAX_BATCH], self._done[MAX_BATCH:]
                records, self._records = self._records, {}
                events, self._events = self._events, {}
                along, self._along = self._along, []
                await self._flush(done, records, events, along)
                if len(self._done) < self.bound:
                    self.room.set()
                self.tally.flush()
            self.tally.flush()
            if not (self._done or self._records or self._events or self._trims or self._along):
                self._idle.set()

    async def _flush(
        self,
        done: list[Completion],
        records: dict[int, deque[AttemptRecord]],
        events: EventRecords,
        along: list[_Along],
    ) -> None:
        for attempt in range(TRIES):
            along = [call for call in along if not call.reply.done()]  # each is sent until answered
            try:
                await self._send(done, records, events, along)
                for completion in done:
                    self.due.written(completion.entry.partition, completion.retries)
                return
            except Exception as exc:  # retried, then left to the reclaimer
                if attempt == TRIES - 1:
                    log.warning(
                        "cannot acknowledge entries; they will be reclaimed",
                        entries=len(done),
                        error=type(exc).__name__,
                    )
                    for call in along:
                        if not call.reply.done():
                            call.reply.set_exception(exc)
                    return
                await asyncio.sleep(0.1 * 3**attempt)

    async def _send(
        self,
        done: list[Completion],
        records: dict[int, deque[AttemptRecord]],
        events: EventRecords,
        along: list[_Along],
    ) -> None:
        by_partition: dict[int, list[Completion]] = defaultdict(list)
        for completion in done:
            by_partition[completion.entry.partition].append(completion)
        calls = [
            (partition, items[i : i + PER_SCRIPT])
            for partition, items in by_partition.items()
            for i in range(0, len(items), PER_SCRIPT)
        ]
        pipe = ScriptPipeline(self.redis)
        for partition, chunk in calls:
            scheduled = [(retry.due_ms, retry.member()) for c in chunk for retry in c.retries]
            self.streams.queue_complete(pipe, partition, [c.entry for c in chunk], scheduled)
        acks = len(pipe.pipe)
        for call in along:
            pipe.call(call.script, call.keys, call.args)
        for webhook_id, items in records.items():
            self.attempts.queue(pipe.pipe, webhook_id, [record.dumps() for record in items])
        pushes: list[int] = []
        for event_id, logged in events.items():
            raws = [r if isinstance(r, bytes) else r.dumps() for r in logged[-self.attempts.kept :]]
            pushes.append(len(pipe.pipe))
            self.attempts.queue_event(pipe.pipe, event_id, raws, trim=False)
        trims, self._trims = self._trims, set()
        for event_id in trims:
            self.attempts.trim_event(pipe.pipe, event_id)
        results = await pipe.execute()
        for call, reply in zip(along, results[acks : acks + len(along)], strict=True):
            if isinstance(reply, BaseException):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)
        kept = self.attempts.kept
        for event_id, at in zip(events, pushes, strict=True):
            length = results[at]
            if isinstance(length, int) and length > kept:
                self._trims.add(event_id)
        failed = next((r for r in results[:acks] if isinstance(r, BaseException)), None)
        if failed is not None:  # the acks are sent again; a lost attempt record is not
            raise failed
