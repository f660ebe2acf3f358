"""The partition streams as a work queue: consumer groups, reads, acks, reclaims, retries, trims.

Each partition ``p`` has an events stream (the listener appends), a deliveries stream (retries
that came due, dead letters replayed) and a scheduled-retries sorted set (score: due time, unix
ms). All three share the hash tag ``{p<N>}``, so one script or one read may touch them together,
on Redis Cluster too.

- ``take`` moves due retries onto the deliveries stream and reads at most ``count`` new entries of
  both streams, without blocking, in one script: a reader that reserved room for ``count``
  entries never gets more. While a partition's deliveries stream is known to be quiet (the last
  look found nothing new there) and no retry is to be moved, ``take`` reads the events stream
  alone, with a plain XREADGROUP: entries passed through a script are copied into Lua and back,
  which costs Redis more than twice the read itself. The next look at the scheduled set (when a
  retry is due, or every ``MOVE_EVERY``), or ``wait``, finds new deliveries entries again.
  ``wait`` blocks until either stream has something (one entry each).
- ``queue_complete`` schedules entries' retries and acknowledges them in one script (or one
  XACK when there is no retry): a retry is never lost between the two, and never doubled by a
  crash between them (what a retry is, and
  how it is written: ``relay.delivery.retry``).
- ``take`` and ``wait`` with ``version=True`` also read the webhook table's version after the
  entries, in the same round trip (on one server, whose pipeline runs in order): what a reader
  needs to match the entries read against the table as it was then (read-your-writes), without
  a round trip of its own on every event's way. A cluster may run a pipeline's commands on
  different nodes in any order: there the version is not read (None), and the caller reads it.
- ``trim`` never removes an entry the group has not acknowledged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.scripts import COMPLETE, TAKE, ScriptPipeline

MOVE_LIMIT = 500
"""Most due retries one read moves onto the deliveries stream."""


def is_nogroup(exc: BaseException) -> bool:
    """Redis has no such group (or stream): it restarted empty, or nobody created it yet."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
"""What a stream entry id looks like."""


def is_entry_id(text: str) -> bool:
    """A stream entry id: two unsigned 64-bit numbers. Pure."""
    return ENTRY_ID.fullmatch(text) is not None and all(int(p) < 2**64 for p in text.split("-"))


def id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    partition: int
    replay: bool
    """True: from the deliveries stream (one webhook); False: from the events stream."""
    id: bytes
    fields: dict[bytes, bytes]


def _table_version(replies: list[Any]) -> int | None:
    """The webhook table's version read behind a read (0: none written yet), or None if not read."""
    return int(replies[1] or 0) if len(replies) > 1 else None


def _entries(partition: int, replay: bool, items: Any) -> list[Entry]:
    """Entries from a script's reply: ``[[id, [field, value, ...]], ...]``."""
    out: list[Entry] = []
    for entry_id, flat in items:
        pairs = iter(flat)
        out.append(
            Entry(
                partition=partition, replay=replay, id=entry_id, fields=dict(zip(pairs, pairs, strict=False))
            )
        )
    return out


