"""The retained events, read back: search, find one by id, and walk a time window in the order
received. Reads only: the events streams are the listener's to write and the workers' to trim.

Events are kept on their partition's stream for ``RELAY_STREAM_RETENTION``; there is no index
beside them (the ingest path stays one write), so a search reads every event of its time window.
A window is chosen by ``received_at`` (the listener's clock); the streams are read by entry id
(Redis's clock) ``SKEW_MS`` wider on each side, and the events outside the window dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from relay.events import EVENT_ID, StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.streams import id_tuple, is_entry_id

SKEW_MS = 60_000
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Found:
    """One retained event: where it is (partition, entry id) and what it holds."""

    partition: int
    entry_id: str
    event: StreamEvent

    @property
    def order(self) -> tuple[int, int]:
        """The order the relay received it in (the entry id's time and sequence)."""
        return id_tuple(self.entry_id)


def _event(fields: dict[bytes, bytes]) -> StreamEvent | None:
    try:
        return StreamEvent.from_fields(fields)
    except (KeyError, ValueError):
        return None  # a poison entry: not an event


class EventLog:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def window(
        self, partition: int, since: int | None, until: int | None, *, newest_first: bool = False
    ) -> AsyncIterator[Found]:
        """The events of one partition received in ``[since, until]`` (unix ms, inclusive)."""
        low = "-" if since is None else str(max(0, since - SKEW_MS))
        high = "+" if until is None else str(max(0, until + SKEW_MS))
        stream = self.keys.events(partition)
        while True:
            if newest_first:
                found: Any = await self.redis.xrevrange(stream, high, low, count=BATCH)
            else:
                found = await self.redis.xrange(stream, low, high, count=BATCH)
            for entry_id, fields in found:
                event = _event(fields)
                if event is None:
                    continue
                if (since is None or event.received_at >= since) and (
                    until is None or event.received_at <= until
                ):
                    yield Found(partition, entry_id.decode(), event)
            if len(found) < BATCH:
                return
            last = found[-1][0].decode()
            if newest_first:
                high = f"({last}"
            else:
                low = f"({last}"

    async def received_since(self, since: int) -> AsyncIterator[Found]:
        """Every retained event received since ``since``, over all partitions, in the order received."""
        partitions = [self.window(p, since, None) for p in range(self.keys.partitions)]
        async for found in _merged(partitions, key=lambda f: f.order):
            yield found

    async def search(
        self, since: int | None, until: int | None, wanted: Callable[[StreamEvent], bool]
    ) -> list[Found]:
        """The events of the window that ``wanted`` keeps, newest first."""
        out: list[Found] = []
        for partition in range(self.keys.partitions):
            out.extend([f async for f in self.window(partition, since, until) if wanted(f.event)])
        out.sort(key=lambda f: (f.event.received_at, f.order), reverse=True)
        return out

    async def ingest_rate(self, least_span_ms: int = 60_000) -> float | None:
        """Events per second the streams hold: their entries over the time from the oldest to the
        newest, all partitions together; None when they span less than ``least_span_ms``."""
        total, first, last = 0, None, None
        for partition in range(self.keys.partitions):
            stream = self.keys.events(partition)
            total += int(await self.redis.xlen(stream))
            head: Any = await self.redis.xrange(stream, count=1)
            tail: Any = await self.redis.xrevrange(stream, count=1)
            if head and tail:
                oldest, newest = id_tuple(head[0][0])[0], id_tuple(tail[0][0])[0]
                first = oldest if first is None else min(first, oldest)
                last = newest if last is None else max(last, newest)
        if first is None or last is None or last - first < least_span_ms:
            return None
        return total / ((last - first) / 1000)

    async def at(self, partition: int, entry_id: str) -> Found | None:
        found: Any = await self.redis.xrange(self.keys.events(partition), entry_id, entry_id, count=1)
        event = _event(found[0][1]) if found else None
        return None if event is None else Found(partition, entry_id, event)

    async def find(self, event_id: str, entry: str | None) -> Found | None:
        """The event with this id (``StreamEvent.id``), or None. ``entry`` (``partition/entry id``,
        as the event's outcome log notes it) is looked at first; else its partition is read,
        newest first."""
        match = EVENT_ID.fullmatch(event_id)
        if match is None:
            return None
        if entry is not None:
            noted, _, entry_id = entry.partition("/")
            if noted.isdigit() and int(noted) < self.keys.partitions and is_entry_id(entry_id):
                found = await self.at(int(noted), entry_id)
                if found is not None and found.event.id == event_id:
                    return found
        partition = self.keys.partition_of(bytes.fromhex(match.group(1)))
        async for found in self.window(partition, None, None, newest_first=True):
            if found.event.id == event_id:
                return found
        return None


async def _merged(
    sources: list[AsyncIterator[Found]], key: Callable[[Found], tuple[int, int]]
) -> AsyncIterator[Found]:
    """Sorted iterators merged into one, in ``key`` order (each read as the merge needs it)."""
    heads: list[tuple[tuple[int, int], int, Found]] = []
    for n, source in enumerate(sources):
        first = await anext(source, None)
        if first is not None:
            heads.append((key(first), n, first))
    heapq.heapify(heads)
    while heads:
        _, n, found = heapq.heappop(heads)
        yield found
        following = await anext(sources[n], None)
        if following is not None:
            heapq.heappush(heads, (key(following), n, following))
