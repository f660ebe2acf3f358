"""relay.store.backlog: what waits in Redis (group lag, pending, the oldest entry not acknowledged,
the retry sets' size, the dead letters stored), read from a real Redis."""

from __future__ import annotations

import pytest

from relay.keys import GROUP, Keys
from relay.store.backlog import StreamBacklog, backlog_streams, oldest_unacked_ms, read_backlog
from relay.store.connect import RedisClient


@pytest.mark.parametrize(
    ("first_pending", "first_unread", "oldest"),
    [
        (None, None, None),
        (b"1000-0", None, 1000),
        (None, "2000-3", 2000),
        (b"1000-5", b"2000-0", 1000),
        ("3000-0", "2000-0", 2000),  # a group moved back by XGROUP SETID: still the older one
    ],
)
def test_oldest_unacked_is_the_older_of_the_first_pending_and_the_first_unread(
    first_pending: bytes | str | None, first_unread: bytes | str | None, oldest: int | None
) -> None:
    """The ms part of the older id, or None when there is neither."""
    assert oldest_unacked_ms(first_pending, first_unread) == oldest


def test_backlog_streams_are_every_partitions_events_and_deliveries(keys: Keys) -> None:
    """The streams the workers' group reads, each once."""
    every = [keys.events(p) for p in range(keys.partitions)]
    every += [keys.deliveries(p) for p in range(keys.partitions)]
    assert sorted(backlog_streams(keys)) == sorted(every)


async def _stream(redis: RedisClient, keys: Keys, *ids: str) -> str:
    """Partition 0's events stream with the group reading from its start, and entries ``ids``."""
    stream = keys.events(0)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for entry_id in ids:
        await redis.xadd(stream, {"n": entry_id}, id=entry_id)
    return stream


async def _of(redis: RedisClient, keys: Keys, stream: str) -> StreamBacklog:
    (found,) = [s for s in (await read_backlog(redis, keys)).streams if s.stream == stream]
    return found


async def test_no_group_no_stream_reported(redis: RedisClient, keys: Keys) -> None:
    """Before any worker created the group, no stream is reported, and nothing is counted."""
    state = await read_backlog(redis, keys)
    assert (state.streams, state.scheduled, state.dead_letters) == ([], 0, 0)


async def test_oldest_is_the_first_unread_entry_when_none_is_pending(redis: RedisClient, keys: Keys) -> None:
    """Entries not read yet: the oldest is the first of them, and the lag counts them."""
    stream = await _stream(redis, keys, "1000-0", "2000-0", "3000-0")
    assert await _of(redis, keys, stream) == StreamBacklog(stream=stream, pending=0, lag=3, oldest_ms=1000)


async def test_a_read_entry_stays_the_oldest_until_acknowledged(redis: RedisClient, keys: Keys) -> None:
    """Read but not acknowledged, the first entry is still the oldest; acknowledged, the next one is."""
    stream = await _stream(redis, keys, "1000-0", "2000-0", "3000-0")
    await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=2)
    assert await _of(redis, keys, stream) == StreamBacklog(stream=stream, pending=2, lag=1, oldest_ms=1000)
    await redis.xack(stream, GROUP, "1000-0")
    assert (await _of(redis, keys, stream)).oldest_ms == 2000
    await redis.xack(stream, GROUP, "2000-0")
    assert (await _of(redis, keys, stream)).oldest_ms == 3000


async def test_nothing_unacknowledged_has_no_oldest(redis: RedisClient, keys: Keys) -> None:
    """Every entry read and acknowledged: no oldest, lag and pending 0."""
    stream = await _stream(redis, keys, "1000-0", "2000-0")
    await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=10)
    await redis.xack(stream, GROUP, "1000-0", "2000-0")
    assert await _of(redis, keys, stream) == StreamBacklog(stream=stream, pending=0, lag=0, oldest_ms=None)


async def test_lag_redis_cannot_tell_still_finds_the_oldest(redis: RedisClient, keys: Keys) -> None:
    """After an entry is deleted Redis cannot count the lag; the first unread entry is still found."""
    stream = await _stream(redis, keys, "1000-0", "2000-0", "3000-0")
    await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=1)
    await redis.xack(stream, GROUP, "1000-0")
    await redis.xdel(stream, "2000-0")
    found = await _of(redis, keys, stream)
    assert (found.lag, found.oldest_ms) == (None, 3000)


async def test_the_retry_sets_and_the_dead_letters_are_counted(redis: RedisClient, keys: Keys) -> None:
    """Members of every partition's scheduled set, summed; entries of the dead-letter stream."""
    await redis.zadd(keys.scheduled(0), {"a": 1, "b": 2})
    await redis.zadd(keys.scheduled(keys.partitions - 1), {"c": 3})
    await redis.xadd(keys.dead_letters, {"kind": "gone"})
    state = await read_backlog(redis, keys)
    assert (state.scheduled, state.dead_letters) == (3, 1)