class Streams:
    def __init__(self, redis: RedisClient, keys: Keys, group: str = GROUP) -> None:
        self.redis = redis
        self.keys = keys
        self.group = group
        self._quiet: set[int] = set()
        """Partitions whose deliveries stream had nothing new at the last look."""

    def streams_of(self, partition: int) -> tuple[str, str]:
        return self.keys.events(partition), self.keys.deliveries(partition)

    async def ensure_groups(self, partition: int) -> None:
        """Create the group on both streams (and the streams), reading from their start: after
        Redis lost everything, the events appended since are delivered too."""
        for stream in self.streams_of(partition):
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _versioned(self, version: bool) -> bool:
        return version and not isinstance(self.redis, RedisCluster)

    async def take(
        self, partition: int, consumer: str, count: int, now_ms: int | None, *, version: bool = False
    ) -> tuple[list[Entry], int | None, int | None]:
        """At most ``count`` new entries of both streams (deliveries first), without blocking;
        when the next scheduled retry is due (unix ms; None when none is, or the set was not
        looked at); and (``version``) the webhook table's version read after them, or None.
        ``now_ms``: move the retries due by then onto the deliveries stream first. Without
        ``now_ms``, while the deliveries stream is quiet, only the events stream is read."""
        events, deliveries = self.streams_of(partition)
        if now_ms is None and partition in self._quiet:
            pipe: Any = self.redis.pipeline(transaction=False)
            pipe.xreadgroup(self.group, consumer, {events: ">"}, count=max(1, count))
            if self._versioned(version):
                pipe.get(self.keys.webhooks_version)
            replies = await pipe.execute()
            return self._read(partition, replies[0], deliveries), None, _table_version(replies)
        keys = [self.keys.scheduled(partition), deliveries, events]
        args = [self.group, consumer, max(1, count), now_ms or 0, MOVE_LIMIT]
        script = ScriptPipeline(self.redis)
        script.call(TAKE, keys, args)
        if self._versioned(version):
            script.pipe.get(self.keys.webhooks_version)
        replies = await script.execute()
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        next_due, replays, fresh = replies[0]
        entries = _entries(partition, True, replays or ())
        if entries:
            self._quiet.discard(partition)
        else:
            self._quiet.add(partition)
        entries.extend(_entries(partition, False, fresh or ()))
        return entries, None if next_due is None else int(float(next_due)), _table_version(replies)

    async def wait(
        self, partition: int, consumer: str, block_ms: int, *, version: bool = False, count: int = 1
    ) -> tuple[list[Entry], int | None]:
        """Block up to ``block_ms`` until either stream has a new entry; at most ``count`` of each.
        And (``version``) the webhook table's version read once they came, or None."""
        events, deliveries = self.streams_of(partition)
        pipe: Any = self.redis.pipeline(transaction=False)
        pipe.xreadgroup(
            self.group, consumer, {events: ">", deliveries: ">"}, count=max(1, count), block=max(1, block_ms)
        )
        if self._versioned(version):
            pipe.get(self.keys.webhooks_version)
        replies = await pipe.execute()
        return self._read(partition, replies[0], deliveries), _table_version(replies)

    def _read(self, partition: int, found: Any, deliveries: str) -> list[Entry]:
        """The entries of an XREADGROUP reply; one of the deliveries stream ends its quiet."""
        out: list[Entry] = []
        marker = deliveries.encode()
        for stream, items in found or ():
            replay = stream == marker
            if replay:
                self._quiet.discard(partition)
            out.extend(
                Entry(partition=partition, replay=replay, id=entry_id, fields=fields)
                for entry_id, fields in items
            )
        return out

    async def claim(self, partition: int, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """At most ``count`` entries pending longer than ``min_idle_ms`` on any consumer, now ours
        (XAUTOCLAIM)."""
        out: list[Entry] = []
        for stream, replay in zip(self.streams_of(partition), (False, True), strict=True):
            if len(out) >= count:
                break
            _, items, _deleted = await self.redis.xautoclaim(
                stream, self.group, consumer, min_idle_ms, "0-0", count=count - len(out)
            )
            out.extend(
                Entry(partition=partition, replay=replay, id=i, fields=f) for i, f in items if f is not None
            )
        return out

    def queue_complete(
        self, pipe: ScriptPipeline, partition: int, done: list[Entry], scheduled: list[tuple[int, bytes]]
    ) -> None:
        """Add to ``pipe`` the script that adds ``scheduled`` (score, member) to the partition's
        scheduled set and acknowledges ``done``, at once; without retries to schedule, a plain
        XACK per stream (one command is as atomic as the script, and cheaper)."""
        events = [entry.id for entry in done if not entry.replay]
        deliveries = [entry.id for entry in done if entry.replay]
        stream, replays = self.streams_of(partition)
        if not scheduled:
            for key, ids in ((stream, events), (replays, deliveries)):
                if ids:
                    pipe.pipe.xack(key, self.group, *ids)
            return
        args: list[Any] = [self.group, len(events), len(deliveries), *events, *deliveries]
        for score, member in scheduled:
            args.append(score)
            args.append(member)
        keys = (stream, replays, self.keys.scheduled(partition))
        pipe.call(COMPLETE, keys, args)

    async def trim(self, stream: str, now_ms: int, retention_ms: int) -> int:
        """Drop entries older than the retention that the group has acknowledged; how many.

        The boundary is the oldest pending entry, or past the last one the group read: every
        entry below it is acknowledged (new reads only ever return later ids).
        """
        group = await self._group_info(stream)
        if group is None:
            return 0
        last = id_tuple(group["last-delivered-id"])
        safe = (last[0], last[1] + 1)
        if group["pending"]:
            summary = await self.redis.xpending(stream, self.group)
            if summary["min"] is not None:
                safe = min(safe, id_tuple(summary["min"]))
        boundary = min(safe, (max(0, now_ms - retention_ms), 0))
        if boundary <= (0, 1):
            return 0
        return int(await self.redis.xtrim(stream, minid=f"{boundary[0]}-{boundary[1]}", approximate=False))

    async def _group_info(self, stream: str) -> dict[str, Any] | None:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream
            return None
        for group in groups:
            if group["name"] in (self.group, self.group.encode()):
                return dict(group)
        return None

    async def drop_idle_consumers(self, stream: str, idle_ms: int) -> int:
        """Forget consumers (dead worker processes) idle that long with nothing pending."""
        try:
            consumers = await self.redis.xinfo_consumers(stream, self.group)
        except ResponseError:
            return 0
        dropped = 0
        for consumer in consumers:
            if consumer["pending"] == 0 and consumer["idle"] >= idle_ms:
                await self.redis.xgroup_delconsumer(stream, self.group, consumer["name"])
                dropped += 1
        return dropped
