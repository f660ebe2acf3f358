"""Which webhooks an event goes to: resource, event (any case), enabled, not expired."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest

from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.streams import Entry
from tests.callbacks import call_event
from tests.delivery_harness import open_harness

HOUR_MS = 3_600_000

WEBHOOKS = {
    "calls": {"resource": "OutboundCall", "events": ["Finished"]},
    "broadcast": {"resource": "CallBroadcast", "events": ["Started", "Stopped"]},
    "off": {"resource": "OutboundCall", "events": ["Finished"], "enabled": False},
    "expired": {"resource": "OutboundCall", "events": ["Finished"], "expiresAt": -HOUR_MS},
    "expiring": {"resource": "OutboundCall", "events": ["Finished"], "expiresAt": HOUR_MS},
    "inbound": {"resource": "InboundCall", "events": ["Finished"]},
}


@pytest.mark.parametrize(
    ("resource", "event_type", "expected"),
    [
        ("OutboundCall", "Finished", {"calls", "expiring"}),
        ("OutboundCall", "FINISHED", {"calls", "expiring"}),
        ("OutboundCall", "finished", {"calls", "expiring"}),
        ("CallBroadcast", "Started", {"broadcast"}),
        ("CallBroadcast", "Finished", set()),
        ("InboundCall", "Finished", {"inbound"}),
        ("TextBroadcast", "Started", set()),
        ("SomethingNew", "Finished", set()),
    ],
)
async def test_matching_table(
    make_settings: Callable[..., Settings],
    redis: RedisClient,
    resource: str,
    event_type: str,
    expected: set[str],
) -> None:
    """An event is planned for exactly the live webhooks watching its resource and event."""
    async with open_harness(make_settings, redis) as h:
        now = int(time.time() * 1000)
        for name, fields in WEBHOOKS.items():
            values = {**fields, "name": name}
            if "expiresAt" in values:
                values["expiresAt"] = now + int(values["expiresAt"])  # type: ignore[call-overload]
            await h.webhook(**values)
        service = await h.start()
        events = await h.publish(call_event(event_type, resource))
        fields = {
            k.encode(): v if isinstance(v, bytes) else str(v).encode()
            for k, v in events[0].to_fields().items()
        }
        planned = {
            w.name
            for _, w in service.dispatcher.plan(Entry(partition=0, replay=False, id=b"1-0", fields=fields))[1]
            if w is not None
        }
        assert planned == expected


async def test_filters_pick_the_events_delivered(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A filtered webhook receives only the events its filter holds for, an unfiltered one all;
    the events it does not want are acknowledged, not retried."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook("/all")
        await h.webhook("/answered", filter={"resource.finalCallResult": {"$in": ["LA", "AM"]}})
        await h.webhook("/campaign", filter={"resource.campaignId": 7420017300281076001})
        await h.start()
        results = ["LA", "BUSY", "AM", "NO_ANS"]
        for n, result in enumerate(results):
            event = call_event(call_id=100 + n)
            event["resource"]["finalCallResult"] = result
            event["resource"]["campaignId"] = 7420017300281076001 if n == 3 else 7420017300281076000
            await h.publish(event)
        await h.sink.wait_for(len(results) + 3)
        await h.settled()

        def call_ids(path: str) -> set[int]:
            return {orjson.loads(r.body)["events"][0]["resource"]["id"] for r in h.sink.at(path)}

        assert call_ids("/all") == {100, 101, 102, 103}
        assert call_ids("/answered") == {100, 102}
        assert call_ids("/campaign") == {103}
