"""How work flows through one worker process: the in-flight bound, one busy host, a slow Redis,
410s racing, and the sweep of expired webhooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio.connection import Connection

from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from relay.store.scripts import COMPLETE
from tests.callbacks import call_event
from tests.delivery_harness import open_harness
from tests.redis_server import PrivateRedis
from tests.sink import Reply

Make = Callable[..., Settings]


def deferred(kind: str) -> float:
    return REGISTRY.get_sample_value("relay_deliveries_deferred_total", {"kind": kind}) or 0.0


def disabled() -> float:
    return REGISTRY.get_sample_value("relay_webhooks_disabled_total") or 0.0


def holding_acks(url: str, release: asyncio.Event) -> RedisClient:
    """A client whose connections send no acknowledgement (no XACK, no call of the COMPLETE
    script) until ``release`` is set, while every other command goes through: a Redis that takes
    no acks."""

    class AcksHeld(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            packed = command if isinstance(command, bytes) else b"".join(command)
            if COMPLETE.sha.encode() in packed or b"\r\nXACK\r\n" in packed:
                await release.wait()
            await super().send_packed_command(command, check_health)

    return connect(url, connection_class=AcksHeld)


async def test_one_busy_host_is_never_put_off(make_settings: Make, redis: RedisClient) -> None:
    """300 events for one quick host taking 4 at a time: they wait in the process, none is
    bounced through Redis, each is delivered once."""
    before = deferred("host_busy")
    async with open_harness(make_settings, redis, max_per_host=4, max_in_flight=64) as h:
        await h.webhook()
        for _ in range(300):
            await h.publish()
        await h.start()
        got = await h.sink.wait_for(300, within=10)
        await h.settled()
        assert len({r.delivery_id for r in got}) == 300
        assert h.sink.most_active <= 4
    assert deferred("host_busy") == before


async def test_readers_never_read_past_the_process_bound(make_settings: Make, redis: RedisClient) -> None:
    """Four partition readers share 8 slots: never more than 8 deliveries at once, nor slots taken."""
    async with open_harness(make_settings, redis, partitions=4, max_in_flight=8, max_per_host=64) as h:
        h.sink.always("/hook", Reply(200, delay=0.02))
        await h.webhook()
        for _ in range(120):
            await h.publish()
        service = await h.start()
        most = 0
        while len(h.sink.received) < 120:
            most = max(most, service.capacity.used)
            await asyncio.sleep(0.001)
        await h.settled()
        assert 4 <= h.sink.most_active <= 8
        assert most <= 8


async def test_unacknowledged_entries_stop_the_reading(
    make_settings: Make, redis_server: PrivateRedis
) -> None:
    """While Redis takes no acknowledgements, reading stops once `bound` entries wait for theirs
    (memory stays bounded); when Redis answers again everything is delivered and acknowledged."""
    stalled = asyncio.Event()
    redis = holding_acks(redis_server.url, stalled)
    try:
        async with open_harness(make_settings, redis, max_in_flight=4) as h:
            await h.webhook()
            for _ in range(60):
                await h.publish()
            service = await h.start()
            completer = service.completer
            completer.bound = 5
            await h.sink.wait_for(5)
            deadline = time.monotonic() + 0.5  # an absence: it must not happen within this long
            while time.monotonic() < deadline:
                assert len(h.sink.received) <= 5 + 2 * 4 and completer.queued <= 5 + 4
                await asyncio.sleep(0.01)
            assert not completer.room.is_set()  # the acks are held: reading stopped for them
            stalled.set()
            await h.sink.wait_for(60)
            await h.settled()
    finally:
        stalled.set()
        await redis.aclose()


async def test_racing_410s_count_one_webhook_disabled(make_settings: Make, redis: RedisClient) -> None:
    """Two deliveries to one webhook answered 410 at once: it is switched off, and counted, once."""
    before = disabled()
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(410, delay=0.05))
        hook = await h.webhook()
        await h.start()
        await h.publish(call_event(call_id=1), call_event(call_id=2))
        await h.dead_letters(2)
        stored = await h.store.get(hook.id)
        assert stored is not None and not stored.enabled
        assert len(h.sink.at("/hook")) == 2
    assert disabled() == before + 1


async def test_sweep_reads_the_cached_view_not_the_table(
    make_settings: Make, redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expired webhooks are found in the worker's cached view: the table is never read whole."""
    async with open_harness(make_settings, redis) as h:
        expired = await h.webhook("/expired", expiresAt=int(time.time() * 1000) + 50)
        live = await h.webhook("/live")
        service = await h.start(sweep_every=3600)

        async def whole_table() -> None:
            raise AssertionError("the sweep read the whole table")

        monkeypatch.setattr(service.store, "all", whole_table)
        while int(time.time() * 1000) <= (expired.expires_at or 0):
            await asyncio.sleep(0.01)
        assert await service.sweep() == 1
        assert await h.store.get(expired.id) is None
        assert await h.store.get(live.id) is not None


async def test_a_delivery_waiting_for_its_host_is_dropped_when_its_webhook_is_deleted(
    make_settings: Make, redis: RedisClient
) -> None:
    """One host, one slot: the delivery queued behind a slow one is never attempted once its
    webhook is deleted meanwhile."""
    async with open_harness(make_settings, redis, max_per_host=1) as h:
        h.sink.always("/hook", Reply(200, delay=0.6))
        hook = await h.webhook()
        await h.start()
        await h.publish(call_event(), call_event())
        await h.sink.wait_for(1)
        assert await h.store.delete(hook.id)
        await h.settled()
        assert len(h.sink.received) == 1


async def test_sweep_drops_dead_letters_past_their_retention(make_settings: Make, redis: RedisClient) -> None:
    """With RELAY_DEAD_LETTER_RETENTION, the sweep drops the letters written longer ago, keeps
    the newer ones; without it, letters stay."""
    async with open_harness(make_settings, redis, dead_letter_retention="1s") as h:
        service = await h.start(sweep_every=3600)
        old = await h.dead.add({"kind": "exhausted", "at": 1})
        await asyncio.sleep(1.1)
        new = await h.dead.add({"kind": "exhausted", "at": 2})
        await service.sweep()
        assert [letter.id for letter in await h.dead.get_many([old, new]) if letter] == [new]


async def test_dead_letters_stay_without_a_retention(make_settings: Make, redis: RedisClient) -> None:
    """Unset (the default), dead letters are kept until replayed or purged."""
    async with open_harness(make_settings, redis) as h:
        service = await h.start(sweep_every=3600)
        letter = await h.dead.add({"kind": "exhausted", "at": 1})
        await asyncio.sleep(0.05)
        await service.sweep()
        assert await h.dead.get(letter) is not None
