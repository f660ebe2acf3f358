"""singleUse (exactly one success, however many workers race), expiry and disabled webhooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from relay.clock import Clock
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.delivery_harness import open_harness
from tests.sink import Reply

Make = Callable[..., Settings]


class Later:
    """Wall time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_single_use_is_delivered_once_under_a_race(make_settings: Make, redis: RedisClient) -> None:
    """Three workers, twenty matching events: exactly one POST, then the webhook is deleted."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/once", Reply(200, delay=0.2))
        hook = await h.webhook("/once", singleUse=True)
        for _ in range(3):
            await h.start()
        for _ in range(20):
            await h.publish()
        await h.sink.wait_for(1, "/once")
        await h.settled(within=8)
        assert len(h.sink.at("/once")) == 1
        assert await h.store.get(hook.id) is None
        assert await h.dead.count() == 0


async def test_single_use_failure_lets_a_later_attempt_succeed(
    make_settings: Make, redis: RedisClient
) -> None:
    """A failed attempt releases the lease: the retry delivers, and only then is it deleted."""
    async with open_harness(make_settings, redis) as h:
        h.sink.script("/once", Reply(500))
        hook = await h.webhook("/once", singleUse=True)
        await h.start()
        await h.publish()
        await h.sink.wait_for(2, "/once")
        await h.settled()
        first, second = h.sink.at("/once")
        assert first.delivery_id == second.delivery_id
        assert await h.store.get(hook.id) is None


async def test_expired_webhook_receives_nothing_and_is_deleted(
    make_settings: Make, redis: RedisClient
) -> None:
    """Past expiresAt a webhook gets no event; the worker's sweep (at start, then every 30 s)
    deletes it."""
    async with open_harness(make_settings, redis) as h:
        past = int(time.time() * 1000) - 1
        expired = await h.webhook("/expired", expiresAt=past)
        await h.webhook("/live")
        await h.start()
        await h.publish()
        await h.sink.wait_for(1, "/live")
        await h.settled()
        assert h.sink.at("/expired") == []
        deadline = time.monotonic() + 5
        while await h.store.get(expired.id) is not None:
            assert time.monotonic() < deadline, "the expired webhook was not deleted"
            await asyncio.sleep(0.02)


async def test_webhook_expiring_before_its_retry_gets_no_retry(
    make_settings: Make, redis: RedisClient
) -> None:
    """A retry that comes due after expiresAt is dropped and the webhook deleted."""
    later = Later()
    async with open_harness(make_settings, redis, retry_schedule="30s") as h:
        h.sink.script("/hook", Reply(503))
        hook = await h.webhook(expiresAt=int(time.time() * 1000) + 10_000)
        await h.start(clock=Clock(now=later))
        await h.publish()
        await h.sink.wait_for(1)
        await h.scheduled(1)  # the 503 handled, its retry due in 30 s: only then does time pass
        later.offset = 60.0  # the retry is due, and the webhook expired
        await h.settled()
        assert len(h.sink.at("/hook")) == 1
        assert await h.store.get(hook.id) is None
        assert await h.dead.count() == 0


async def test_disabled_webhook_receives_nothing(make_settings: Make, redis: RedisClient) -> None:
    """An event matching only a disabled webhook is acknowledged without a POST."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook("/off", enabled=False)
        await h.start()
        await h.publish()
        await h.settled()
        assert h.sink.received == []


async def test_retry_for_a_webhook_disabled_meanwhile_is_dead_lettered(
    make_settings: Make, redis: RedisClient
) -> None:
    """Switched off between attempts: the retry is not sent, it waits as a dead letter."""
    async with open_harness(make_settings, redis, retry_schedule="0.5s") as h:
        h.sink.script("/hook", Reply(503))
        hook = await h.webhook()
        await h.start()
        await h.publish()
        await h.sink.wait_for(1)
        await h.store.set_enabled(hook.id, False, int(time.time() * 1000))
        await h.sync()
        (letter,) = await h.dead_letters(1)
        assert letter.kind == "disabled"
        assert len(h.sink.at("/hook")) == 1
