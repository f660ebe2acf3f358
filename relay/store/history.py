"""The retained events of every partition, read back in the order they arrived.

Each partition's events stream keeps what the listener appended, acknowledged or not, until
``trim`` drops it. ``History.since`` reads them all from a time on with XRANGE, a batch per
partition at a time, merged by entry id (the ms Redis appended it, then its sequence), so the
first entries yielded are the oldest across partitions. Reading changes nothing: the consumer
group, its pending entries and the streams stay as they were.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.streams import id_tuple

BATCH = 1000
"""Entries read from one partition per XRANGE."""

StoredEntry = tuple[bytes, dict[bytes, bytes]]


class History:
    def __init__(self, redis: RedisClient, keys: Keys, batch: int = BATCH) -> None:
        self.redis = redis
        self.keys = keys
        self.batch = batch

    async def since(self, since_ms: int) -> AsyncIterator[StoredEntry]:
        """Every retained event appended at or after ``since_ms`` (unix ms), oldest first."""
        start = {p: f"{since_ms}-0" for p in range(self.keys.partitions)}
        buffers: dict[int, deque[StoredEntry]] = {}
        heads: list[tuple[tuple[int, int], int]] = []
        for p in list(start):
            buffers[p] = await self._read(p, start)
            if buffers[p]:
                heads.append((id_tuple(buffers[p][0][0]), p))
        heapq.heapify(heads)
        while heads:
            _, p = heapq.heappop(heads)
            buffer = buffers[p]
            yield buffer.popleft()
            if not buffer and p in start:
                buffer = buffers[p] = await self._read(p, start)
            if buffer:
                heapq.heappush(heads, (id_tuple(buffer[0][0]), p))

    async def _read(self, partition: int, start: dict[int, str]) -> deque[StoredEntry]:
        """The partition's next batch from ``start[partition]`` on; a short batch is its last, and
        the partition leaves ``start``."""
        found: Any = await self.redis.xrange(
            self.keys.events(partition), min=start[partition], max="+", count=self.batch
        )
        if len(found) < self.batch:
            del start[partition]
        else:
            start[partition] = "(" + found[-1][0].decode()
        return deque((bytes(entry_id), fields) for entry_id, fields in found)
