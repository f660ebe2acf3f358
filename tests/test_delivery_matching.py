"""Which webhooks an event goes to: resource, event (any case), enabled, not expired."""

from __future__ import annotations

import time
from collections.abc import Callable

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
            for _, w in service.dispatcher.plan(Entry(partition=0, replay=False, id=b"1-0", fields=fields))
            if w is not None
        }
        assert planned == expected
