"""The partition streams as a work queue: consumer groups, reads, acks, reclaims, retries, trims.

Each partition ``p`` has an events stream (the listener appends), a deliveries stream (retries
that came due, dead letters replayed) and a scheduled-retries sorted set (score: due time, unix
ms). All three share the hash tag ``{p<N>}``, so one script or one read may touch them together,
on Redis Cluster too.

- ``read`` moves due retries onto the deliveries stream (a script) and reads both streams in one
  XREADGROUP, in a single round trip.
- ``queue_complete`` schedules an entry's retries and acknowledges it in one script: a retry is
  never lost between the two, and never doubled by a crash between them.
- ``trim`` never removes an entry the group has not acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.scripts import Script

MOVE_LIMIT = 500
"""Most due retries one read moves onto the deliveries stream."""

MOVE_DUE = Script(
    """
-- Move due retries onto the deliveries stream. KEYS[1] scheduled set, KEYS[2] deliveries stream.
-- ARGV[1] now (unix ms), ARGV[2] most to move. Returns {moved, score of the next one or false}.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local ok, fields = pcall(cjson.decode, member)
  if ok and type(fields) == 'table' and #fields > 0 and #fields % 2 == 0 then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[2], '*', 'poison', member)
  end
  redis.call('ZREM', KEYS[1], member)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}
"""
)

COMPLETE = Script(
    """
-- Schedule retries, then acknowledge entries, at once. KEYS[1] events stream, KEYS[2] deliveries
-- stream, KEYS[3] scheduled set. ARGV[1] group, ARGV[2] count of events ids, ARGV[3] count of
-- deliveries ids, then those ids, then score/member pairs.
local ne, nd = tonumber(ARGV[2]), tonumber(ARGV[3])
local first = 4 + ne + nd
for i = first, #ARGV, 2 do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]) end
if ne > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4, 3 + ne)) end
if nd > 0 then redis.call('XACK', KEYS[2], ARGV[1], unpack(ARGV, 4 + ne, 3 + ne + nd)) end
return ne + nd
"""
)


def is_nogroup(exc: BaseException) -> bool:
    """Redis has no such group (or stream): it restarted empty, or nobody created it yet."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


def id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class Entry:
    partition: int
    replay: bool
    """True: from the deliveries stream (one webhook); False: from the events stream."""
    id: bytes
    fields: dict[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Completion:
    """What finishing one entry writes: retries (due unix ms, member) and the ack."""

    entry: Entry
    retries: tuple[tuple[int, bytes], ...] = ()


class Streams:
    def __init__(self, redis: RedisClient, keys: Keys, group: str = GROUP) -> None:
        self.redis = redis
        self.keys = keys
        self.group = group

    def streams_of(self, partition: int) -> tuple[str, str]:
        return self.keys.events(partition), self.keys.deliveries(partition)

    async def ensure_groups(self, partition: int) -> None:
        """Create the group on both streams (and the streams), reading from their start: after
        Redis lost everything, the events appended since are delivered too. Loads the scripts."""
        await MOVE_DUE.load(self.redis)
        await COMPLETE.load(self.redis)
        for stream in self.streams_of(partition):
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, partition: int, consumer: str, count: int, block_ms: int, now_ms: int | None
    ) -> tuple[list[Entry], int | None]:
        """New entries of both streams, and when the next scheduled retry is due (unix ms, or
        None when none is or the set was not looked at). ``now_ms``: move due retries first."""
        events, deliveries = self.streams_of(partition)
        pipe = self.redis.pipeline(transaction=False)
        if now_ms is not None:
            pipe.evalsha(MOVE_DUE.sha, 2, self.keys.scheduled(partition), deliveries, now_ms, MOVE_LIMIT)
        pipe.xreadgroup(
            self.group, consumer, {events: ">", deliveries: ">"}, count=count, block=max(1, block_ms)
        )
        results = await pipe.execute(raise_on_error=False)
        next_due: int | None = None
        if now_ms is not None:
            moved = results[0]
            if isinstance(moved, NoScriptError):  # Redis forgot it: move now, read them next time
                moved = await MOVE_DUE(
                    self.redis, [self.keys.scheduled(partition), deliveries], [now_ms, MOVE_LIMIT]
                )
            if isinstance(moved, BaseException):
                raise moved
            if moved[1] is not None:
                next_due = int(float(moved[1]))
        found = results[-1]
        if isinstance(found, BaseException):
            raise found
        return self._entries(partition, found), next_due

    def _entries(self, partition: int, found: Any) -> list[Entry]:
        out: list[Entry] = []
        deliveries = self.keys.deliveries(partition).encode()
        for stream, items in found or ():
            replay = stream == deliveries
            out.extend(Entry(partition, replay, entry_id, fields) for entry_id, fields in items)
        return out

    async def claim(self, partition: int, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries pending longer than ``min_idle_ms`` on any consumer, now ours (XAUTOCLAIM)."""
        out: list[Entry] = []
        for stream, replay in zip(self.streams_of(partition), (False, True), strict=True):
            _, items, _deleted = await self.redis.xautoclaim(
                stream, self.group, consumer, min_idle_ms, "0-0", count=count
            )
            out.extend(Entry(partition, replay, i, f) for i, f in items if f is not None)
        return out

    def queue_complete(self, pipe: Any, partition: int, done: list[Completion]) -> None:
        """Add to ``pipe`` the script that schedules ``done``'s retries and acks its entries."""
        events = [c.entry.id for c in done if not c.entry.replay]
        deliveries = [c.entry.id for c in done if c.entry.replay]
        args: list[Any] = [self.group, len(events), len(deliveries), *events, *deliveries]
        for completion in done:
            for due_ms, member in completion.retries:
                args.append(due_ms)
                args.append(member)
        stream, replays = self.streams_of(partition)
        pipe.evalsha(COMPLETE.sha, 3, stream, replays, self.keys.scheduled(partition), *args)

    async def complete(self, partition: int, done: list[Completion]) -> None:
        """``queue_complete`` on its own (reloading the script if Redis forgot it)."""
        for _ in range(2):
            pipe = self.redis.pipeline(transaction=False)
            self.queue_complete(pipe, partition, done)
            (result,) = await pipe.execute(raise_on_error=False)
            if not isinstance(result, NoScriptError):
                break
            await COMPLETE.load(self.redis)
        if isinstance(result, BaseException):
            raise result

    async def schedule(self, partition: int, due_ms: int, member: bytes) -> None:
        await self.redis.zadd(self.keys.scheduled(partition), {member: due_ms})

    async def append_delivery(self, partition: int, fields: Any) -> bytes:
        """Put one delivery on the partition's deliveries stream (a dead letter replayed)."""
        entry_id: Any = await self.redis.xadd(self.keys.deliveries(partition), fields)
        return bytes(entry_id)

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
