"""What is waiting in Redis, read for the gauges: per stream, the consumer group's lag, pending
count and the oldest entry it has not acknowledged; the scheduled-retries sets' size; the dead
letters stored.

Two pipelined round trips at most, whatever the traffic: XINFO GROUPS and XPENDING (summary) of
every stream, ZCARD of every scheduled set and XLEN of the dead letters; then, only for the
streams with entries not yet read, XRANGE of the first entry after the group's last-delivered id.

The oldest entry not acknowledged is the older of the first pending one (read, not acknowledged)
and the first not yet read; an entry id starts with the unix ms at which Redis added it, so its
age needs no read of the entry itself (``oldest_unacked_ms``, pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.streams import id_tuple


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamBacklog:
    stream: str
    pending: int
    """Entries read, not yet acknowledged."""
    lag: int | None
    """Entries not yet read; None when Redis cannot tell (after a trim or a deletion)."""
    oldest_ms: int | None
    """When the oldest entry not yet acknowledged (read or not) was added, unix ms; None: none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BacklogState:
    streams: list[StreamBacklog]
    """The streams whose group exists (a stream nobody created yet is left out)."""
    scheduled: int
    """Members of every partition's scheduled-retries set: retries and deliveries put off."""
    dead_letters: int


def backlog_streams(keys: Keys) -> list[str]:
    """Every stream the workers' group reads: each partition's events, then its deliveries."""
    return [*keys.all_events(), *(keys.deliveries(p) for p in range(keys.partitions))]


def oldest_unacked_ms(first_pending: bytes | str | None, first_unread: bytes | str | None) -> int | None:
    """The unix ms of the older of two entry ids (either may be None), or None. Pure."""
    found = [id_tuple(entry_id)[0] for entry_id in (first_pending, first_unread) if entry_id]
    return min(found) if found else None


def _group(groups: object, group: str) -> dict[str, Any] | None:
    if not isinstance(groups, list):  # an error: no such stream yet
        return None
    for found in groups:
        if found["name"] in (group, group.encode()):
            return dict(found)
    return None


async def read_backlog(redis: RedisClient, keys: Keys, *, group: str = GROUP) -> BacklogState:
    """The backlog as Redis holds it now (two pipelined round trips at most)."""
    groups, scheduled, dead_letters = await _counts(redis, keys, group)
    firsts = await _first_unread(redis, groups)
    return BacklogState(
        streams=[
            StreamBacklog(
                stream=stream,
                pending=int(state["pending"]),
                lag=state.get("lag"),
                oldest_ms=oldest_unacked_ms(first_pending, firsts.get(stream)),
            )
            for stream, state, first_pending in groups
        ],
        scheduled=scheduled,
        dead_letters=dead_letters,
    )


Group = tuple[str, dict[str, Any], Any]
"""A stream, its group's XINFO GROUPS record, the group's first pending entry id (or None)."""


async def _counts(redis: RedisClient, keys: Keys, group: str) -> tuple[list[Group], int, int]:
    """Round trip one: every stream's group and first pending id, the scheduled sets' size, the
    dead letters' count."""
    streams = backlog_streams(keys)
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
        pipe.xpending(stream, group)
    for partition in range(keys.partitions):
        pipe.zcard(keys.scheduled(partition))
    pipe.xlen(keys.dead_letters)
    replies = await pipe.execute(raise_on_error=False)
    found: list[Group] = []
    for n, stream in enumerate(streams):
        info, summary = replies[2 * n], replies[2 * n + 1]
        state = _group(info, group)
        if state is not None and isinstance(summary, dict):  # else no such stream or group yet
            found.append((stream, state, summary["min"] if summary["pending"] else None))
    sizes = replies[2 * len(streams) :]
    for size in sizes:
        if isinstance(size, Exception):  # a key of the wrong type: say so, do not report 0
            raise size
    return found, sum(int(n) for n in sizes[:-1]), int(sizes[-1])


async def _first_unread(redis: RedisClient, groups: list[Group]) -> dict[str, Any]:
    """Round trip two, for the streams with entries not yet read (or a lag Redis cannot tell):
    the id of the first entry after the group's last-delivered id, by stream."""
    unread = [(stream, state["last-delivered-id"]) for stream, state, _ in groups if state.get("lag") != 0]
    if not unread:
        return {}
    pipe = redis.pipeline(transaction=False)
    for stream, last in unread:
        pipe.xrange(stream, min="(" + (last.decode() if isinstance(last, bytes) else str(last)), count=1)
    firsts: dict[str, Any] = {}
    for (stream, _), entries in zip(unread, await pipe.execute(raise_on_error=False), strict=True):
        if isinstance(entries, list) and entries:
            firsts[stream] = entries[0][0]
    return firsts
