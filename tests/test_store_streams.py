"""The partition streams as a work queue: groups, reads, retries moved when due, acks, reclaim, trim."""

from __future__ import annotations

import asyncio
import time

import pytest

from relay.delivery.message import Delivery
from relay.delivery.retry import Retry
from relay.events import StreamEvent
from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.scripts import ScriptPipeline
from relay.store.streams import Entry, Streams, is_nogroup
from tests.callbacks import bare_stream_event

EXACT = '{"id":7420017300281076000,"text":"caf\u00e9 \U0001f600 \\"q\\" \\\\ \\u2028 a/b","n":1.10}'.encode()


def event(json: bytes = b'{"id":1}', index: int = 0) -> StreamEvent:
    return bare_stream_event(json, index)


@pytest.fixture
async def streams(redis: RedisClient, keys: Keys) -> Streams:
    s = Streams(redis, keys)
    await s.ensure_groups(0)
    return s


async def read_all(streams: Streams, consumer: str = "c1", now_ms: int | None = None) -> list[Entry]:
    entries, _, _ = await streams.take(0, consumer, 100, now_ms)
    return entries


async def test_creating_groups_twice_is_harmless(streams: Streams) -> None:
    """BUSYGROUP on a second create is ignored."""
    await streams.ensure_groups(0)


