"""How far the pipeline has got, read from Redis for the console: events appended so far, what
the consumer group has not finished (as a count and as the age of its oldest entry), and the
retries waiting in the scheduled sets. Reads only; a stream or group not made yet counts as empty.

An entry's id is the Redis server's clock (ms) when it was appended, so the oldest unfinished id
gives the lag as an age without reading any entry's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.streams import id_tuple


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    events_added: int | None
    """Events ever appended to the events streams; None on a Redis older than 7.0."""
    unread: int
    """Entries the group has not read yet (events, and deliveries due again)."""
    pending: int
    """Entries read but not acknowledged yet."""
    oldest_unfinished_ms: int | None
    """The append time of the oldest entry unread or pending; None when there is none."""
    retries_scheduled: int


def _ours(groups: Any) -> dict[Any, Any] | None:
    if not isinstance(groups, list):
        return None
    for group in groups:
        if group.get("name") in (GROUP, GROUP.encode()):
            return dict(group)
    return None


async def read_progress(redis: RedisClient, keys: Keys) -> Progress:
    """One pipelined round trip for the counts, and one more for the oldest unread entries."""
    events = keys.all_events()
    streams = [*events, *(keys.deliveries(p) for p in range(keys.partitions))]
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
        pipe.xpending(stream, GROUP)
    for stream in events:
        pipe.xinfo_stream(stream)
    for p in range(keys.partitions):
        pipe.zcard(keys.scheduled(p))
    replies = await pipe.execute(raise_on_error=False)
    n = len(streams)
    groups = [_ours(replies[2 * i]) for i in range(n)]
    pendings = replies[1 : 2 * n : 2]
    infos = replies[2 * n : 2 * n + len(events)]
    scheduled = replies[2 * n + len(events) :]

    oldest: list[int] = []
    for summary in pendings:
        if isinstance(summary, dict) and summary.get("pending") and summary.get("min"):
            oldest.append(id_tuple(summary["min"])[0])
    readers = [(s, g) for s, g in zip(streams, groups, strict=True) if g is not None and g.get("lag") != 0]
    if readers:
        pipe = redis.pipeline(transaction=False)
        for stream, group in readers:
            pipe.xrange(stream, f"({_text(group['last-delivered-id'])}", "+", count=1)
        for found in await pipe.execute(raise_on_error=False):
            if isinstance(found, list) and found:
                oldest.append(id_tuple(found[0][0])[0])
    added = [info.get("entries-added") for info in infos if isinstance(info, dict)]
    known = [int(a) for a in added if a is not None]
    return Progress(
        events_added=sum(known) if len(known) == len(added) else None,
        unread=sum(int(g.get("lag") or 0) for g in groups if g is not None),
        pending=sum(int(g.get("pending") or 0) for g in groups if g is not None),
        oldest_unfinished_ms=min(oldest) if oldest else None,
        retries_scheduled=sum(int(c) for c in scheduled if isinstance(c, int)),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
