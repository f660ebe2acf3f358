"""A partition's reader: one loop that reads both of the partition's streams and dispatches.

Each pass: wait for room (in the process's capacity and in the acknowledgement queue), now and
then reclaim idle entries and trim, then reserve a batch of slots (twice what the last read found:
a few at a modest rate, up to ``READ_BATCH`` in a backlog) and take that many entries at most,
in one script that first moves due retries onto the deliveries stream; what the read did not use
is given back. Before entries read (or reclaimed) are matched, the webhook
view is brought up to the table's version as read *after* them (``WebhookView.refresh``): an
event whose callback came after a webhook change was answered is matched against that change.
On one server that version comes in the read's own round trip (``version=True``), so an event
waits for no extra round trip on its way; on a cluster it is read apart, after the entries.
When both streams are empty, block (XREADGROUP BLOCK, up to ``WAIT_BATCH`` entries of each,
their slots reserved) until one has something; a blocking read that found fewer than that had
emptied both streams, so the next pass blocks again at once (one round trip per wake-up, not two)
unless retries are to be moved. Redis errors back off (doubling, capped, jittered);
a lost group (Redis restarted empty) is created again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from relay.clock import Clock
from relay.delivery.capacity import Capacity
from relay.delivery.dispatch import Dispatcher
from relay.delivery.retry import DueTimes
from relay.store.streams import Entry, Streams, is_nogroup

log = structlog.get_logger("relay.delivery")

READ_BATCH = 100
"""Most entries one non-blocking read takes."""
WAIT_BATCH = 8
"""Entries of each stream a blocking read may return: a wake-up at a modest rate takes what came
while the last ones were dispatched in that one round trip."""
BLOCK_MS = 500
MOVE_EVERY = 0.5
"""Seconds between looks at the scheduled set when no retry is known to be due sooner."""
TRIM_EVERY = 30.0
CONSUMER_IDLE_MS = 3_600_000
"""A consumer (a worker process gone) idle this long with nothing pending is removed."""
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0


def light(limit: int) -> int:
    """Slots a reader holds for a read at a modest rate, blocking or not: ``2 * WAIT_BATCH``, a
    sixteenth of the process's bound ``limit`` at most, 2 at least (one entry of each stream).
    One reader a partition: together they hold a small share of the bound. Pure."""
    return max(2, min(2 * WAIT_BATCH, limit // 16))


def next_batch(found: int, least: int) -> int:
    """Slots the next non-blocking read reserves, the last read having found ``found`` entries:
    twice that, ``least`` (``light``) at least, ``READ_BATCH`` at most. Pure.

    Readers share the process's bound, and slots reserved for a read are nobody else's until its
    reply comes. Each read used to reserve ``READ_BATCH`` (all the room there was): at a modest
    rate a read finding two entries kept the other partitions' readers from reading for its
    round trip, and the next such read too; on the shared 2-core VM an entry waited up to 474 ms
    before its partition's reader got room (``python -m bench --only e2e``). A backlog still gets
    full reads after a few (4, 8, 16, ... 100 at a bound of 64), each bounded by the room."""
    return max(least, min(READ_BATCH, 2 * found))


def backoff(failures: int, clock: Clock) -> float:
    """Seconds to wait after ``failures`` failures in a row: 0.1, 0.2, 0.4 ... 2, jittered. Pure."""
    delay: float = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** max(0, failures - 1))
    return delay * (0.5 + clock.rand() / 2)


@dataclass(kw_only=True)
class PartitionReader:
    partition: int
    consumer: str
    streams: Streams
    dispatcher: Dispatcher
    capacity: Capacity
    due: DueTimes
    """When this process wrote a retry to the partition: looked at then."""
    reclaim_idle: float
    retention: float
    ready: asyncio.Event
    """Set once the webhook view is loaded: nothing is read before."""
    stopping: asyncio.Event
    """Set to stop: checked each pass, as a cancel landing inside a redis-py call can be lost."""
    clock: Clock
    beat: float = field(default_factory=time.monotonic)
    """When the loop last went round (monotonic): readiness reports a reader stuck."""
    _next_due: int | None = None
    _batch: int = 0
    """Slots the next non-blocking read reserves (``next_batch`` of the last read); 0: ``light``."""
    _drained: bool = False
    """The last blocking read found entries, fewer than it could take: both streams were empty
    after it, so the next pass blocks again (no non-blocking read first) unless a move is due."""
    _last_move: float = 0.0
    _last_claim: float = field(default_factory=time.monotonic)
    _last_trim: float = field(default_factory=time.monotonic)

    async def run(self) -> None:
        await self.ready.wait()
        groups_ready, failures = False, 0
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            try:
                if not groups_ready:
                    await self.streams.ensure_groups(self.partition)
                    groups_ready = True
                if not await self._room():
                    continue
                await self._maintain()
                await self._read()
            except Exception as exc:  # back off and go on; never spin, never die
                failures += 1
                if is_nogroup(exc):
                    groups_ready = False
                self._report(failures, exc)
                await asyncio.sleep(backoff(failures, self.clock))
                continue
            if failures:
                log.info("delivery reader recovered", partition=self.partition, failures=failures)
            failures = 0

    def _report(self, failures: int, exc: Exception) -> None:
        if failures == 1 or failures % 30 == 0:
            log.warning(
                "delivery reader cannot read; backing off",
                partition=self.partition,
                failures=failures,
                error=f"{type(exc).__name__}: {exc}"[:200],
            )

    async def _room(self) -> bool:
        """Wait (a second at most, so the loop keeps beating) for room to read into."""
        completer = self.dispatcher.completer
        if self.capacity.room() >= self.capacity.least and completer.room.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await completer.room.wait()
                await self.capacity.wait()
        return False

    async def _read(self) -> None:
        now_ms = self.clock.now_ms()
        mono = time.monotonic()
        hint = self.due.take(self.partition)
        if hint is not None:
            self._next_due = hint if self._next_due is None else min(self._next_due, hint)
        due = self._next_due is not None and now_ms >= self._next_due
        move = now_ms if due or mono - self._last_move >= MOVE_EVERY else None
        if self._drained and move is None:
            self._drained = False
            await self._wait()
            return
        self._drained = False
        count = self.capacity.reserve(self._batch or light(self.capacity.limit))
        if count == 0:
            return
        sent = asyncio.get_running_loop().time()
        try:
            entries, next_due, version = await self.streams.take(
                self.partition, self.consumer, count, move, version=True
            )
        except BaseException:
            self.capacity.give(count)
            raise
        if move is not None:
            self._next_due, self._last_move = next_due, mono
        self._batch = next_batch(len(entries), light(self.capacity.limit))
        await self._dispatch(entries, count, version, sent)
        if not entries:
            await self._wait()

    async def _wait(self) -> None:
        """Both streams are empty: block until either has an entry (or a retry comes due)."""
        block = BLOCK_MS
        if self._next_due is not None:
            block = max(1, min(block, self._next_due - self.clock.now_ms()))
        reserved = self.capacity.reserve(light(self.capacity.limit))
        if reserved < 2:  # room for one of each stream at least, as before (a soft bound)
            self.capacity.take(2 - reserved)
            reserved = 2
        each = reserved // 2
        sent = asyncio.get_running_loop().time()
        try:
            entries, version = await self.streams.wait(
                self.partition, self.consumer, block, version=True, count=each
            )
        except BaseException:
            self.capacity.give(reserved)
            raise
        self._drained = 0 < len(entries) < each
        self._batch = next_batch(len(entries), light(self.capacity.limit))
        await self._dispatch(entries, reserved, version, sent)

    async def _dispatch(
        self, entries: list[Entry], reserved: int, version: int | None = None, sent: float = 0.0
    ) -> None:
        """Hand each entry its reserved slot, once the webhook view has caught up with the table
        (read-your-writes): with the ``version`` read after the entries (in the round trip sent
        at ``sent``, loop time), or, None, with one read now. Give back the slots the read did
        not use."""
        self.capacity.give(reserved - len(entries))
        if not entries:
            return
        try:
            current = await self._catch_up(version, sent)
        except BaseException:
            self.capacity.give(len(entries))
            raise
        if not current:  # stopping: the entries stay pending, and are reclaimed
            self.capacity.give(len(entries))
            return
        for entry in entries:
            self.dispatcher.dispatch(entry)

    async def _catch_up(self, version: int | None, sent: float) -> bool:
        """``WebhookView.refresh``, retried (backing off, reading the version anew) while it
        fails, so entries read are only matched against a view known to be current. False if
        stopping came first."""
        failures = 0
        while not self.stopping.is_set():
            self.beat = time.monotonic()  # backing off, as the loop does: not stalled
            try:
                await self.dispatcher.view.refresh(version, sent)
                return True
            except Exception as exc:
                failures += 1
                version = None
                self._report(failures, exc)
            await asyncio.sleep(backoff(failures, self.clock))
        return False

    async def _maintain(self) -> None:
        mono = time.monotonic()
        if mono - self._last_claim >= max(0.2, self.reclaim_idle / 2):
            self._last_claim = mono
            count = self.capacity.reserve(READ_BATCH)
            try:
                claimed = (
                    await self.streams.claim(
                        self.partition, self.consumer, int(self.reclaim_idle * 1000), count
                    )
                    if count
                    else []
                )
            except BaseException:
                self.capacity.give(count)
                raise
            await self._dispatch(claimed, count)
            if claimed:
                log.info("entries reclaimed", partition=self.partition, count=len(claimed))
        if mono - self._last_trim >= TRIM_EVERY:
            self._last_trim = mono
            now_ms, retention_ms = self.clock.now_ms(), int(self.retention * 1000)
            for stream in self.streams.streams_of(self.partition):
                await self.streams.trim(stream, now_ms, retention_ms)
                await self.streams.drop_idle_consumers(stream, CONSUMER_IDLE_MS)