async def test_lost_group_is_recreated_and_reads_from_the_start(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """After the group vanished (NOGROUP), creating it again delivers entries appended meanwhile."""
    await redis.xgroup_destroy(keys.events(0), GROUP)
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    with pytest.raises(Exception) as raised:
        await read_all(streams)
    assert is_nogroup(raised.value)
    await streams.ensure_groups(0)
    assert len(await read_all(streams)) == 1


async def test_one_read_returns_both_streams(streams: Streams, redis: RedisClient, keys: Keys) -> None:
    """Events and deliveries come back from one XREADGROUP, each marked with its stream."""
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    await redis.xadd(keys.deliveries(0), Delivery(7, 2, event()).to_fields())  # type: ignore[arg-type]
    entries = await read_all(streams)
    assert sorted(e.replay for e in entries) == [False, True]


async def test_quiet_deliveries_stream_is_looked_at_with_the_scheduled_set(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """Once a read found the deliveries stream quiet, reads without a move take events only (a
    plain XREADGROUP); the next look at the scheduled set reads the deliveries stream again."""
    assert await read_all(streams) == []  # the first read looks at both: nothing there
    await redis.xadd(keys.deliveries(0), Delivery(7, 2, event()).to_fields())  # type: ignore[arg-type]
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    assert [e.replay for e in await read_all(streams)] == [False]
    assert [e.replay for e in await read_all(streams, now_ms=1)] == [True]


async def test_quiet_read_still_takes_at_most_count(streams: Streams, redis: RedisClient, keys: Keys) -> None:
    """A read of the events stream alone returns at most ``count`` entries, oldest first."""
    assert await read_all(streams) == []
    ids = [await redis.xadd(keys.events(0), event(index=n).to_fields()) for n in range(5)]  # type: ignore[arg-type]
    entries, next_due, _ = await streams.take(0, "c1", 3, None)
    assert [e.id for e in entries] == ids[:3] and next_due is None


async def test_due_retry_moves_with_its_event_exact(streams: Streams, redis: RedisClient, keys: Keys) -> None:
    """A due retry comes back as a deliveries entry whose event JSON is byte for byte the same."""
    delivery = Delivery(7, 2, event(EXACT))
    await redis.zadd(keys.scheduled(0), {Retry(delivery, 1.0).member(): 1000})
    (entry,) = await read_all(streams, now_ms=1000)
    assert entry.replay
    assert Delivery.from_fields(entry.fields) == delivery


async def test_retry_not_yet_due_stays_and_reports_when(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """A retry due later is not moved; the read says when it is due."""
    await redis.zadd(keys.scheduled(0), {Retry(Delivery(7, 2, event()), 5.0).member(): 5000})
    entries, next_due, _ = await streams.take(0, "c1", 100, 4999)
    assert entries == [] and next_due == 5000
    assert await redis.zcard(keys.scheduled(0)) == 1


async def test_poison_member_is_moved_aside_not_stuck(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """A member that is not a delivery is moved as a poison entry; the good one still moves."""
    await redis.zadd(keys.scheduled(0), {b"not json": 1, Retry(Delivery(7, 2, event()), 0.002).member(): 2})
    entries = await read_all(streams, now_ms=10)
    assert sorted(b"poison" in e.fields for e in entries) == [False, True]
    assert await redis.zcard(keys.scheduled(0)) == 0


async def test_complete_schedules_and_acks_together(streams: Streams, redis: RedisClient, keys: Keys) -> None:
    """Completing an entry puts its retry in the scheduled set and acknowledges it, in one step."""
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    (entry,) = await read_all(streams)
    member = Retry(Delivery(7, 2, event()), 1.234).member()
    pipe = ScriptPipeline(redis)
    streams.queue_complete(pipe, 0, [entry], [(1234, member)])
    assert await pipe.execute() == [1]
    assert (await redis.xpending(keys.events(0), GROUP))["pending"] == 0
    assert await redis.zscore(keys.scheduled(0), member) == 1234


async def test_idle_entry_of_a_silent_consumer_is_reclaimed(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """An entry pending longer than the idle bound moves to the claiming consumer; a fresh one does not."""
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    await read_all(streams, "dead")
    assert await streams.claim(0, "alive", 60_000, 10) == []
    await asyncio.sleep(0.05)  # the entry must sit idle past the bound
    (claimed,) = await streams.claim(0, "alive", 20, 10)
    assert not claimed.replay
    consumers = {c["name"]: c["pending"] for c in await redis.xinfo_consumers(keys.events(0), GROUP)}
    assert consumers == {b"dead": 0, b"alive": 1}


async def test_trim_keeps_every_unacknowledged_entry(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """Trimming with no retention drops acknowledged entries only: pending and unread ones stay."""
    stream = keys.events(0)
    for _ in range(6):
        await redis.xadd(stream, event().to_fields())  # type: ignore[arg-type]
    entries = await read_all(streams)
    await redis.xack(stream, GROUP, *(e.id for e in entries[:2]), entries[3].id)
    unread = await redis.xadd(stream, event().to_fields())  # type: ignore[arg-type]
    removed = await streams.trim(stream, int(time.time() * 1000) + 1000, 0)
    left = [i for i, _ in await redis.xrange(stream)]
    assert removed == 2
    assert left == [entries[2].id, entries[3].id, entries[4].id, entries[5].id, unread]


async def test_trim_keeps_the_retention_window(streams: Streams, redis: RedisClient, keys: Keys) -> None:
    """Acknowledged entries younger than the retention stay (for `events tail`)."""
    stream = keys.events(0)
    await redis.xadd(stream, event().to_fields())  # type: ignore[arg-type]
    (entry,) = await read_all(streams)
    await redis.xack(stream, GROUP, entry.id)
    assert await streams.trim(stream, int(time.time() * 1000), 3_600_000) == 0
    assert await redis.xlen(stream) == 1


async def test_idle_consumer_without_pending_is_dropped(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """A consumer of a gone process, idle and owning nothing, is removed from the group."""
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    (entry,) = await read_all(streams, "gone")
    await redis.xack(keys.events(0), GROUP, entry.id)
    await asyncio.sleep(0.02)  # idle past the bound
    assert await streams.drop_idle_consumers(keys.events(0), 10) == 1
    assert await redis.xinfo_consumers(keys.events(0), GROUP) == []


async def test_complete_without_retries_acknowledges_both_streams(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """Completing entries of both streams with no retry acknowledges each, scheduling nothing."""
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    await redis.xadd(keys.deliveries(0), Delivery(7, 2, event()).to_fields())  # type: ignore[arg-type]
    entries = await read_all(streams)
    pipe = ScriptPipeline(redis)
    streams.queue_complete(pipe, 0, entries, [])
    assert await pipe.execute() == [1, 1]
    for stream in (keys.events(0), keys.deliveries(0)):
        assert (await redis.xpending(stream, GROUP))["pending"] == 0
    assert await redis.zcard(keys.scheduled(0)) == 0


async def test_a_versioned_take_reads_the_table_version_in_its_round_trip(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """``take(version=True)`` gives the webhook table's version beside the entries; without, None."""
    await redis.set(keys.webhooks_version, 41)
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    entries, _, version = await streams.take(0, "c1", 100, None, version=True)
    assert (len(entries), version) == (1, 41)
    assert (await streams.take(0, "c1", 100, None))[2] is None
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    entries, _, version = await streams.take(0, "c1", 100, None, version=True)  # quiet: a plain read
    assert (len(entries), version) == (1, 41)


async def test_a_versioned_wait_reads_the_version_once_an_entry_came(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """``wait(version=True)`` blocks for an entry, then gives the version as it is after it came."""
    await redis.set(keys.webhooks_version, 1)
    waiting = asyncio.create_task(streams.wait(0, "c1", 5000, version=True))
    await asyncio.sleep(0.1)
    await redis.set(keys.webhooks_version, 2)
    await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    entries, version = await waiting
    assert (len(entries), version) == (1, 2)


async def test_a_wait_takes_up_to_its_count_of_each_stream(
    streams: Streams, redis: RedisClient, keys: Keys
) -> None:
    """``wait(count=n)`` returns at once with what is there, at most ``n`` of each stream."""
    for _ in range(10):
        await redis.xadd(keys.events(0), event().to_fields())  # type: ignore[arg-type]
    entries, _ = await streams.wait(0, "c1", 5000, count=8)
    assert len(entries) == 8
    entries, _ = await streams.wait(0, "c1", 5000, count=8)
    assert len(entries) == 2


async def test_a_table_never_written_reads_as_version_0(streams: Streams) -> None:
    """No version key yet (no webhook ever written, or Redis restarted empty): version 0."""
    assert (await streams.take(0, "c1", 100, None, version=True))[2] == 0
