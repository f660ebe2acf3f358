"""Delivery end to end: what a subscriber receives, and when an entry is acknowledged."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from relay.clock import Clock
from relay.delivery.worker import READ_BATCH, backoff, light, next_batch
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.callbacks import call_event
from tests.delivery_harness import HOOK_SECRET, check_read_your_writes, open_harness
from tests.sink import callfire_valid, standard_verified

Make = Callable[..., Settings]


def test_a_modest_read_holds_a_sixteenth_of_the_bound_at_most() -> None:
    """A reader at a modest rate holds 16 slots at most, a sixteenth of the bound, 2 at least."""
    assert [light(limit) for limit in (1, 16, 64, 256, 10_000)] == [2, 2, 4, 16, 16]


def test_the_next_read_asks_for_twice_what_the_last_found() -> None:
    """Twice the entries found, ``least`` at least, ``READ_BATCH`` at most."""
    assert [next_batch(found, 4) for found in (0, 1, 2, 3, 8, 40, 60, 100)] == [4, 4, 4, 6, 16, 80, 100, 100]
    assert READ_BATCH == 100


async def test_body_is_callfire_envelope_with_event_exact(make_settings: Make, redis: RedisClient) -> None:
    """The body carries the relay webhook's id and name and the event's JSON byte for byte."""
    async with open_harness(make_settings, redis) as h:
        hook = await h.webhook(name="billing")
        await h.start()
        (event,) = await h.publish(call_event(call_id=7420017300281076000))
        (got,) = await h.sink.wait_for(1)
        body = got.json()
        assert body["webhookId"] == hook.id
        assert body["webhookName"] == "billing"
        assert body["resourceType"] == "OutboundCall"
        assert got.body.endswith(b'"events":[' + event.json + b"]}")
        assert b"7420017300281076000" in got.body
        assert got.headers["content-type"] == "application/json"


@pytest.mark.parametrize("secret", [HOOK_SECRET, "whsec_" + base64.b64encode(b"k" * 24).decode()])
async def test_both_signatures_verify_as_a_receiver_checks_them(
    make_settings: Make, redis: RedisClient, secret: str
) -> None:
    """X-CallFire-Signature and the Standard Webhooks signature (checked by the public
    standardwebhooks library) both verify on the bytes the worker sent, for both secret kinds."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook(secret=SecretStr(secret))
        await h.start()
        await h.publish()
        (got,) = await h.sink.wait_for(1)
        assert callfire_valid(got, secret)
        assert not callfire_valid(got, "another-secret")
        assert standard_verified(got, secret)["webhookId"] is not None


async def test_fields_selector_trims_the_body(make_settings: Make, redis: RedisClient) -> None:
    """A webhook's `fields` keeps only the selected names, and the signature covers the trim."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook(fields="webhookId,events(eventType,resource(id,state))")
        await h.start()
        await h.publish(call_event(call_id=7420017300281076000))
        (got,) = await h.sink.wait_for(1)
        assert set(got.json()) == {"webhookId", "events"}
        assert got.json()["events"] == [
            {"eventType": "Finished", "resource": {"id": 7420017300281076000, "state": "FINISHED"}}
        ]
        assert callfire_valid(got, HOOK_SECRET)
        standard_verified(got, HOOK_SECRET)


async def test_entry_is_acknowledged_once_delivered(make_settings: Make, redis: RedisClient) -> None:
    """After a 2xx nothing stays pending and the attempt is in the webhook's log."""
    async with open_harness(make_settings, redis) as h:
        hook = await h.webhook()
        await h.start()
        await h.publish()
        await h.sink.wait_for(1)
        await h.settled()
        (record,) = await h.attempts(hook.id)
        assert record["outcome"] == "delivered" and record["status"] == 200


async def test_fan_out_reaches_every_matching_webhook_once(make_settings: Make, redis: RedisClient) -> None:
    """One event goes to each matching webhook exactly once, each with its own webhook-id."""
    async with open_harness(make_settings, redis) as h:
        for path in ("/a", "/b", "/c"):
            await h.webhook(path)
        await h.start()
        await h.publish()
        await h.sink.wait_for(3)
        await h.settled()
        assert sorted(r.path for r in h.sink.received) == ["/a", "/b", "/c"]
        assert len({r.delivery_id for r in h.sink.received}) == 3


@pytest.mark.parametrize("count", [200])
async def test_many_events_all_delivered(make_settings: Make, redis: RedisClient, count: int) -> None:
    """A burst of events is delivered in full, each once."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook()
        await h.start()
        for _ in range(count):
            await h.publish()
        await h.sink.wait_for(count)
        await h.settled()
        assert len({r.delivery_id for r in h.sink.received}) == count


async def test_reads_see_the_webhook_changes_answered_before_them(
    make_settings: Make, redis: RedisClient
) -> None:
    """Read-your-writes on one Redis: a create or delete counts for the very next event."""
    async with open_harness(make_settings, redis) as h:
        await check_read_your_writes(h)


def test_reader_backoff_doubles_and_is_capped() -> None:
    """Redis errors back off 0.1, 0.2, 0.4 ... up to 2 s (before jitter halving at most)."""
    assert [backoff(n, Clock(rand=lambda: 1.0)) for n in (1, 2, 3, 6, 50)] == [0.1, 0.2, 0.4, 2.0, 2.0]
    assert backoff(50, Clock(rand=lambda: 0.0)) == 1.0
