"""After an upgrade: the entries written in the old format (a field per value, before the
metadata was packed) are still delivered, from every place they wait: the events stream, the
deliveries stream, and a retry's member in the scheduled set."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from relay.events import StreamEvent
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.event_log import EventLog
from tests.callbacks import as_stored, call_event, legacy_fields, stream_event
from tests.delivery_harness import open_harness

Make = Callable[..., Settings]


def legacy_delivery(webhook_id: int, attempt: int, event: StreamEvent) -> dict[bytes, bytes]:
    return {**as_stored({"webhook": webhook_id, "attempt": attempt}), **legacy_fields(event)}


async def test_old_entries_are_delivered_from_every_place_they_wait(
    make_settings: Make, redis: RedisClient
) -> None:
    """An old events entry, an old deliveries entry and an old retry each reach the webhook once,
    with the ``webhook-id`` and the body a new entry of the same event gets; new entries beside
    them too; and nothing is left pending or dead-lettered."""
    now = int(time.time() * 1000)
    old_event, old_delivery, old_retry, new = (stream_event(call_event(call_id=n), now) for n in (1, 2, 3, 4))
    async with open_harness(make_settings, redis) as h:
        hook = await h.webhook("/a")
        keys = h.keys
        await redis.xadd(keys.events(0), legacy_fields(old_event))  # type: ignore[arg-type]
        await redis.xadd(keys.deliveries(0), legacy_delivery(hook.id, 1, old_delivery))  # type: ignore[arg-type]
        retry = legacy_delivery(hook.id, 2, old_retry)
        member = orjson.dumps([v.decode() for kv in retry.items() for v in kv])  # as Retry.member was
        await redis.zadd(keys.scheduled(0), {member: now - 1})
        await redis.xadd(keys.events(1), new.to_fields())  # type: ignore[arg-type]
        await h.start()
        got = await h.sink.wait_for(4, "/a")
        await h.settled()
        sent = {r.headers["webhook-id"]: orjson.loads(r.body)["events"] for r in got}
        events = (old_event, old_delivery, old_retry, new)
        assert sent == {e.delivery_id(hook.id): [orjson.loads(e.json)] for e in events}
        assert len(h.sink.at("/a")) == 4
        assert await h.dead.count() == 0


async def test_event_search_reads_old_and_new_entries(redis: RedisClient, make_settings: Make) -> None:
    """The event log (search, find by id, backfill's walk) reads both formats alike."""
    now = int(time.time() * 1000)
    old, new = stream_event(call_event(call_id=1), now), stream_event(call_event(call_id=2), now + 1)
    async with open_harness(make_settings, redis) as h:
        for event, fields in ((old, legacy_fields(old)), (new, new.to_fields())):
            stream = h.keys.events(h.keys.partition_of(bytes.fromhex(event.callback)))
            await redis.xadd(stream, fields)  # type: ignore[arg-type]
        log = EventLog(redis, h.keys)
        assert [f.event for f in await log.search(now - 1000, None, lambda e: True)] == [new, old]
        found = await log.find(old.id, None)
        assert found is not None and found.event == old
