"""The retained events read back: ids unique across partitions, found by id, walked in order."""

from __future__ import annotations

import asyncio
import time

from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.event_log import EventLog

NOW = int(time.time() * 1000)


def event(n: int, index: int = 0, received_at: int = NOW) -> StreamEvent:
    return StreamEvent(
        resource="OutboundCall", event="Finished", event_key="finished", cf_webhook_id=None,
        cf_webhook_name="", timestamp=None,
        received_at=received_at,
        callback=f"{n:02x}" * 32, index=index, json=b'{"resource":{"id":%d}}' % n,
    )  # fmt: skip


async def publish(redis: RedisClient, keys: Keys, *events: StreamEvent) -> None:
    """Each event on its partition's stream, a millisecond apart (entry ids of different streams
    order events to the millisecond)."""
    for e in events:
        stream = keys.events(keys.partition_of(bytes.fromhex(e.callback)))
        await redis.xadd(stream, e.to_fields())  # type: ignore[arg-type]
        await asyncio.sleep(0.002)


def test_ids_are_stable_and_unique() -> None:
    """An event's id is its callback's digest and its index: the same for the same callback
    body, different for another event of it or another body."""
    assert event(1).id == event(1).id == f"evt_{'01' * 16}_0"
    assert len({event(1).id, event(1, index=1).id, event(2).id}) == 3


async def test_received_since_merges_partitions_in_the_order_received(redis: RedisClient, keys: Keys) -> None:
    """Events spread over partitions come back in the order the relay received them."""
    events = [event(n) for n in range(8)]
    assert len({keys.partition_of(bytes.fromhex(e.callback)) for e in events}) == keys.partitions
    await publish(redis, keys, *events)
    log = EventLog(redis, keys)
    assert [f.event for f in [f async for f in log.received_since(0)]] == events


async def test_received_since_leaves_out_older_events(redis: RedisClient, keys: Keys) -> None:
    """``since`` is the receive time: an event received earlier is left out."""
    now = int(time.time() * 1000)
    await publish(redis, keys, event(1, received_at=now - 5000), event(2, received_at=now))
    log = EventLog(redis, keys)
    assert [f.event.callback[:2] async for f in log.received_since(now - 1000)] == ["02"]


async def test_find_by_id_with_and_without_its_entry(redis: RedisClient, keys: Keys) -> None:
    """An event is found by id: straight at the entry its log noted, or by reading its partition;
    an id of no retained event finds nothing."""
    await publish(redis, keys, event(1), event(2), event(3))
    log = EventLog(redis, keys)
    found = await log.find(event(2).id, None)
    assert found is not None and found.event == event(2)
    again = await log.find(event(2).id, f"{found.partition}/{found.entry_id}")
    assert again == found
    assert await log.find(event(9).id, None) is None
    assert await log.find("evt_nonsense", None) is None
