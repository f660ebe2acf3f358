"""One event on a stream: its fields, and the body a subscriber receives. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import orjson

from relay.catalog import event_key
from relay.ingest.parsing import Callback


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """What one stream entry holds. Field names are the stream's schema."""

    resource: str
    event: str
    """The event type as CallFire sent it."""
    event_key: str
    """Its normalised form, for matching."""
    cf_webhook_id: int | None
    cf_webhook_name: str
    timestamp: int | None
    received_at: int
    callback: str
    """Hex SHA-256 of the callback body the event came in."""
    index: int
    json: bytes
    """The event's JSON exactly as CallFire sent it."""
    traceparent: str = ""
    """The W3C trace context of its callback's trace (``relay.tracing``); empty when not traced."""

    def to_fields(self) -> dict[str, str | bytes | int]:
        fields: dict[str, str | bytes | int] = {
            "resource": self.resource,
            "event": self.event,
            "event_key": self.event_key,
            "cf_webhook_id": "" if self.cf_webhook_id is None else self.cf_webhook_id,
            "cf_webhook_name": self.cf_webhook_name,
            "timestamp": "" if self.timestamp is None else self.timestamp,
            "received_at": self.received_at,
            "callback": self.callback,
            "index": self.index,
            "json": self.json,
        }
        if self.traceparent:
            fields["traceparent"] = self.traceparent
        return fields

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> StreamEvent:
        """Raises KeyError or ValueError on an entry that is not an event (a poison entry)."""
        cf_id, ts = fields[b"cf_webhook_id"], fields[b"timestamp"]
        return cls(
            resource=fields[b"resource"].decode(),
            event=fields[b"event"].decode(),
            event_key=fields[b"event_key"].decode(),
            cf_webhook_id=int(cf_id) if cf_id else None,
            cf_webhook_name=fields[b"cf_webhook_name"].decode(),
            timestamp=int(ts) if ts else None,
            received_at=int(fields[b"received_at"]),
            callback=fields[b"callback"].decode(),
            index=int(fields[b"index"]),
            json=fields[b"json"],
            traceparent=fields.get(b"traceparent", b"").decode(errors="replace"),
        )

    @property
    def id(self) -> str:
        """The event's id: stable (a repeat of the callback body is the same event) and unique
        across partitions, the callback's digest and the event's index, as in ``webhook-id``."""
        return event_id(self.callback, self.index)

    def delivery_id(self, webhook_id: int) -> str:
        """The ``webhook-id`` of this event's delivery to one webhook: the same on every retry,
        and for a repeat of the same callback body."""
        return f"msg_{self.callback[:32]}_{self.index}_{webhook_id}"


def event_id(callback: str, index: int | str) -> str:
    """``StreamEvent.id`` from its callback digest (hex) and its index. Pure."""
    return f"evt_{callback[:32]}_{index}"


EVENT_ID = re.compile(r"evt_([0-9a-f]{32})_([0-9]{1,9})")
"""What ``StreamEvent.id`` looks like."""


def resource_id(event_json: bytes) -> str | None:
    """The text of ``resource.id`` in an event's JSON, exactly as sent (an id past 2**53 is never
    turned into a float), or None when the event has none. Pure."""
    try:
        data = json.loads(event_json, parse_int=str, parse_float=str)
    except ValueError:
        return None
    resource = data.get("resource") if isinstance(data, dict) else None
    found = resource.get("id") if isinstance(resource, dict) else None
    return found if isinstance(found, str) else None


def events_of(callback: Callback, received_at: int) -> list[StreamEvent]:
    digest = callback.digest.hex()
    return [
        StreamEvent(
            resource=e.resource_type,
            event=e.event_type,
            event_key=event_key(e.event_type),
            cf_webhook_id=callback.webhook_id,
            cf_webhook_name=callback.webhook_name or "",
            timestamp=e.timestamp,
            received_at=received_at,
            callback=digest,
            index=n,
            json=e.text,
        )
        for n, e in enumerate(callback.events)
    ]


def outbound_body(event: StreamEvent, webhook_id: int, webhook_name: str) -> bytes:
    """CallFire's callback envelope with the relay's identity, the event's JSON untouched."""
    timestamp = event.timestamp if event.timestamp is not None else event.received_at
    head = orjson.dumps(
        {
            "timestamp": timestamp,
            "webhookId": webhook_id,
            "webhookName": webhook_name,
            "resourceType": event.resource,
        }
    )
    return head[:-1] + b',"events":[' + event.json + b"]}"
