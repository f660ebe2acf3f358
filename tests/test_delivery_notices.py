"""Operational webhooks (relay.notices): real workers tell a subscriber of RelayWebhook events that a
webhook failed, recovered, was disabled or dead-lettered, signed and retried like any event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from relay.clock import Clock
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.callbacks import call_event
from tests.delivery_harness import HOOK_SECRET, Harness, open_harness
from tests.sink import Received, Reply, callfire_valid, standard_verified

Make = Callable[..., Settings]
ALL = ["Disabled", "Failing", "Recovered", "DeadLettered"]


async def _observer(h: Harness, path: str = "/ops", events: list[str] | None = None) -> int:
    hook = await h.webhook(path, resource="RelayWebhook", events=events or ALL, name="ops")
    return hook.id


def _notices(h: Harness, path: str = "/ops") -> list[dict[str, Any]]:
    """The operational events the sink got at ``path``: the event of each body."""
    return [r.json()["events"][0] for r in h.sink.at(path)]


async def _wait_notice(h: Harness, event: str, path: str = "/ops", within: float = 10) -> Received:
    deadline = time.monotonic() + within
    while True:
        for received in h.sink.at(path):
            if received.json()["events"][0]["eventType"] == event:
                return received
        assert time.monotonic() < deadline, f"no {event} notice in {within}s: {_notices(h, path)}"
        await asyncio.sleep(0.02)


async def test_a_webhook_disabled_by_disable_after_is_announced_signed(
    make_settings: Make, redis: RedisClient
) -> None:
    """With a short RELAY_DISABLE_AFTER the failing webhook is disabled, and a webhook subscribed
    to RelayWebhook Disabled receives the event, signed with its secret."""
    settings = {"breaker_failures": 0, "disable_after": "0.5s", "retry_schedule": ",".join(["0.1s"] * 30)}
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        down = await h.webhook("/down", name="crm", callback=h.sink.url("/down").replace("//", "//u:pw@"))
        ops = await _observer(h, events=["Disabled"])
        await h.publish(call_event())
        await h.start()
        received = await _wait_notice(h, "Disabled")
        assert callfire_valid(received, HOOK_SECRET)
        standard_verified(received, HOOK_SECRET)  # raises unless signed with the webhook's secret
        body = received.json()
        assert (body["webhookId"], body["resourceType"]) == (ops, "RelayWebhook")
        (event,) = body["events"]
        assert event["resource"] == {
            "id": down.id,
            "name": "crm",
            "callback": h.sink.url("/down"),
            "reason": "it kept failing with no success for RELAY_DISABLE_AFTER (0.5s)",
            "lastStatus": 500,
            "lastError": None,
        }
        stored = await h.store.get(down.id)
        assert stored is not None and not stored.enabled


async def test_410_gone_is_announced_as_disabled(make_settings: Make, redis: RedisClient) -> None:
    """A 410 switches the webhook off and raises Disabled, saying so."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/gone", Reply(410))
        gone = await h.webhook("/gone")
        await _observer(h)
        await h.publish(call_event())
        await h.start()
        event = (await _wait_notice(h, "Disabled")).json()["events"][0]
        assert (event["resource"]["id"], event["resource"]["lastStatus"]) == (gone.id, 410)
        assert event["resource"]["reason"] == "its callback answered 410 Gone"


async def test_failing_then_recovered_when_the_breaker_opens_and_closes(
    make_settings: Make, redis: RedisClient
) -> None:
    """Failing when the breaker opens (with the failures and last status), Recovered when a probe
    succeeds; nothing else."""
    settings = {"breaker_failures": 2, "breaker_max_cooldown": "0.5s", "retry_schedule": "0.05s,0.05s,5s"}
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/flaky", Reply(503))
        flaky = await h.webhook("/flaky")
        await _observer(h)
        await h.publish(call_event())
        await h.start()
        failing = (await _wait_notice(h, "Failing")).json()["events"][0]["resource"]
        assert (failing["id"], failing["lastStatus"]) == (flaky.id, 503)
        assert failing["reason"] == "2 failed attempts in a row: its deliveries are paused"
        h.sink.always("/flaky", Reply(200))
        recovered = (await _wait_notice(h, "Recovered")).json()["events"][0]["resource"]
        assert (recovered["id"], recovered["lastStatus"]) == (flaky.id, 200)
        await h.settled(within=15)
        assert [e["eventType"] for e in _notices(h)] == ["Failing", "Recovered"]


