"""relay.delivery.breaker: a webhook's circuit breaker, shared by every worker, on real workers and sinks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from prometheus_client import REGISTRY

from relay.clock import Clock
from relay.delivery.acks import Completer
from relay.delivery.breaker import Breakers, Change
from relay.delivery.retry import DueTimes
from relay.keys import Keys
from relay.settings import Settings
from relay.store.attempts import Attempts
from relay.store.connect import RedisClient
from relay.store.dead_letters import LetterQuery
from relay.store.streams import Streams
from tests.callbacks import call_event
from tests.delivery_harness import open_harness
from tests.sink import Reply


@pytest.fixture
async def batch(redis: RedisClient, keys: Keys) -> AsyncIterator[Completer]:
    """The batches of acknowledgements a failure's or a success's BREAKER call goes with."""
    attempts = Attempts(redis=redis, keys=keys, kept=10, event_ttl_ms=60_000)
    completer = Completer(redis=redis, streams=Streams(redis, keys), attempts=attempts, due=DueTimes())
    await completer.start()
    yield completer
    await completer.stop(grace=1.0)


def _breakers(batch: Completer, now: list[float], failures: int = 3) -> Breakers:
    clock = Clock(now=lambda: now[0])
    return Breakers(
        batch.redis,
        batch.streams.keys,
        batch=batch,
        failures=failures,
        max_cooldown=20.0,
        probe_lease=10.0,
        disable_after=0.0,
        clock=clock,
    )


async def test_opens_after_the_failures_in_a_row(batch: Completer) -> None:
    """Three failures open it (counted across workers); a success before that starts the count again."""
    now = [1000.0]
    one, two = _breakers(batch, now), _breakers(batch, now)
    assert await one.failed(1) is Change.NONE
    assert await two.failed(1) is Change.NONE
    await one.refresh(total=1)
    assert await one.succeeded(1) is Change.NONE
    assert [await two.failed(1) for _ in range(3)] == [Change.NONE, Change.NONE, Change.OPENED]
    await one.refresh(total=1)  # the other worker learns of it on its next read
    verdict = await one.check(1)
    assert not verdict.go and verdict.wait == 5.0


async def test_one_probe_after_the_cooldown_then_longer(
    batch: Completer, redis: RedisClient, keys: Keys
) -> None:
    """After the cool-down one check is granted the probe, the others wait; a failed probe doubles it."""
    now = [1000.0]
    one, two = _breakers(batch, now, failures=1), _breakers(batch, now, failures=1)
    assert await one.failed(2) is Change.OPENED
    await two.refresh(total=1)
    now[0] += 5.0
    assert (await one.check(2)).go
    assert not (await two.check(2)).go
    assert await one.failed(2) is Change.REOPENED
    now[0] += 5.0
    assert not (await two.check(2)).go
    now[0] += 5.0
    assert (await two.check(2)).go
    assert await two.succeeded(2) is Change.CLOSED
    assert await redis.hget(keys.breakers, "2") is None  # type: ignore[misc]


async def test_zero_turns_it_off(batch: Completer, redis: RedisClient, keys: Keys) -> None:
    """With RELAY_BREAKER_FAILURES 0 nothing is counted and every check goes."""
    off = _breakers(batch, [1000.0], failures=0)
    assert [await off.failed(3) for _ in range(20)] == [Change.NONE] * 20
    assert (await off.check(3)).go
    assert await redis.hlen(keys.breakers) == 0  # type: ignore[misc]


async def test_open_breaker_pauses_then_probes_then_delivers_all(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A sink that always fails: the breaker opens after 3 failures, no attempt while it is open,
    one probe after the cool-down; once the sink recovers, every event is delivered."""
    settings = {
        "breaker_failures": 3,
        "breaker_max_cooldown": "2s",
        "retry_schedule": "0.05s,0.05s,0.05s,0.05s,0.05s,30s",
        "max_per_host": 1,
    }
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        hook = await h.webhook("/down")
        for _ in range(3):
            await h.publish(call_event())
        await h.start()
        await h.start()
        key = h.keys.breakers
        for _ in range(200):
            raw = await h.redis.hget(key, str(hook.id))  # type: ignore[misc]
            if raw and orjson.loads(raw)["state"] == "open":
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the breaker did not open")
        await asyncio.sleep(0.5)  # until the other worker has read it (BREAKER_REFRESH)
        opened = len(h.sink.at("/down"))
        await asyncio.sleep(1.0)
        assert len(h.sink.at("/down")) == opened  # paused: no attempt
        await h.sink.wait_for(opened + 1, "/down", within=4)  # the probe
        await asyncio.sleep(1.0)
        assert len(h.sink.at("/down")) == opened + 1  # one probe only; it failed: open again
        h.sink.always("/down", Reply(200))
        await h.settled(within=15)
        _, letters = await h.dead.find(LetterQuery(), 0, 10)
        assert letters == []  # settled with no dead letter: every event delivered
        assert len({r.delivery_id for r in h.sink.at("/down")}) == 3
        assert await h.redis.hget(key, str(hook.id)) is None  # type: ignore[misc]


async def test_paused_delivery_is_exhausted_when_the_schedule_has_run_out(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """Held by an open breaker past the schedule's span since its first attempt, a delivery is a
    dead letter ``exhausted``, with no further attempt."""
    settings = {"breaker_failures": 2, "breaker_max_cooldown": "30s", "retry_schedule": "0.05s,0.05s,1s"}
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        await h.webhook("/down")
        await h.publish(call_event())
        await h.start()
        (letter,) = await h.dead_letters(1, within=10)
        assert letter.kind == "exhausted"
        assert len(h.sink.at("/down")) == 2


async def test_a_webhook_failing_for_disable_after_is_disabled(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """Failing with no success for RELAY_DISABLE_AFTER, a webhook is switched off and counted."""
    settings = {"breaker_failures": 0, "disable_after": "0.5s", "retry_schedule": ",".join(["0.1s"] * 30)}
    before = REGISTRY.get_sample_value("relay_webhooks_auto_disabled_total") or 0.0
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        hook = await h.webhook("/down")
        await h.publish(call_event())
        await h.start()
        for _ in range(200):
            stored = await h.store.get(hook.id)
            if stored is not None and not stored.enabled:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the webhook was not disabled")
        assert REGISTRY.get_sample_value("relay_webhooks_auto_disabled_total") == before + 1
        (letter,) = await h.dead_letters(1, within=5)
        assert letter.kind == "disabled"
