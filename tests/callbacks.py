"""Signed CallFire callbacks for tests: realistic bodies, signed as CallFire signs them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any

import orjson

from relay.events import StreamEvent, events_of
from relay.ingest.parsing import parse_callback
from relay.signing import CALLFIRE_HEADER, callfire_signature

SECRET = "cf-test-secret"
_counter = itertools.count(1)


def call_event(
    event_type: str = "Finished", resource_type: str = "OutboundCall", call_id: int | None = None
) -> dict[str, Any]:
    return {
        "timestamp": int(time.time() * 1000),
        "webhookId": 1001,
        "resourceType": resource_type,
        "eventType": event_type,
        "resource": {
            "id": call_id if call_id is not None else next(_counter),
            "fromNumber": "12135551189",
            "toNumber": "12135551100",
            "state": "FINISHED",
            "campaignId": 10,
            "inbound": False,
            "finalCallResult": "LA",
            "records": [{"id": 1, "billedAmount": 1.1667, "result": "LA", "duration": 35}],
        },
    }


def callback_body(*events: dict[str, Any], webhook_id: int = 1001, name: str | None = "cf hook") -> bytes:
    events = events or (call_event(),)
    return orjson.dumps(
        {
            "timestamp": int(time.time() * 1000),
            "webhookId": webhook_id,
            "webhookName": name,
            "resourceType": events[0]["resourceType"],
            "events": list(events),
        }
    )


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        CALLFIRE_HEADER: callfire_signature(secret.encode(), body),
        "Content-Type": "application/json",
    }


def stream_event(event: dict[str, Any] | None = None, received_at: int = 1) -> StreamEvent:
    """One event as its stream entry holds it (an OutboundCall Finished by default)."""
    (found,) = events_of(parse_callback(callback_body(event or call_event())), received_at)
    return found


def bare_stream_event(json: bytes = b'{"id":1}', index: int = 0, callback: str = "ab" * 32) -> StreamEvent:
    """A stream event built field by field, its JSON, index and callback digest as given (no
    callback body parsed, unlike ``stream_event``): for store and ack tests."""
    return StreamEvent(
        resource="OutboundCall",
        event="Finished",
        event_key="finished",
        cf_webhook_id=None,
        cf_webhook_name="",
        timestamp=None,
        received_at=1,
        callback=callback,
        index=index,
        json=json,
    )


def as_stored(fields: Mapping[str, object]) -> dict[bytes, bytes]:
    """Fields as Redis gives them back (names and values bytes)."""
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}


def legacy_fields(event: StreamEvent) -> dict[bytes, bytes]:
    """The event's entry as the relay wrote it before the metadata was packed (one field per
    value, ``traceparent`` only when traced), as Redis gives it back: what the streams, the
    scheduled sets and the dead letters hold after an upgrade until trimmed."""
    fields: dict[str, object] = {
        "resource": event.resource,
        "event": event.event,
        "event_key": event.event_key,
        "cf_webhook_id": "" if event.cf_webhook_id is None else event.cf_webhook_id,
        "cf_webhook_name": event.cf_webhook_name,
        "timestamp": "" if event.timestamp is None else event.timestamp,
        "received_at": event.received_at,
        "callback": event.callback,
        "index": event.index,
        "json": event.json,
    }
    if event.traceparent:
        fields["traceparent"] = event.traceparent
    return as_stored(fields)
