"""Failure handling: retries on the schedule, Retry-After, 4xx, 410, redirects, dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from relay.embedded import free_port
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.delivery_harness import open_harness
from tests.sink import Reply, Sink

Make = Callable[..., Settings]


async def test_retry_after_replaces_the_delay(make_settings: Make, redis: RedisClient) -> None:
    """Retry-After: 1 on a 429 makes the next attempt wait about a second, not the 0.1 s scheduled."""
    async with open_harness(make_settings, redis, retry_schedule="0.1s,3s") as h:
        h.sink.script("/hook", Reply(429, retry_after="1"))
        await h.webhook()
        await h.start()
        await h.publish()
        first, second = await h.sink.wait_for(2, within=4)
        assert 0.9 <= second.at - first.at < 2.5


async def test_retry_after_is_capped_at_the_largest_delay(make_settings: Make, redis: RedisClient) -> None:
    """Retry-After: 3600 with a schedule of at most 0.2 s waits 0.2 s, not an hour."""
    async with open_harness(make_settings, redis) as h:
        h.sink.script("/hook", Reply(503, retry_after="3600"))
        await h.webhook()
        await h.start()
        await h.publish()
        first, second = await h.sink.wait_for(2, within=3)
        assert second.at - first.at < 1.5


async def test_exhausted_retries_become_a_dead_letter(make_settings: Make, redis: RedisClient) -> None:
    """After the schedule's last delay the delivery is dead-lettered with attempts and last status."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(500))
        hook = await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        await h.settled()
        assert len(h.sink.at("/hook")) == 3
        assert (letter.kind, letter.webhook_id, letter.attempts, letter.last_status) == (
            "exhausted",
            hook.id,
            3,
            500,
        )


@pytest.mark.parametrize("code", [503, 500, 400, 401, 404, 301])
async def test_a_failure_is_retried_with_the_same_webhook_id(
    make_settings: Make, redis: RedisClient, code: int
) -> None:
    """Any status but 2xx and 410 then a 200: two attempts of one delivery, the second counted
    as attempt 2 (a receiver answering 401 or 404 during its own deploy gets the event again)."""
    async with open_harness(make_settings, redis) as h:
        h.sink.script("/hook", Reply(code))
        hook = await h.webhook()
        await h.start()
        await h.publish()
        first, second = await h.sink.wait_for(2)
        await h.settled()
        assert first.delivery_id == second.delivery_id
        assert await h.dead.count() == 0
        log = await h.attempts(hook.id)
        assert [(r["outcome"], r["attempt"], r["status"]) for r in log] == [
            ("delivered", 2, 200),
            ("retry", 1, code),
        ]


async def test_exhausted_4xx_is_dead_lettered_with_the_last_status(
    make_settings: Make, redis: RedisClient
) -> None:
    """Answered 404 on every attempt: the schedule runs out, the dead letter holds the last status."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(404))
        await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        await h.settled()
        assert len(h.sink.at("/hook")) == 3
        assert (letter.kind, letter.attempts, letter.last_status) == ("exhausted", 3, 404)
        assert letter.reason == "gave up after 3 attempts, last: HTTP 404"


async def test_redirect_is_not_followed(make_settings: Make, redis: RedisClient) -> None:
    """A 302 is a failure, retried: the Location is never requested."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(302, headers={"Location": "/elsewhere"}))
        await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        assert h.sink.at("/elsewhere") == []
        assert (letter.kind, letter.last_status) == ("exhausted", 302)
        assert letter.reason.endswith("HTTP 302 (redirects are not followed)")


async def test_410_disables_the_webhook(make_settings: Make, redis: RedisClient) -> None:
    """410 Gone switches the webhook off; later events are not sent to it."""
    before = REGISTRY.get_sample_value("relay_webhooks_disabled_total") or 0.0
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(410))
        hook = await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        stored = await h.store.get(hook.id)
        assert stored is not None and not stored.enabled
        assert letter.kind == "gone"
        assert REGISTRY.get_sample_value("relay_webhooks_disabled_total") == before + 1
        await h.sync()
        await h.publish()
        await h.settled()
        assert len(h.sink.at("/hook")) == 1


async def test_timeout_is_retried(make_settings: Make, redis: RedisClient) -> None:
    """An attempt that outlasts the delivery timeout is retried."""
    async with open_harness(make_settings, redis, delivery_timeout="0.3s") as h:
        h.sink.script("/hook", Reply(200, delay=1.0))
        hook = await h.webhook()
        await h.start()
        await h.publish()
        await h.sink.wait_for(2, within=3)
        await h.settled()
        assert (await h.attempts(hook.id))[-1]["error"] == "timed out after 0.3s"


async def test_connection_refused_is_retried_then_dead(make_settings: Make, redis: RedisClient) -> None:
    """A callback nobody listens on is retried on the schedule, then dead-lettered with the error."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook(callback=f"http://127.0.0.1:{free_port()}/nobody")
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        assert letter.attempts == 3 and letter.last_status is None
        assert letter.last_error.startswith("cannot connect")


async def test_replayed_dead_letter_is_delivered(make_settings: Make, redis: RedisClient) -> None:
    """A dead letter replayed goes out again under the same webhook-id, and leaves the letters."""
    async with open_harness(make_settings, redis) as h:
        h.sink.script("/hook", Reply(503), Reply(503), Reply(503))
        await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        assert await h.dead.replay([letter]) == (1, [])
        first, *_, last = await h.sink.wait_for(4)
        await h.settled()
        assert first.delivery_id == last.delivery_id
        assert await h.dead.count() == 0


async def test_scheduled_retry_survives_a_worker_restart(make_settings: Make, redis: RedisClient) -> None:
    """A retry lives in Redis: a worker stopped before it is due, another worker sends it."""
    async with open_harness(make_settings, redis, retry_schedule="1s") as h:
        h.sink.script("/hook", Reply(503))
        await h.webhook()
        first_worker = await h.start()
        await h.publish()
        await h.sink.wait_for(1)
        await first_worker.completer.drained()
        await first_worker.stop()
        h.services.remove(first_worker)
        assert await redis.zcard(h.keys.scheduled(0)) + await redis.zcard(h.keys.scheduled(1)) == 1
        await h.start()
        await h.sink.wait_for(2, within=4)
        await h.settled()


async def test_slow_callback_does_not_delay_another(make_settings: Make, redis: RedisClient) -> None:
    """While one host takes 3 s per request, another host's deliveries all arrive at once."""
    slow = await Sink().start()
    try:
        slow.always("/slow", Reply(200, delay=3.0))
        async with open_harness(
            make_settings, redis, max_per_host=4, max_in_flight=32, delivery_timeout="5s"
        ) as h:
            await h.webhook(callback=slow.url("/slow"))
            await h.webhook("/fast")
            await h.start()
            started = time.monotonic()
            for _ in range(30):
                await h.publish()
            await h.sink.wait_for(30, "/fast", within=2.5)
            assert time.monotonic() - started < 2.5
            assert len(slow.at("/slow")) <= 8  # four in flight, four queued, the rest put off
    finally:
        await slow.close()