async def test_dead_lettered_at_most_once_a_minute_with_the_count(
    make_settings: Make, redis: RedisClient
) -> None:
    """Five letters in a moment: DeadLettered at once for the first, then nothing for a minute;
    once the minute is over the four held back are announced by the sweep, with no new letter."""
    shift = [0.0]
    clock = Clock(now=lambda: time.time() + shift[0])
    async with open_harness(make_settings, redis, breaker_failures=0, retry_schedule="0.05s") as h:
        h.sink.always("/down", Reply(500))
        down = await h.webhook("/down")
        await _observer(h)
        for _ in range(5):
            await h.publish(call_event())
        await h.start(clock=clock)
        await h.dead_letters(5)
        first = (await _wait_notice(h, "DeadLettered")).json()["events"][0]["resource"]
        assert (first["id"], first["count"], first["lastStatus"]) == (down.id, 1, 500)
        assert first["reason"].startswith("exhausted: ")
        await asyncio.sleep(1.5)  # two rounds of the notices loop
        assert [e["eventType"] for e in _notices(h)] == ["DeadLettered"]
        shift[0] = 61.0
        await h.sink.wait_for(2, "/ops")
        second = _notices(h)[1]["resource"]
        assert (second["id"], second["count"]) == (down.id, 4)


async def test_a_failing_operational_webhook_raises_no_notice_about_itself(
    make_settings: Make, redis: RedisClient
) -> None:
    """A subscriber of RelayWebhook whose sink always fails: its breaker opens and its deliveries
    are dead-lettered, but no notice about it or its deliveries is raised; notices about others
    still are."""
    settings = {"breaker_failures": 2, "breaker_max_cooldown": "0.5s", "retry_schedule": "0.05s,0.05s"}
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        h.sink.always("/ops-down", Reply(500))
        down = await h.webhook("/down")
        failing_ops = await _observer(h, "/ops-down")
        await _observer(h, "/ops")
        await h.publish(call_event())
        await h.start()
        await h.dead_letters(3, within=15)  # /down's, then both of /ops-down's notices about it
        await asyncio.sleep(2.5)  # a DeadLettered about /ops-down would have been raised by now
        await h.settled(within=15)
        about = {(e["eventType"], e["resource"]["id"]) for e in _notices(h, "/ops")}
        assert about == {("Failing", down.id), ("DeadLettered", down.id)}
        letters = [letter.webhook_id for letter in await h.dead_letters(3)]
        assert letters.count(failing_ops) == 2
        state = await h.redis.hget(h.keys.breakers, str(failing_ops))  # type: ignore[misc]
        assert state is not None and orjson.loads(state)["f"] >= 2  # its breaker still counts
        assert await h.redis.llen(h.keys.notices) == 0  # type: ignore[misc]


async def test_an_operational_webhook_failing_for_disable_after_is_disabled_silently(
    make_settings: Make, redis: RedisClient
) -> None:
    """A subscriber of RelayWebhook that keeps failing is switched off by RELAY_DISABLE_AFTER as any
    webhook is, but no Disabled (nor DeadLettered) is raised about it."""
    settings = {"breaker_failures": 0, "disable_after": "0.3s", "retry_schedule": ",".join(["0.1s"] * 30)}
    async with open_harness(make_settings, redis, **settings) as h:
        h.sink.always("/down", Reply(500))
        h.sink.always("/ops-down", Reply(500))
        down = await h.webhook("/down")
        failing_ops = await _observer(h, "/ops-down")
        await _observer(h, "/ops")
        await h.publish(call_event())
        await h.start()
        for _ in range(300):
            stored = await h.store.get(failing_ops)
            if stored is not None and not stored.enabled:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the failing operational webhook was not disabled")
        await asyncio.sleep(2.5)  # a notice about it would have been raised by now
        about = {(e["eventType"], e["resource"]["id"]) for e in _notices(h, "/ops")}
        assert about == {("Disabled", down.id), ("DeadLettered", down.id)}
